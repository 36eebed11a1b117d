package report_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/audit"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() *audit.Report {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	missing := check.Finding{Check: "registry_missing", Severity: "critical", TenantID: "80b8d7cd-0000-4000-8000-000000000002",
		TenantSlug: "test1", DatabaseName: "tenant_test1", Reason: "no_database_row",
		Message: `Tenant "test1" has no tenant_databases row, so nothing can connect to its database and its password reset fails; re-run provisioning or insert the row.`}
	mismatch := check.Finding{Check: "field_mismatch", Severity: "warning", TenantID: "00000000-0000-4000-8000-000000000003",
		TenantSlug: "evil\x1b[31m|pipe", DatabaseName: "tenant_evil", Field: "slug", Expected: "evil\x1b[31m|pipe", Actual: "evil",
		Message: "Tenant has slug ..."}
	for _, f := range []*check.Finding{&missing, &mismatch} {
		f.Fingerprint = check.Fingerprint(*f)
	}
	return &audit.Report{
		StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond), Tenants: 42,
		Results: []check.Result{
			{Name: "registry_missing", Status: check.StatusDrift, Findings: []check.Finding{missing}, Duration: 12 * time.Millisecond},
			{Name: "registry_orphan", Status: check.StatusOK, Duration: 3 * time.Millisecond},
			{Name: "registry_duplicate", Status: check.StatusError, Duration: time.Minute, Err: errors.New("timed out after 1m0s: context deadline exceeded")},
			{Name: "field_mismatch", Status: check.StatusDrift, Findings: []check.Finding{mismatch}, Duration: 8 * time.Millisecond},
		},
		Findings: []check.Finding{missing, mismatch},
	}
}

func TestGolden(t *testing.T) {
	for _, format := range []string{report.FormatTable, report.FormatJSON, report.FormatMarkdown} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, report.Write(&buf, format, sample(), report.Tool{Name: "tenantdrift", Version: "1.2.3"}))
			golden := filepath.Join("testdata", "report."+format+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./internal/report -update to create it")
			assert.Equal(t, string(want), buf.String())
			if format != report.FormatJSON {
				assert.NotContains(t, buf.String(), "\x1b", "no raw terminal escapes")
			}
		})
	}
}

func TestEmptyReportJSON(t *testing.T) {
	var buf bytes.Buffer
	rep := &audit.Report{StartedAt: time.Unix(0, 0), FinishedAt: time.Unix(1, 0)}
	require.NoError(t, report.Write(&buf, report.FormatJSON, rep, report.Tool{Name: "tenantdrift", Version: "x"}))
	// Empty lists are [], not null: consumers index them without checks.
	assert.Contains(t, buf.String(), `"checks": []`)
	assert.Contains(t, buf.String(), `"findings": []`)
}

func TestUnknownFormat(t *testing.T) {
	err := report.Write(&bytes.Buffer{}, "yaml", sample(), report.Tool{})
	assert.EqualError(t, err, `unknown format "yaml" (use table, json or markdown)`)
}
