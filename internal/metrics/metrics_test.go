package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/notify"
)

// contract lists the metric names dashboards and alert rules rely on,
// without the Go and process collectors' and the opt-in per-tenant ones.
var contract = []string{
	"tenantdrift_findings",
	"tenantdrift_check_runs_total",
	"tenantdrift_check_duration_seconds",
	"tenantdrift_check_last_run_timestamp_seconds",
	"tenantdrift_check_last_success_timestamp_seconds",
	"tenantdrift_tenants",
	"tenantdrift_registry_coverage_ratio",
	"tenantdrift_leader",
	"tenantdrift_degraded",
	"tenantdrift_build_info",
}

func newMetrics(t *testing.T, opts Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, opts)
	require.NoError(t, err)
	return m, reg
}

// findings returns n findings of the check name at severity, on tenants
// t1, t2, …
func findings(name, severity string, n int, reason string) []check.Finding {
	var fs []check.Finding
	for i := range n {
		fs = append(fs, check.Finding{
			Check: name, Severity: severity, Reason: reason,
			TenantID: fmt.Sprintf("id-%d", i+1), TenantSlug: fmt.Sprintf("t%d", i+1),
		})
	}
	return fs
}

func TestNewPreinitialisesSeries(t *testing.T) {
	_, reg := newMetrics(t, Options{Checks: []string{"registry_missing", "field_mismatch"}, Version: "1.2.3"})

	for name, want := range map[string]int{
		"tenantdrift_findings":                             2 * 3,
		"tenantdrift_check_runs_total":                     2 * 4,
		"tenantdrift_check_duration_seconds":               2,
		"tenantdrift_check_last_run_timestamp_seconds":     2,
		"tenantdrift_check_last_success_timestamp_seconds": 2,
		"tenantdrift_tenants":                              1,
		"tenantdrift_registry_coverage_ratio":              1,
		"tenantdrift_leader":                               1,
		"tenantdrift_build_info":                           1,
	} {
		got, err := testutil.GatherAndCount(reg, name)
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
	}

	// Opt-in series are absent unless enabled.
	n, err := testutil.GatherAndCount(reg, "tenantdrift_tenant_findings", "tenantdrift_tenant_series_dropped")
	require.NoError(t, err)
	assert.Zero(t, n)

	// The Go and process collectors are registered.
	n, err = testutil.GatherAndCount(reg, "go_goroutines", "process_start_time_seconds")
	require.NoError(t, err)
	if runtime.GOOS == "linux" {
		assert.Equal(t, 2, n)
	}

	// Coverage is unknown, not 0, before the first registry read.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "tenantdrift_registry_coverage_ratio" {
			assert.True(t, math.IsNaN(mf.GetMetric()[0].GetGauge().GetValue()))
		}
	}
}

// scenario drives m through a small fixed history: two checks; an ok run;
// a drift run with 2 critical and 1 warning; an error run of the drifting
// check; a skipped run.
func scenario(m *Metrics) {
	t0 := time.Unix(1700000000, 0)
	m.ObserveRun(check.Result{Name: "registry_missing", Status: check.StatusOK, Duration: 200 * time.Millisecond}, t0)
	drift := append(findings("field_mismatch", "critical", 2, "mismatch"), findings("field_mismatch", "warning", 1, "mismatch")[0])
	drift[2].TenantSlug, drift[2].TenantID = "t9", "id-9"
	m.ObserveRun(check.Result{Name: "field_mismatch", Status: check.StatusDrift, Findings: drift, Duration: 3 * time.Second}, t0.Add(time.Minute))
	m.ObserveRun(check.Result{Name: "field_mismatch", Status: check.StatusError, Err: errors.New("query registry: connection refused"), Duration: 20 * time.Millisecond}, t0.Add(2*time.Minute))
	m.ObserveSkipped("registry_missing")
	m.SetRegistry(40, 0.95)
	m.SetLeader(true)
	m.SetDegraded(true)
}

const scenarioExposition = `
# HELP tenantdrift_build_info Always 1; its labels name the build of tenantdrift that is running.
# TYPE tenantdrift_build_info gauge
tenantdrift_build_info{goversion="GOVERSION",version="1.2.3"} 1
# HELP tenantdrift_check_duration_seconds How long check runs took, whatever their outcome.
# TYPE tenantdrift_check_duration_seconds histogram
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="0.001"} 0
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="0.005"} 0
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="0.01"} 0
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="0.05"} 1
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="0.1"} 1
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="0.5"} 1
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="1"} 1
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="5"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="10"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="30"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="60"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="120"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="300"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="600"} 2
tenantdrift_check_duration_seconds_bucket{check="field_mismatch",le="+Inf"} 2
tenantdrift_check_duration_seconds_sum{check="field_mismatch"} 3.02
tenantdrift_check_duration_seconds_count{check="field_mismatch"} 2
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="0.001"} 0
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="0.005"} 0
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="0.01"} 0
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="0.05"} 0
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="0.1"} 0
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="0.5"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="1"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="5"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="10"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="30"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="60"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="120"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="300"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="600"} 1
tenantdrift_check_duration_seconds_bucket{check="registry_missing",le="+Inf"} 1
tenantdrift_check_duration_seconds_sum{check="registry_missing"} 0.2
tenantdrift_check_duration_seconds_count{check="registry_missing"} 1
# HELP tenantdrift_check_last_run_timestamp_seconds When the check's last run finished, whatever its outcome, in seconds since the Unix epoch; 0 before the first run.
# TYPE tenantdrift_check_last_run_timestamp_seconds gauge
tenantdrift_check_last_run_timestamp_seconds{check="field_mismatch"} 1.70000012e+09
tenantdrift_check_last_run_timestamp_seconds{check="registry_missing"} 1.7e+09
# HELP tenantdrift_check_last_success_timestamp_seconds When the check last completed (ok or drift), in seconds since the Unix epoch; 0 before the first completed run.
# TYPE tenantdrift_check_last_success_timestamp_seconds gauge
tenantdrift_check_last_success_timestamp_seconds{check="field_mismatch"} 1.70000006e+09
tenantdrift_check_last_success_timestamp_seconds{check="registry_missing"} 1.7e+09
# HELP tenantdrift_check_runs_total Check runs by outcome: ok, drift (ran and found drift), error (could not run) or skipped (due but not run).
# TYPE tenantdrift_check_runs_total counter
tenantdrift_check_runs_total{check="field_mismatch",outcome="drift"} 1
tenantdrift_check_runs_total{check="field_mismatch",outcome="error"} 1
tenantdrift_check_runs_total{check="field_mismatch",outcome="ok"} 0
tenantdrift_check_runs_total{check="field_mismatch",outcome="skipped"} 0
tenantdrift_check_runs_total{check="registry_missing",outcome="drift"} 0
tenantdrift_check_runs_total{check="registry_missing",outcome="error"} 0
tenantdrift_check_runs_total{check="registry_missing",outcome="ok"} 1
tenantdrift_check_runs_total{check="registry_missing",outcome="skipped"} 1
# HELP tenantdrift_degraded 1 while this replica considers tenantdrift degraded (landlord or state store unreachable, a check erroring run after run, leadership lost), 0 otherwise.
# TYPE tenantdrift_degraded gauge
tenantdrift_degraded 1
# HELP tenantdrift_findings Open findings by check and severity, from the last completed run of each check; a run that errored leaves it unchanged.
# TYPE tenantdrift_findings gauge
tenantdrift_findings{check="field_mismatch",severity="critical"} 2
tenantdrift_findings{check="field_mismatch",severity="info"} 0
tenantdrift_findings{check="field_mismatch",severity="warning"} 1
tenantdrift_findings{check="registry_missing",severity="critical"} 0
tenantdrift_findings{check="registry_missing",severity="info"} 0
tenantdrift_findings{check="registry_missing",severity="warning"} 0
# HELP tenantdrift_leader 1 on the replica that runs the checks, 0 on the others.
# TYPE tenantdrift_leader gauge
tenantdrift_leader 1
# HELP tenantdrift_registry_coverage_ratio Share of tenants with a complete, consistent registry entry at the last registry read, 0 to 1; NaN before the first.
# TYPE tenantdrift_registry_coverage_ratio gauge
tenantdrift_registry_coverage_ratio 0.95
# HELP tenantdrift_tenants Tenants in the registry at the last registry read.
# TYPE tenantdrift_tenants gauge
tenantdrift_tenants 40
`

func TestScenarioExposition(t *testing.T) {
	m, reg := newMetrics(t, Options{Checks: []string{"registry_missing", "field_mismatch"}, Version: "1.2.3"})
	scenario(m)

	want := strings.ReplaceAll(scenarioExposition, "GOVERSION", runtime.Version())
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), contract...))
}

// daemonRegistry adds to reg the other packages' metrics the daemon
// registers, for the lints.
func daemonRegistry(t *testing.T, reg prometheus.Registerer) {
	t.Helper()
	_, err := notify.NewMetrics(reg)
	require.NoError(t, err)
}

func TestGatherAndLint(t *testing.T) {
	m, reg := newMetrics(t, Options{Checks: []string{"registry_missing", "field_mismatch"}, PerTenant: true})
	scenario(m)
	daemonRegistry(t, reg)

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// promtool finds promtool in PATH or /usr/bin, failing the test if it is
// in neither: CI installs it, so its absence is a broken machine, not a
// reason to skip.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	const p = "/usr/bin/promtool"
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p
	}
	t.Fatal("promtool not found in PATH or /usr/bin: install Debian's prometheus package (.ci/run does)")
	return ""
}

func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	m, reg := newMetrics(t, Options{Checks: []string{"registry_missing", "field_mismatch"}, Version: "1.2.3", PerTenant: true})
	scenario(m)
	daemonRegistry(t, reg)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var exposition bytes.Buffer
	enc := expfmt.NewEncoder(&exposition, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		require.NoError(t, enc.Encode(mf))
	}
	require.Contains(t, exposition.String(), "tenantdrift_tenant_findings{")
	require.Contains(t, exposition.String(), "tenantdrift_slack_notifications_total{")

	cmd := exec.CommandContext(t.Context(), bin, "check", "metrics")
	cmd.Stdin = &exposition
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics reported problems")
}

func TestErroredRunKeepsFindingsAndLastSuccess(t *testing.T) {
	m, _ := newMetrics(t, Options{Checks: []string{"c"}})
	t0 := time.Unix(1700000000, 0)
	m.ObserveRun(check.Result{Name: "c", Status: check.StatusDrift, Findings: findings("c", "critical", 3, "r")}, t0)
	m.ObserveRun(check.Result{Name: "c", Status: check.StatusError, Err: errors.New("boom")}, t0.Add(time.Hour))

	assert.InDelta(t, 3, testutil.ToFloat64(m.findings.WithLabelValues("c", "critical")), 0)
	assert.InDelta(t, 1700000000, testutil.ToFloat64(m.lastSuccess.WithLabelValues("c")), 0)
	assert.InDelta(t, 1700003600, testutil.ToFloat64(m.lastRun.WithLabelValues("c")), 0)

	// The next completed run replaces the gauge, down to zero.
	m.ObserveRun(check.Result{Name: "c", Status: check.StatusOK}, t0.Add(2*time.Hour))
	assert.Zero(t, testutil.ToFloat64(m.findings.WithLabelValues("c", "critical")))
	assert.InDelta(t, 1700007200, testutil.ToFloat64(m.lastSuccess.WithLabelValues("c")), 0)
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  check.Result
		want string
	}{
		{"status ok", check.Result{Status: check.StatusOK}, "ok"},
		{"status drift", check.Result{Status: check.StatusDrift, Findings: make([]check.Finding, 1)}, "drift"},
		{"status error", check.Result{Status: check.StatusError, Err: errors.New("x")}, "error"},
		{"no status, error", check.Result{Err: errors.New("x")}, "error"},
		{"no status, findings", check.Result{Findings: make([]check.Finding, 2)}, "drift"},
		{"no status, nothing", check.Result{}, "ok"},
		{"unknown status", check.Result{Status: "weird"}, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, outcome(tc.res))
		})
	}
}

func TestUnconfiguredCheckIsInitialisedOnFirstSight(t *testing.T) {
	m, reg := newMetrics(t, Options{})
	m.ObserveSkipped("late")

	n, err := testutil.GatherAndCount(reg, "tenantdrift_findings")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	n, err = testutil.GatherAndCount(reg, "tenantdrift_check_runs_total")
	require.NoError(t, err)
	assert.Equal(t, 4, n)
}

func TestUnknownSeverityIsZeroedWhenGone(t *testing.T) {
	m, _ := newMetrics(t, Options{Checks: []string{"c"}})
	m.ObserveRun(check.Result{Name: "c", Findings: findings("c", "odd", 2, "r")}, time.Now())
	assert.InDelta(t, 2, testutil.ToFloat64(m.findings.WithLabelValues("c", "odd")), 0)
	m.ObserveRun(check.Result{Name: "c"}, time.Now())
	assert.Zero(t, testutil.ToFloat64(m.findings.WithLabelValues("c", "odd")))
}

func TestSetLeaderAndRegistry(t *testing.T) {
	m, _ := newMetrics(t, Options{})
	m.SetLeader(true)
	assert.InDelta(t, 1, testutil.ToFloat64(m.leader), 0)
	m.SetLeader(false)
	assert.Zero(t, testutil.ToFloat64(m.leader))
	m.SetDegraded(true)
	assert.InDelta(t, 1, testutil.ToFloat64(m.degraded), 0)
	m.SetDegraded(false)
	assert.Zero(t, testutil.ToFloat64(m.degraded))
	m.SetRegistry(12, 0.75)
	assert.InDelta(t, 12, testutil.ToFloat64(m.tenants), 0)
	assert.InDelta(t, 0.75, testutil.ToFloat64(m.coverage), 0)
}

// tenantSeriesOf returns the exported per-tenant series as
// "check/tenant/reason=value", and the dropped gauge.
func tenantSeriesOf(t *testing.T, reg *prometheus.Registry) (map[string]float64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	dropped := -1.0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "tenantdrift_tenant_findings":
			for _, mt := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range mt.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				got[l["check"]+"/"+l["tenant_slug"]+"/"+l["reason"]] = mt.GetGauge().GetValue()
			}
		case "tenantdrift_tenant_series_dropped":
			dropped = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return got, dropped
}

func TestPerTenantSeries(t *testing.T) {
	m, reg := newMetrics(t, Options{Checks: []string{"a", "b"}, PerTenant: true, PerTenantCap: 3})
	now := time.Unix(1700000000, 0)

	// Over the cap: the first three (by tenant) are kept, two dropped.
	m.ObserveRun(check.Result{Name: "a", Findings: findings("a", "warning", 5, "r")}, now)
	got, dropped := tenantSeriesOf(t, reg)
	assert.Equal(t, map[string]float64{"a/t1/r": 1, "a/t2/r": 1, "a/t3/r": 1}, got)
	assert.InDelta(t, 2, dropped, 0)

	// A more severe check takes precedence under the cap.
	m.ObserveRun(check.Result{Name: "b", Findings: findings("b", "critical", 2, "s")}, now)
	got, dropped = tenantSeriesOf(t, reg)
	assert.Equal(t, map[string]float64{"b/t1/s": 1, "b/t2/s": 1, "a/t1/r": 1}, got)
	assert.InDelta(t, 4, dropped, 0)

	// A completed run replaces its check's series: t1 resolved, t2 still
	// open, t7 new with two findings of one reason; b is untouched.
	next := findings("a", "warning", 2, "r")[1:]
	next = append(next,
		check.Finding{Check: "a", Severity: "warning", TenantID: "id-7", TenantSlug: "t7", Reason: "r", Key: "x"},
		check.Finding{Check: "a", Severity: "warning", TenantID: "id-7", TenantSlug: "t7", Reason: "r", Key: "y"})
	m.ObserveRun(check.Result{Name: "a", Findings: next}, now)
	got, dropped = tenantSeriesOf(t, reg)
	assert.Equal(t, map[string]float64{"b/t1/s": 1, "b/t2/s": 1, "a/t2/r": 1}, got)
	assert.InDelta(t, 1, dropped, 0)

	// An errored run changes nothing.
	m.ObserveRun(check.Result{Name: "b", Err: errors.New("boom")}, now)
	got2, dropped2 := tenantSeriesOf(t, reg)
	assert.Equal(t, got, got2)
	assert.InDelta(t, dropped, dropped2, 0)

	// Resolved: b's series vanish and a's fit.
	m.ObserveRun(check.Result{Name: "b"}, now)
	got, dropped = tenantSeriesOf(t, reg)
	assert.Equal(t, map[string]float64{"a/t2/r": 1, "a/t7/r": 2}, got)
	assert.Zero(t, dropped)

	m.ObserveRun(check.Result{Name: "a"}, now)
	got, dropped = tenantSeriesOf(t, reg)
	assert.Empty(t, got)
	assert.Zero(t, dropped)
}

func TestPerTenantLabels(t *testing.T) {
	m, reg := newMetrics(t, Options{Checks: []string{"field_mismatch", "registry_orphan"}, PerTenant: true})
	m.ObserveRun(check.Result{Name: "field_mismatch", Findings: []check.Finding{
		{Severity: "warning", TenantID: "id-1", TenantSlug: "acme", Field: "database_name"},
	}}, time.Now())
	m.ObserveRun(check.Result{Name: "registry_orphan", Findings: []check.Finding{
		{Severity: "warning", TenantID: "id-gone", Reason: "no_tenant"},
	}}, time.Now())
	got, dropped := tenantSeriesOf(t, reg)
	assert.Equal(t, map[string]float64{
		"field_mismatch/acme/database_name": 1, // no reason: the field
		"registry_orphan/id-gone/no_tenant": 1, // no slug: the tenant id
	}, got)
	assert.Zero(t, dropped)
}

func TestPerTenantDefaultCap(t *testing.T) {
	m, reg := newMetrics(t, Options{Checks: []string{"c"}, PerTenant: true})
	m.ObserveRun(check.Result{Name: "c", Findings: findings("c", "critical", DefaultPerTenantCap+5, "r")}, time.Now())
	got, dropped := tenantSeriesOf(t, reg)
	assert.Len(t, got, DefaultPerTenantCap)
	assert.InDelta(t, 5, dropped, 0)
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"empty check name", Options{Checks: []string{"a", ""}}, []string{`checks[1]: empty check name`}},
		{"repeated check", Options{Checks: []string{"a", "a"}}, []string{`checks[1]: check "a" listed twice`}},
		{"negative cap, all problems at once", Options{Checks: []string{""}, PerTenant: true, PerTenantCap: -1},
			[]string{`checks[0]: empty check name`, `per-tenant cap -1 is negative`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(prometheus.NewRegistry(), tc.opts)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	t.Run("registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		_, err := New(reg, Options{})
		require.NoError(t, err)
		_, err = New(reg, Options{})
		var are prometheus.AlreadyRegisteredError
		assert.ErrorAs(t, err, &are)
	})
}

func TestConcurrentUse(t *testing.T) {
	m, reg := newMetrics(t, Options{Checks: []string{"a", "b"}, PerTenant: true, PerTenantCap: 10})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			name := []string{"a", "b"}[i%2]
			for j := range 50 {
				m.ObserveRun(check.Result{Name: name, Findings: findings(name, "warning", j%7, "r")}, time.Now())
				m.ObserveSkipped(name)
				m.SetRegistry(j, 1)
				m.SetLeader(j%2 == 0)
				_, err := reg.Gather()
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	assert.InDelta(t, 200, testutil.ToFloat64(m.runs.WithLabelValues("a", OutcomeSkipped)), 0)
}

func TestCoverage(t *testing.T) {
	registry := []string{"registry_missing", "field_mismatch"}
	f := func(name, tenantID string) check.Finding { return check.Finding{Check: name, TenantID: tenantID} }
	for _, tc := range []struct {
		name     string
		tenants  int
		findings []check.Finding
		want     float64
	}{
		{"no tenants", 0, nil, 1},
		{"no tenants but findings", 0, []check.Finding{f("registry_missing", "a")}, 1},
		{"no findings", 10, nil, 1},
		{"one bad tenant", 10, []check.Finding{f("registry_missing", "a")}, 0.9},
		{"one tenant, many findings", 10, []check.Finding{f("registry_missing", "a"), f("field_mismatch", "a"), f("field_mismatch", "a")}, 0.9},
		{"two bad tenants", 4, []check.Finding{f("registry_missing", "a"), f("field_mismatch", "b")}, 0.5},
		{"other checks ignored", 4, []check.Finding{f("db_unreachable", "a"), f("field_mismatch", "b")}, 0.75},
		{"no tenant id ignored", 4, []check.Finding{f("registry_missing", "")}, 1},
		{"more bad than tenants clamps to 0", 1, []check.Finding{f("registry_missing", "a"), f("registry_missing", "b")}, 0},
		{"negative tenants", -3, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, Coverage(tc.tenants, tc.findings, registry), 1e-12)
		})
	}
}

func TestShowHistory(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Checks: []string{"registry_missing"}, Version: "x"})
	require.NoError(t, err)
	open := []check.Finding{{Check: "registry_missing", Severity: "critical", TenantID: "a"}, {Check: "registry_missing", Severity: "critical", TenantID: "b"}}
	m.ShowHistory("registry_missing", open, time.Unix(200, 0), time.Unix(100, 0))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.findings.WithLabelValues("registry_missing", "critical")))
	assert.Equal(t, 200.0, testutil.ToFloat64(m.lastRun.WithLabelValues("registry_missing")))
	assert.Equal(t, 100.0, testutil.ToFloat64(m.lastSuccess.WithLabelValues("registry_missing")))
	// Counting is for runs this replica made.
	assert.Equal(t, 0.0, testutil.ToFloat64(m.runs.WithLabelValues("registry_missing", "drift")))
}

func TestRunThatNeverStartedHasNoDuration(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Checks: []string{"registry_missing"}, Version: "x"})
	require.NoError(t, err)
	m.ObserveRun(check.Result{Name: "registry_missing", Status: check.StatusError, Err: errors.New("landlord unreachable")}, time.Unix(100, 0))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.runs.WithLabelValues("registry_missing", "error")))
	var pb dto.Metric
	require.NoError(t, m.duration.WithLabelValues("registry_missing").(prometheus.Metric).Write(&pb))
	assert.Zero(t, pb.GetHistogram().GetSampleCount())
}
