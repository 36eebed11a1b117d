package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares v, as indented JSON, with testdata/name.golden.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	// slack-go's block marshalers escape HTML; the golden files read
	// better without, and mean the same.
	got := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(buf.String())
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./internal/notify -update")
	assert.Equal(t, string(want), got, "differs from %s; run go test ./internal/notify -update and review the diff", path)
}

var t0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func finding(checkName, severity, id, slug, db string) state.Finding {
	return state.Finding{
		Finding: check.Finding{Check: checkName, Severity: severity, TenantID: id, TenantSlug: slug, DatabaseName: db,
			Fingerprint: fmt.Sprintf("fp-%s-%s", checkName, id)},
		FirstSeen: t0, LastSeen: t0, Status: state.StatusNew,
	}
}

func missing(n int) []state.Finding {
	fs := make([]state.Finding, n)
	for i := range fs {
		slug := fmt.Sprintf("tenant-%02d", i+1)
		fs[i] = finding("registry_missing", "critical", fmt.Sprint(100+i), slug, "tenant_"+strings.ReplaceAll(slug, "-", "_"))
		fs[i].Reason = "no_database_row"
		fs[i].FirstSeen = t0.Add(-time.Duration(i) * time.Minute)
	}
	return fs
}

func TestRenderGolden(t *testing.T) {
	mismatch := finding("field_mismatch", "warning", "42", "pine-wren-books-gmbh", "tenant_pine_wren_books")
	mismatch.Field, mismatch.Expected, mismatch.Actual = "slug", "pine-wren-books-gmbh", "pine-wren-books"
	nullActual := finding("field_mismatch", "warning", "43", "iron-quill-vet", "tenant_iron_quill_vet")
	nullActual.Field, nullActual.Expected = "database_name", "tenant_iron_quill_vet"

	hostile := finding("registry_missing", "critical", "7<!channel>", "<!channel>\n• forged @here &amp; *b* `t` <@U1> <http://e.x|y>\x00\u202elive", "Zürich-🍕-テナント")
	hostile.Reason = "no_database_row"

	unreachable := finding("db_unreachable", "critical", "9", "north-wharf-pharmacy", "tenant_north_wharf_pharmacy")
	unreachable.Reason, unreachable.Actual = "auth_failed", `password authentication failed for user "tenant_9"`

	resolvedAt := t0.Add(3*time.Hour + 12*time.Minute)
	resolved := missing(3)
	for i := range resolved {
		resolved[i].ResolvedAt = &resolvedAt
		resolved[i].Status = state.StatusResolved
	}

	dash := RenderOptions{DashboardURL: "https://grafana.example/d/tenantdrift?var-check={{check}}&from=now-6h"}
	tests := map[string]Message{
		"new_findings_registry_missing": NewFindings("registry_missing", "critical", missing(3), RenderOptions{}),
		"new_findings_over_limit":       NewFindings("registry_missing", "critical", missing(15), RenderOptions{}),
		"new_findings_field_mismatch":   NewFindings("field_mismatch", "warning", []state.Finding{mismatch, nullActual}, dash),
		"new_findings_db_unreachable": NewFindings("db_unreachable", "critical", []state.Finding{unreachable},
			RenderOptions{RunbookURL: "https://wiki.example/runbooks/tenantdrift/{{check}}"}),
		"new_findings_hostile": NewFindings("registry_missing", "critical", []state.Finding{hostile}, RenderOptions{}),
		"new_findings_info":    NewFindings("custom_check", "info", missing(1), RenderOptions{MaxTenants: 1}),
		"resolved":             Resolved("registry_missing", "critical", resolved, dash),
		"resolved_reply":       ResolvedReply(resolved[0], 3*time.Hour+12*time.Minute),
		"resolved_reply_field": ResolvedReply(mismatch, 45*time.Second),
		"reminder":             Reminder(config.CheckRegistryMissing, missing(2), t0.Add(4*time.Hour), RenderOptions{}),
		"storm": Storm(map[string]map[string]int{
			"registry_missing": {"no_database_row": 800},
			"db_unreachable":   {"auth_failed": 120, "timeout": 30, "connection_refused": 30},
			"field_mismatch":   {"": 12},
		}, 992, dash),
		"degraded":  Degraded("state store unreachable: dial tcp 10.0.0.5:5432: connect: connection refused <!here>"),
		"recovered": Recovered(12*time.Minute + 30*time.Second),
		"repair": Repaired([]PayloadRepair{
			{Action: "copy_field", Check: "field_mismatch", TenantID: "b0", TenantSlug: "bravo", Table: `"public"."tenant_databases"`, Column: "slug", Status: "applied"},
			{Action: "insert_database_row", Check: "registry_missing", TenantID: "a0", TenantSlug: "<!channel>", Table: `"public"."tenant_databases"`,
				Column: "tenant_id,database_name", Status: "failed", Reason: "database tenant_alpha did not accept the credentials (auth_failed, SQLSTATE 28P01): nothing written"},
		}, "", 3, RenderOptions{}),
		"repair_breaker": Repaired(nil, "circuit breaker open: 30 of 100 tenants (30%) show drift, above repair.breaker_ratio 20%", 0, RenderOptions{}),
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			assertWithinLimits(t, m)
			golden(t, name, m)
		})
	}
}

// assertWithinLimits checks m against Slack's limits and that nothing in
// it can ping a channel.
func assertWithinLimits(t *testing.T, m Message) {
	t.Helper()
	require.NotEmpty(t, m.Text, "fallback text")
	assert.LessOrEqual(t, utf16Len(m.Text), maxFallbackText)
	assert.LessOrEqual(t, len(m.Blocks), MaxBlocks)
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	assert.True(t, utf8.Valid(raw))
	var doc struct {
		Blocks []map[string]any `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	texts := []string{m.Text}
	for _, b := range doc.Blocks {
		switch b["type"] {
		case "header":
			s := b["text"].(map[string]any)["text"].(string)
			assert.LessOrEqual(t, utf16Len(s), maxHeaderText, "header")
			texts = append(texts, s)
		case "section":
			s := b["text"].(map[string]any)["text"].(string)
			assert.LessOrEqual(t, utf16Len(s), MaxSectionText, "section")
			assert.NotEmpty(t, s)
			texts = append(texts, s)
		case "context":
			els := b["elements"].([]any)
			assert.LessOrEqual(t, len(els), 10)
			for _, e := range els {
				s := e.(map[string]any)["text"].(string)
				assert.LessOrEqual(t, utf16Len(s), MaxSectionText, "context")
				texts = append(texts, s)
			}
		case "divider":
		default:
			t.Errorf("unexpected block type %v", b["type"])
		}
	}
	for _, s := range texts {
		for _, bad := range []string{"<!channel", "<!here", "<!everyone", "<@", "@here", "@channel", "@everyone", "\x00", "\u202e"} {
			assert.NotContains(t, s, bad)
		}
		assert.Equal(t, strings.Count(s, "<"), strings.Count(s, ">"), "unbalanced Slack tokens in %q", s)
	}
}

func TestNewFindingsHuge(t *testing.T) {
	huge := strings.Repeat("&<>🍕é`@here\n", 2000)
	fs := make([]state.Finding, 1000)
	for i := range fs {
		fs[i] = finding("field_mismatch", "warning", fmt.Sprint(i)+huge, fmt.Sprintf("slug-%d-%s", i, huge), huge)
		fs[i].Field, fs[i].Expected, fs[i].Actual = huge, huge, "\xff\xfe"+huge
	}
	for _, max := range []int{0, 10, 100, 1000} {
		t.Run(fmt.Sprint("max_tenants_", max), func(t *testing.T) {
			m := NewFindings("field_mismatch", "warning", fs, RenderOptions{MaxTenants: max, RunbookURL: huge, DashboardURL: huge})
			assertWithinLimits(t, m)
			raw, err := json.Marshal(m)
			require.NoError(t, err)
			shown := strings.Count(string(raw), "• ")
			assert.Positive(t, shown)
			assert.Contains(t, string(raw), fmt.Sprintf("…and %d more", 1000-shown))
			r := Resolved("field_mismatch", "warning", fs, RenderOptions{MaxTenants: max})
			assertWithinLimits(t, r)
			assertWithinLimits(t, Reminder(config.CheckDBUnreachable, fs, t0, RenderOptions{MaxTenants: max}))
		})
	}
	assertWithinLimits(t, ResolvedReply(fs[0], time.Hour))
	assertWithinLimits(t, Degraded(huge))
}

func TestStormHuge(t *testing.T) {
	counts := map[string]map[string]int{}
	for i := range 300 {
		reasons := map[string]int{}
		for j := range 40 {
			reasons[fmt.Sprintf("reason_%d_<!here>_%s", j, strings.Repeat("x", 200))] = j + 1
		}
		counts[fmt.Sprintf("check_%03d_%s", i, strings.Repeat("é", 500))] = reasons
	}
	m := Storm(counts, 1_000_000, RenderOptions{DashboardURL: "https://grafana.example/d/x"})
	assertWithinLimits(t, m)
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	assert.Regexp(t, `…and \d+ more checks`, string(raw))
}

func TestNewFindingsEmpty(t *testing.T) {
	m := NewFindings("registry_missing", "critical", nil, RenderOptions{})
	assertWithinLimits(t, m)
	assertWithinLimits(t, Reminder("", nil, t0, RenderOptions{}))
	assertWithinLimits(t, Storm(nil, 0, RenderOptions{}))
	assertWithinLimits(t, Degraded(""))
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Hour, "0s"},
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{12 * time.Second, "12s"},
		{90 * time.Second, "1m30s"},
		{5 * time.Minute, "5m"},
		{12*time.Minute + 30*time.Second, "12m"},
		{3*time.Hour + 12*time.Minute + 59*time.Second, "3h12m"},
		{3 * time.Hour, "3h"},
		{26*time.Hour + 5*time.Minute, "1d2h"},
		{72 * time.Hour, "3d"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, FormatDuration(tt.d), "FormatDuration(%s)", tt.d)
	}
}

func TestTruncate(t *testing.T) {
	tests := map[string]struct {
		in    string
		limit int
		want  string
	}{
		"fits":            {"abc", 3, "abc"},
		"ascii":           {"abcdef", 4, "abc…"},
		"rune boundary":   {"ééééé", 3, "éé…"},
		"astral counts 2": {"🍕🍕🍕", 4, "🍕…"},
		"not in entity":   {"ab&amp;cd", 6, "ab…"},
		"not in token":    {"x <!date^1^{time}|t> y", 8, "x …"},
		"not in code":     {"a `bcdef`", 7, "a …"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := truncate(tt.in, tt.limit)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, utf16Len(got), tt.limit)
			assert.True(t, utf8.ValidString(got))
		})
	}
}

func TestEscape(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"entities":       {"a&b<c>d", "a&amp;b&lt;c&gt;d"},
		"special":        {"<!channel> <!here|here>", "&lt;!channel&gt; &lt;!here|here&gt;"},
		"at mentions":    {"@here @Channel @everyone @bob", "@\u200bhere @\u200bChannel @\u200beveryone @bob"},
		"controls":       {"a\nb\tc\x00d\u202ee", "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe"},
		"invalid utf8":   {"a\xffb", "a\uFFFDb"},
		"unicode intact": {"Zürich-🍕-テナント", "Zürich-🍕-テナント"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tt.want, escape(tt.in, 1000)) })
	}
	assert.Equal(t, "`a\u02cbb`", code("a`b", 10))
	assert.Equal(t, "_empty_", code("", 10))
	assert.Equal(t, "abcd…", escape("abcdefgh", 5))
}

func TestCutRunes(t *testing.T) {
	assert.Equal(t, "abc", cutRunes("abc", 3))
	assert.Equal(t, "ab…", cutRunes("abcd", 3))
	assert.Equal(t, "é…", cutRunes("ééé", 2))
	assert.Equal(t, "", cutRunes("", 2))
}
