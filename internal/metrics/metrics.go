// Package metrics holds the daemon's Prometheus metrics: what each check's
// last runs found and how they went, the size and coverage of the tenant
// registry, leadership, and build information.
//
// Metric names and labels are a contract with dashboards and alert rules.
// Every value is set by the methods of Metrics from what the daemon's runs
// computed; a scrape only reads those values and never touches a database.
//
// Nothing is registered globally: New registers on the registerer it is
// given (STYLE.md rules 3 and 16).
package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
)

const namespace = "tenantdrift"

// DefaultPerTenantCap is the most per-tenant series exported when
// Options.PerTenantCap is zero.
const DefaultPerTenantCap = 1000

// OutcomeSkipped is the outcome label of a run that was due but did not
// happen (ObserveSkipped). The other outcomes are check.StatusOK,
// check.StatusDrift and check.StatusError.
const OutcomeSkipped = "skipped"

// outcomes are the values of the outcome label, all pre-initialised.
var outcomes = [...]string{check.StatusOK, check.StatusDrift, check.StatusError, OutcomeSkipped}

// severities are the values of the severity label, all pre-initialised.
var severities = [...]string{config.SeverityCritical, config.SeverityWarning, config.SeverityInfo}

// durationBuckets cover a check run from 1 ms to 10 min, in seconds.
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600}

// Options configure New.
type Options struct {
	// Checks names the configured checks; each gets every series of its
	// label combinations at zero before its first run.
	Checks []string
	// Version is the daemon's version for tenantdrift_build_info; empty
	// reads "unknown".
	Version string
	// PerTenant enables tenantdrift_tenant_findings, one series per open
	// (check, tenant, reason). It is off by default: the tenant label is
	// unbounded.
	PerTenant bool
	// PerTenantCap bounds the per-tenant series; zero means
	// DefaultPerTenantCap. Series beyond it are counted in
	// tenantdrift_tenant_series_dropped.
	PerTenantCap int
}

// Metrics is the daemon's set of metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	findings    *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastRun     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	tenants     prometheus.Gauge
	coverage    prometheus.Gauge
	leader      prometheus.Gauge
	degraded    prometheus.Gauge

	// Per-tenant series; nil unless Options.PerTenant.
	tenantFindings *prometheus.GaugeVec
	tenantDropped  prometheus.Gauge
	perTenantCap   int

	mu sync.Mutex
	// order is each check's position in Options.Checks, which breaks ties
	// when the per-tenant cap is reached.
	order map[string]int
	// known holds the checks whose series are initialised.
	known map[string]bool
	// extraSeverities holds, per check, severities outside the standard
	// three that a completed run reported, so the next run can zero them.
	extraSeverities map[string]map[string]bool
	// open holds, per check, the per-tenant series its last completed run
	// found, with their values; shown is what is exported now.
	open  map[string]map[tenantKey]tenantSeries
	shown map[tenantKey]bool
}

// tenantKey is the label set of one per-tenant series.
type tenantKey struct{ check, slug, reason string }

// tenantSeries is one per-tenant series: the number of open findings it
// stands for and the highest severity rank among them.
type tenantSeries struct {
	count float64
	rank  int
}

// New builds the metrics and registers them, with the Go and process
// collectors, on reg. Every label combination of the checks in opts is
// initialised so that its series exist before the first run.
//
// It returns an error when opts is invalid (an empty or repeated check
// name, a negative PerTenantCap) or when registering fails, as it does
// when reg already holds any of these metrics.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	version := cmp.Or(opts.Version, "unknown")
	m := &Metrics{
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "findings",
			Help:      "Open findings by check and severity, from the last completed run of each check; a run that errored leaves it unchanged.",
		}, []string{"check", "severity"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "check",
			Name:      "runs_total",
			Help:      "Check runs by outcome: ok, drift (ran and found drift), error (could not run) or skipped (due but not run).",
		}, []string{"check", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "check",
			Name:      "duration_seconds",
			Help:      "How long check runs took, whatever their outcome.",
			Buckets:   durationBuckets,
		}, []string{"check"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Subsystem: "check",
			Name:      "last_run_timestamp_seconds",
			Help:      "When the check's last run finished, whatever its outcome, in seconds since the Unix epoch; 0 before the first run.",
		}, []string{"check"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Subsystem: "check",
			Name:      "last_success_timestamp_seconds",
			Help:      "When the check last completed (ok or drift), in seconds since the Unix epoch; 0 before the first completed run.",
		}, []string{"check"}),
		tenants: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenants",
			Help:      "Tenants in the registry at the last registry read.",
		}),
		coverage: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Subsystem: "registry",
			Name:      "coverage_ratio",
			Help:      "Share of tenants with a complete, consistent registry entry at the last registry read, 0 to 1; NaN before the first.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "leader",
			Help:      "1 on the replica that runs the checks, 0 on the others.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "degraded",
			Help:      "1 while this replica considers tenantdrift degraded (landlord or state store unreachable, a check erroring run after run, leadership lost), 0 otherwise.",
		}),
		order:           map[string]int{},
		known:           map[string]bool{},
		extraSeverities: map[string]map[string]bool{},
		open:            map[string]map[tenantKey]tenantSeries{},
		shown:           map[tenantKey]bool{},
	}
	m.coverage.Set(math.NaN())
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; its labels name the build of tenantdrift that is running.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	cs := []prometheus.Collector{
		m.findings, m.runs, m.duration, m.lastRun, m.lastSuccess,
		m.tenants, m.coverage, m.leader, m.degraded, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if opts.PerTenant {
		m.perTenantCap = cmp.Or(opts.PerTenantCap, DefaultPerTenantCap)
		m.tenantFindings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_findings",
			Help:      "Open findings per check, tenant and reason, from the last completed run of each check (usually 1). Opt-in and capped; see tenantdrift_tenant_series_dropped.",
		}, []string{"check", "tenant_slug", "reason"})
		m.tenantDropped = prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tenant_series_dropped",
			Help:      "Per-tenant series left out of tenantdrift_tenant_findings because of the series cap.",
		})
		cs = append(cs, m.tenantFindings, m.tenantDropped)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}

	for i, name := range opts.Checks {
		m.order[name] = i
		m.initCheck(name)
	}
	return m, nil
}

// validate reports every problem with o at once.
func (o Options) validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, name := range o.Checks {
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("metrics options: checks[%d]: empty check name", i))
		case seen[name]:
			errs = append(errs, fmt.Errorf("metrics options: checks[%d]: check %q listed twice", i, name))
		}
		seen[name] = true
	}
	if o.PerTenantCap < 0 {
		errs = append(errs, fmt.Errorf("metrics options: per-tenant cap %d is negative", o.PerTenantCap))
	}
	return errors.Join(errs...)
}

// initCheck creates every series of name at zero, once. The caller holds
// m.mu, or has not shared m yet.
func (m *Metrics) initCheck(name string) {
	if m.known[name] {
		return
	}
	m.known[name] = true
	for _, o := range outcomes {
		m.runs.WithLabelValues(name, o)
	}
	for _, s := range severities {
		m.findings.WithLabelValues(name, s)
	}
	m.duration.WithLabelValues(name)
	m.lastRun.WithLabelValues(name)
	m.lastSuccess.WithLabelValues(name)
}

// ObserveRun records one run of the check res.Name that finished at
// finished.
//
// Every run counts in tenantdrift_check_runs_total under its outcome
// (res.Status; when that is not a known status, error if res.Err is set,
// else drift or ok by whether there are findings), in the duration
// histogram and in the last-run timestamp. Only a completed run (res.Err
// nil) replaces the check's findings gauges and per-tenant series and
// advances its last-success timestamp; a run that could not execute says
// nothing about drift, so the previous picture stays.
//
// A check not named in Options.Checks is initialised on first sight.
func (m *Metrics) ObserveRun(res check.Result, finished time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initCheck(res.Name)

	m.runs.WithLabelValues(res.Name, outcome(res)).Inc()
	// A run that never started (this replica could not reach the database
	// to contend for leadership) has no duration to report.
	if res.Duration > 0 {
		m.duration.WithLabelValues(res.Name).Observe(res.Duration.Seconds())
	}
	ts := float64(finished.UnixNano()) / 1e9
	m.lastRun.WithLabelValues(res.Name).Set(ts)
	if res.Err != nil {
		return
	}
	m.lastSuccess.WithLabelValues(res.Name).Set(ts)
	m.setFindings(res.Name, res.Findings)
	if m.tenantFindings != nil {
		m.setTenantSeries(res.Name, res.Findings)
	}
}

// outcome is the outcome label of res.
func outcome(res check.Result) string {
	switch res.Status {
	case check.StatusOK, check.StatusDrift, check.StatusError:
		return res.Status
	}
	switch {
	case res.Err != nil:
		return check.StatusError
	case len(res.Findings) > 0:
		return check.StatusDrift
	}
	return check.StatusOK
}

// setFindings replaces the findings gauges of name with the counts in fs.
// The caller holds m.mu.
func (m *Metrics) setFindings(name string, fs []check.Finding) {
	counts := map[string]float64{}
	for _, f := range fs {
		counts[f.Severity]++
	}
	for _, s := range severities {
		m.findings.WithLabelValues(name, s).Set(counts[s])
		delete(counts, s)
	}
	// Severities outside the standard three (config validation should
	// prevent them): export what was found, zero what is gone.
	extra := m.extraSeverities[name]
	for s := range extra {
		m.findings.WithLabelValues(name, s).Set(counts[s])
	}
	for s, n := range counts {
		if extra == nil {
			extra = map[string]bool{}
			m.extraSeverities[name] = extra
		}
		extra[s] = true
		m.findings.WithLabelValues(name, s).Set(n)
	}
}

// setTenantSeries replaces the per-tenant series of name with those of fs,
// then exports at most the cap of all checks' series: the most severe
// first, then by check (in Options.Checks order), tenant and reason. The
// caller holds m.mu.
func (m *Metrics) setTenantSeries(name string, fs []check.Finding) {
	if len(fs) == 0 {
		delete(m.open, name)
	} else {
		open := make(map[tenantKey]tenantSeries, len(fs))
		for _, f := range fs {
			k := tenantKey{check: name, slug: cmp.Or(f.TenantSlug, f.TenantID), reason: cmp.Or(f.Reason, f.Field)}
			s := open[k]
			s.count++
			s.rank = max(s.rank, check.Rank(f.Severity))
			open[k] = s
		}
		m.open[name] = open
	}

	type entry struct {
		key tenantKey
		tenantSeries
	}
	var all []entry
	for _, open := range m.open {
		for k, s := range open {
			all = append(all, entry{k, s})
		}
	}
	pos := func(name string) int {
		if i, ok := m.order[name]; ok {
			return i
		}
		return len(m.order)
	}
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(
			cmp.Compare(b.rank, a.rank),
			cmp.Compare(pos(a.key.check), pos(b.key.check)),
			strings.Compare(a.key.check, b.key.check),
			strings.Compare(a.key.slug, b.key.slug),
			strings.Compare(a.key.reason, b.key.reason),
		)
	})
	kept := all[:min(len(all), m.perTenantCap)]

	shown := make(map[tenantKey]bool, len(kept))
	for _, e := range kept {
		shown[e.key] = true
		m.tenantFindings.WithLabelValues(e.key.check, e.key.slug, e.key.reason).Set(e.count)
	}
	for k := range m.shown {
		if !shown[k] {
			m.tenantFindings.DeleteLabelValues(k.check, k.slug, k.reason)
		}
	}
	m.shown = shown
	m.tenantDropped.Set(float64(len(all) - len(kept)))
}

// ShowHistory sets the gauges a follower takes from the shared history: a
// check's open findings and its last run and last success, without
// counting runs this replica did not make. A zero time leaves a timestamp
// as it is.
func (m *Metrics) ShowHistory(name string, open []check.Finding, lastRun, lastSuccess time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initCheck(name)
	m.setFindings(name, open)
	if m.tenantFindings != nil {
		m.setTenantSeries(name, open)
	}
	if !lastRun.IsZero() {
		m.lastRun.WithLabelValues(name).Set(float64(lastRun.UnixNano()) / 1e9)
	}
	if !lastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(name).Set(float64(lastSuccess.UnixNano()) / 1e9)
	}
}

// ObserveSkipped records a run of the check name that was due but did not
// happen. It counts in tenantdrift_check_runs_total and changes nothing
// else.
func (m *Metrics) ObserveSkipped(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initCheck(name)
	m.runs.WithLabelValues(name, OutcomeSkipped).Inc()
}

// SetRegistry records the last registry read: how many tenants it holds
// and the share of them with a complete, consistent entry (see Coverage).
func (m *Metrics) SetRegistry(tenants int, coverage float64) {
	m.tenants.Set(float64(tenants))
	m.coverage.Set(coverage)
}

// SetLeader records whether this replica is the one running the checks.
func (m *Metrics) SetLeader(leader bool) {
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.Set(v)
}

// SetDegraded records whether tenantdrift is degraded (see the daemon's
// health tracking).
func (m *Metrics) SetDegraded(degraded bool) {
	v := 0.0
	if degraded {
		v = 1
	}
	m.degraded.Set(v)
}

// Coverage is the share of tenants with a complete, consistent registry
// entry: 1 minus the number of distinct tenant ids with a finding from any
// of registryChecks, over tenants. Findings without a tenant id and from
// other checks do not count. It is 1 when tenants is 0 and is clamped to
// [0, 1], as findings may name tenants the registry no longer lists.
func Coverage(tenants int, findings []check.Finding, registryChecks []string) float64 {
	if tenants <= 0 {
		return 1
	}
	bad := map[string]bool{}
	for _, f := range findings {
		if f.TenantID != "" && slices.Contains(registryChecks, f.Check) {
			bad[f.TenantID] = true
		}
	}
	return min(max(1-float64(len(bad))/float64(tenants), 0), 1)
}
