package deploy_test

// Tests of the alerting and dashboard artefacts: the Prometheus rules in
// prometheus/alerts.yml and their promtool unit tests, the Grafana dashboard
// in grafana/tenantdrift.json, and docs/runbook.md, which the alerts link
// to. They keep the three in step with each other and with the metrics the
// daemon really exports (internal/metrics).
//
// Every identifier here starts with "alerting": other files of this package
// test other artefacts under deploy/.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/metrics"
	"github.com/tenantdrift/tenantdrift/internal/notify"
	"github.com/tenantdrift/tenantdrift/internal/repair"
)

// Paths are relative to this package's directory, where go test runs.
const (
	alertingRulesPath     = "prometheus/alerts.yml"
	alertingRuleTestsPath = "prometheus/alerts_test.yml"
	alertingDashboardPath = "grafana/tenantdrift.json"
	alertingRunbookPath   = "../docs/runbook.md"

	// alertingRunbookURL is what every runbook_url starts with; the
	// fragment after it is a heading anchor of alertingRunbookPath.
	alertingRunbookURL = "https://github.com/tenantdrift/tenantdrift/blob/main/docs/runbook.md#"
)

// alertingRequiredAlerts are the alerts the rules must define, whatever
// else they add.
var alertingRequiredAlerts = []string{
	"TenantRegistryDrift",
	"TenantDatabaseUnreachable",
	"TenantdriftCheckFailing",
	"TenantdriftAbsent",
}

// alertingStandardSeries are the series a query may use that Prometheus
// itself makes, not tenantdrift.
var alertingStandardSeries = []string{"up", "ALERTS", "ALERTS_FOR_STATE"}

type alertingRuleFile struct {
	Groups []struct {
		Name  string         `yaml:"name"`
		Rules []alertingRule `yaml:"rules"`
	} `yaml:"groups"`
}

type alertingRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type alertingRuleTests struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string           `yaml:"eval_time"`
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

type alertingDashboard struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	SchemaVersion int             `json:"schemaVersion"`
	Panels        []alertingPanel `json:"panels"`
	Templating    struct {
		List []alertingVariable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string              `json:"name"`
			Datasource *alertingDatasource `json:"datasource"`
			Expr       string              `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type alertingPanel struct {
	ID         int                 `json:"id"`
	Type       string              `json:"type"`
	Title      string              `json:"title"`
	Datasource *alertingDatasource `json:"datasource"`
	GridPos    alertingGridPos     `json:"gridPos"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	// Panels holds the panels of a collapsed row.
	Panels []alertingPanel `json:"panels"`
}

// alertingGridPos is where a panel sits on Grafana's grid, 24 columns
// wide.
type alertingGridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type alertingDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type alertingVariable struct {
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Datasource *alertingDatasource `json:"datasource"`
	Definition string              `json:"definition"`
	// Query is a string, or {"query": "..."} in newer Grafana versions.
	Query json.RawMessage `json:"query"`
}

// query returns the variable's query text.
func (v alertingVariable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
		return q.Query
	}
	return v.Definition
}

func alertingLoadRules(t *testing.T) []alertingRule {
	t.Helper()
	b, err := os.ReadFile(alertingRulesPath)
	require.NoError(t, err)
	var f alertingRuleFile
	require.NoError(t, yaml.Unmarshal(b, &f), alertingRulesPath)
	var rules []alertingRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules, "%s defines no rules", alertingRulesPath)
	return rules
}

func alertingLoadDashboard(t *testing.T) alertingDashboard {
	t.Helper()
	b, err := os.ReadFile(alertingDashboardPath)
	require.NoError(t, err)
	var d alertingDashboard
	require.NoError(t, json.Unmarshal(b, &d), "%s is not valid JSON", alertingDashboardPath)
	return d
}

// alertingFlatPanels returns every panel of d, rows' nested panels
// included.
func alertingFlatPanels(ps []alertingPanel) []alertingPanel {
	var out []alertingPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, alertingFlatPanels(p.Panels)...)
	}
	return out
}

// alertingDashboardQueries returns every PromQL expression of the
// dashboard, named by where it is: panel targets, annotations and the
// selectors in query variables.
func alertingDashboardQueries(t *testing.T, d alertingDashboard) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range alertingFlatPanels(d.Panels) {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out[fmt.Sprintf("annotation %q", a.Name)] = a.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		expr, ok := alertingVariableSelector(v.query())
		require.True(t, ok, "variable %s: unsupported query %q", v.Name, v.query())
		if expr != "" {
			out[fmt.Sprintf("variable %s", v.Name)] = expr
		}
	}
	return out
}

var alertingLabelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*\S)\s*,\s*)?[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// alertingVariableSelector returns the PromQL inside a Grafana Prometheus
// variable query: the selector of label_values(SELECTOR, label) (empty for
// label_values(label)), or the expression of query_result(EXPR).
func alertingVariableSelector(q string) (string, bool) {
	if m := alertingLabelValuesRE.FindStringSubmatch(q); m != nil {
		return m[1], true
	}
	if inner, ok := strings.CutPrefix(strings.TrimSpace(q), "query_result("); ok {
		return strings.TrimSuffix(strings.TrimSpace(inner), ")"), true
	}
	return "", false
}

var alertingGrafanaVarRE = regexp.MustCompile(`\$(?:\{[^}]*\}|[a-zA-Z0-9_]+)`)

// alertingExpandGrafanaVars replaces Grafana's variables so that a
// dashboard query parses as PromQL: interval variables become a duration,
// the others a plain word (they only appear inside label matchers here).
func alertingExpandGrafanaVars(expr string) string {
	return alertingGrafanaVarRE.ReplaceAllStringFunc(expr, func(v string) string {
		name, _, _ := strings.Cut(strings.Trim(v, "${}"), ":")
		switch name {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		case "__interval_ms", "__range_ms", "__range_s":
			return "300"
		}
		return "x"
	})
}

// alertingPromtool returns the path of promtool, failing the test when it
// is missing: these checks must not quietly pass on a machine without it.
func alertingPromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		require.FailNow(t, "promtool not found in PATH: install Debian's prometheus package (.ci/run does)", "%v", err)
	}
	return path
}

func alertingRunPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), alertingPromtool(t), args...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestAlertingPromtool(t *testing.T) {
	t.Run("check rules", func(t *testing.T) {
		alertingRunPromtool(t, "check", "rules", "--lint=all", "--lint-fatal", alertingRulesPath)
	})
	t.Run("test rules", func(t *testing.T) {
		alertingRunPromtool(t, "test", "rules", alertingRuleTestsPath)
	})
	// Every dashboard query, its Grafana variables expanded, must parse:
	// promtool checks them as recording rules.
	t.Run("dashboard queries parse", func(t *testing.T) {
		queries := alertingDashboardQueries(t, alertingLoadDashboard(t))
		require.NotEmpty(t, queries)
		var rules []map[string]string
		for _, where := range slices.Sorted(maps.Keys(queries)) {
			rules = append(rules, map[string]string{
				"record": fmt.Sprintf("alerting:dashboard_query_%d", len(rules)),
				"expr":   alertingExpandGrafanaVars(queries[where]),
			})
			t.Logf("alerting:dashboard_query_%d is %s", len(rules)-1, where)
		}
		b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
		require.NoError(t, os.WriteFile(path, b, 0o600))
		alertingRunPromtool(t, "check", "rules", path)
	})
}

func TestAlertingRules(t *testing.T) {
	rules := alertingLoadRules(t)
	anchors := alertingRunbookAnchors(t)

	var names []string
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		names = append(names, r.Alert)
		t.Run(r.Alert, func(t *testing.T) {
			assert.NotEmpty(t, r.Expr)
			assert.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], "labels.severity")
			for _, a := range []string{"summary", "description", "runbook_url"} {
				assert.NotEmpty(t, strings.TrimSpace(r.Annotations[a]), "annotations.%s", a)
			}
			// absent() has neither labels nor a meaningful value to show.
			if !strings.HasPrefix(strings.TrimSpace(r.Expr), "absent(") {
				assert.Contains(t, r.Annotations["description"], "{{", "description should be templated with $labels or $value")
			}
			url := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, alertingRunbookURL)
			require.True(t, ok, "runbook_url %q should start with %s", url, alertingRunbookURL)
			assert.True(t, anchors[anchor], "runbook_url anchor #%s is no heading of %s (anchors: %v)",
				anchor, alertingRunbookPath, slices.Sorted(maps.Keys(anchors)))
		})
	}
	for _, want := range alertingRequiredAlerts {
		assert.Contains(t, names, want, "%s should define alert %s", alertingRulesPath, want)
	}
	assert.Len(t, names, len(slices.Compact(slices.Sorted(slices.Values(names)))), "alert names repeat: %v", names)
}

// TestAlertingRuleTestsCoverEveryAlert requires, for every alert, a
// promtool test case where it fires and one where it does not.
func TestAlertingRuleTestsCoverEveryAlert(t *testing.T) {
	b, err := os.ReadFile(alertingRuleTestsPath)
	require.NoError(t, err)
	var tests alertingRuleTests
	require.NoError(t, yaml.Unmarshal(b, &tests), alertingRuleTestsPath)

	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range alertingLoadRules(t) {
		if r.Alert == "" {
			continue
		}
		assert.True(t, fires[r.Alert], "%s has no test case where %s fires", alertingRuleTestsPath, r.Alert)
		assert.True(t, quiet[r.Alert], "%s has no test case where %s does not fire", alertingRuleTestsPath, r.Alert)
	}
}

// TestAlertingRunbookHasEveryCheck requires a runbook section per check,
// with the way to confirm it by hand and what auto-repair does about it.
func TestAlertingRunbookHasEveryCheck(t *testing.T) {
	sections := alertingRunbookSections(t)
	for _, name := range config.CheckNames() {
		t.Run(name, func(t *testing.T) {
			body, ok := sections[name]
			require.True(t, ok, "%s has no section #%s", alertingRunbookPath, name)
			assert.Contains(t, body, "tenantdrift audit --check "+name+" --print-sql")
			assert.Contains(t, body, "```sql", "a readable SQL query for the Laravel layout")
			assert.Contains(t, body, "**Auto-repair.**")
		})
	}
}

// TestAlertingRunbookLinks requires the runbook's links to its own
// sections to resolve.
func TestAlertingRunbookLinks(t *testing.T) {
	anchors := alertingRunbookAnchors(t)
	b, err := os.ReadFile(alertingRunbookPath)
	require.NoError(t, err)
	links := regexp.MustCompile(`\]\(#([^)\s]+)\)`).FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, links)
	for _, l := range links {
		assert.True(t, anchors[l[1]], "%s links to #%s, which is no heading", alertingRunbookPath, l[1])
	}
}

func TestAlertingDashboard(t *testing.T) {
	d := alertingLoadDashboard(t)
	assert.Equal(t, "tenantdrift", d.UID)
	assert.NotEmpty(t, d.Title)
	assert.GreaterOrEqual(t, d.SchemaVersion, 36, "schemaVersion")

	// The data source is a variable, so the file imports as is: through
	// the UI, the API and file provisioning (which ignores __inputs).
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.query() == "prometheus" && v.Name == "datasource" {
			dsVar = true
		}
		if v.Type == "query" {
			assert.Equal(t, &alertingDatasource{Type: "prometheus", UID: "${datasource}"}, v.Datasource, "variable %s", v.Name)
		}
	}
	require.True(t, dsVar, "templating needs a variable named datasource of type datasource, query prometheus")

	panels := alertingFlatPanels(d.Panels)
	require.NotEmpty(t, panels)
	ids := map[int]bool{}
	for _, p := range panels {
		assert.False(t, ids[p.ID], "panel id %d repeats", p.ID)
		ids[p.ID] = true
		assert.NotEmpty(t, p.Title, "panel %d has no title", p.ID)
		switch p.Type {
		case "row":
			continue
		case "text":
			assert.Empty(t, p.Targets, "text panel %d %q has queries", p.ID, p.Title)
			continue
		}
		if assert.NotNil(t, p.Datasource, "panel %d %q has no datasource", p.ID, p.Title) {
			assert.Equal(t, alertingDatasource{Type: "prometheus", UID: "${datasource}"}, *p.Datasource, "panel %d %q", p.ID, p.Title)
		}
		if assert.NotEmpty(t, p.Targets, "panel %d %q has no target", p.ID, p.Title) {
			for _, tg := range p.Targets {
				assert.NotEmpty(t, strings.TrimSpace(tg.Expr), "panel %d %q target %s has no expr", p.ID, p.Title, tg.RefID)
			}
		}
	}

	// The panels of the open layout tile the grid without overlapping.
	// (The panels of a collapsed row keep the positions they would have
	// when it opens; there are none.)
	for i, p := range d.Panels {
		g := p.GridPos
		assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24,
			"panel %d %q: gridPos %+v is off the 24-column grid", p.ID, p.Title, g)
		for _, q := range d.Panels[:i] {
			o := q.GridPos
			overlap := g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H
			assert.False(t, overlap, "panel %d %q at %+v overlaps panel %d %q at %+v", p.ID, p.Title, g, q.ID, q.Title, o)
		}
	}
}

// TestAlertingQueriesUseExportedMetrics requires every metric name queried
// by the alert rules and the dashboard to be one the daemon exports (or a
// series Prometheus makes itself), so a renamed metric cannot leave an
// alert silently matching nothing.
func TestAlertingQueriesUseExportedMetrics(t *testing.T) {
	exported := alertingExportedMetrics(t)
	for _, name := range []string{"tenantdrift_findings", "tenantdrift_check_duration_seconds_bucket", "tenantdrift_tenant_findings"} {
		require.True(t, exported[name], "the gathered registry lacks %s", name)
	}

	queries := map[string]string{}
	for _, r := range alertingLoadRules(t) {
		queries["rule "+r.Alert+r.Record] = r.Expr
	}
	for where, expr := range alertingDashboardQueries(t, alertingLoadDashboard(t)) {
		queries["dashboard "+where] = expr
	}
	used := map[string]bool{}
	for where, expr := range queries {
		names := alertingMetricNames(expr)
		assert.NotEmpty(t, names, "%s: no metric name found in %q", where, expr)
		for _, n := range names {
			used[n] = true
			assert.True(t, exported[n], "%s queries %s, which tenantdrift does not export: %q", where, n, expr)
		}
	}
	// The dashboard and the alerts between them look at every metric of
	// the contract.
	for _, n := range []string{
		"tenantdrift_findings", "tenantdrift_check_runs_total", "tenantdrift_check_duration_seconds_bucket",
		"tenantdrift_check_last_run_timestamp_seconds", "tenantdrift_check_last_success_timestamp_seconds",
		"tenantdrift_tenants", "tenantdrift_registry_coverage_ratio", "tenantdrift_leader", "tenantdrift_build_info",
		"tenantdrift_degraded", "tenantdrift_repairs_total", "tenantdrift_repair_breaker_open",
		"tenantdrift_slack_notifications_total", "tenantdrift_slack_outbox_pending",
	} {
		assert.True(t, used[n], "no alert or panel queries %s", n)
	}
}

// alertingExportedMetrics returns the names of the series a daemon with
// every check, per-tenant metrics and the Slack metrics exports, histograms and summaries
// expanded to their series, plus alertingStandardSeries.
func alertingExportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Checks: config.CheckNames(), Version: "x", PerTenant: true})
	require.NoError(t, err)
	_, err = notify.NewMetrics(reg)
	require.NoError(t, err)
	// A vector without series is not gathered: give the per-tenant one a
	// finding.
	m.ObserveRun(check.Result{Name: config.CheckRegistryMissing, Status: check.StatusDrift, Findings: []check.Finding{{
		Check: config.CheckRegistryMissing, Severity: config.SeverityCritical,
		TenantID: "1", TenantSlug: "acme", Reason: "no_database_row",
	}}}, time.Now())
	_, err = repair.NewMetrics(reg)
	require.NoError(t, err)
	mfs, err := reg.Gather()
	require.NoError(t, err)

	names := map[string]bool{}
	for _, n := range alertingStandardSeries {
		names[n] = true
	}
	for _, mf := range mfs {
		n := mf.GetName()
		switch mf.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case "SUMMARY":
			names[n], names[n+"_sum"], names[n+"_count"] = true, true, true
		default:
			names[n] = true
		}
	}
	return names
}

// alertingPromQLWords are identifiers of PromQL that are never metric
// names: operators, modifiers, aggregations (which may be followed by
// by/without before their parenthesis) and grouping keywords (whose label
// list alertingMetricNames skips). Functions need no list: an identifier
// followed by "(" is a call.
var alertingPromQLWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// alertingGroupingWords are followed by a parenthesised label list.
var alertingGroupingWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// alertingMetricNames returns the metric names expr selects, in order of
// appearance, each once. It is a tokenizer, not a parser: strings, label
// matchers {…}, ranges […], numbers, comments, Grafana variables ($x,
// ${x}) and the label lists of by/without/on/ignoring/group_left/
// group_right are skipped; of the identifiers left, those followed by "("
// are functions and alertingPromQLWords are keywords; the rest are metric
// names. Invalid PromQL is promtool's business (TestAlertingPromtool).
func alertingMetricNames(expr string) []string {
	var out []string
	s := []rune(expr)
	isStart := func(r rune) bool { return r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
	isPart := func(r rune) bool { return isStart(r) || r >= '0' && r <= '9' }
	// skipString returns the index after the string starting at i.
	skipString := func(i int) int {
		q := s[i]
		for i++; i < len(s); i++ {
			switch {
			case s[i] == '\\' && q != '`':
				i++
			case s[i] == q:
				return i + 1
			}
		}
		return len(s)
	}
	// skipTo returns the index after the close matching the open at i.
	skipTo := func(i int, open, close rune) int {
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"', '\'', '`':
				i = skipString(i)
				continue
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(s)
	}
	skipSpace := func(i int) int {
		for i < len(s) && unicode.IsSpace(s[i]) {
			i++
		}
		return i
	}
	for i := 0; i < len(s); {
		r := s[i]
		switch {
		case r == '"' || r == '\'' || r == '`':
			i = skipString(i)
		case r == '{':
			i = skipTo(i, '{', '}')
		case r == '[':
			i = skipTo(i, '[', ']')
		case r == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case r == '$':
			i++
			if i < len(s) && s[i] == '{' {
				i = skipTo(i, '{', '}')
			}
			for i < len(s) && isPart(s[i]) {
				i++
			}
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			for i < len(s) && (isPart(s[i]) || s[i] == '.') {
				i++
			}
		case isStart(r):
			j := i
			for j < len(s) && isPart(s[j]) {
				j++
			}
			word := string(s[i:j])
			next := skipSpace(j)
			switch {
			case alertingGroupingWords[strings.ToLower(word)]:
				if next < len(s) && s[next] == '(' {
					j = skipTo(next, '(', ')')
				}
			case alertingPromQLWords[strings.ToLower(word)]:
			case next < len(s) && s[next] == '(':
				// A function call.
			case !slices.Contains(out, word):
				out = append(out, word)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func TestAlertingMetricNames(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"bare", "tenantdrift_leader", []string{"tenantdrift_leader"}},
		{"selector", `tenantdrift_findings{severity="critical", check!="db_unreachable"} > 0`, []string{"tenantdrift_findings"}},
		{"aggregation with grouping", `max by (namespace, job, check) (sum without (severity) (tenantdrift_findings))`,
			[]string{"tenantdrift_findings"}},
		{"grouping after", `sum(tenantdrift_leader) by (job) == 0`, []string{"tenantdrift_leader"}},
		{"functions, ranges and numbers", `histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m]))) * 1e3 offset 1h`,
			[]string{"x_bucket"}},
		{"vector matching", `a > 600 and on (job, check) b == 0 or c * on (job) group_left (version) d unless ignoring(x) e`,
			[]string{"a", "b", "c", "d", "e"}},
		{"time and absent", `time() - max(last_success > 0) or absent(tenantdrift_build_info)`,
			[]string{"last_success", "tenantdrift_build_info"}},
		{"strings with braces and keywords", `ALERTS{alertname=~"Tenant.*", x="} sum by (y) ("}`, []string{"ALERTS"}},
		{"grafana variables", `rate(m{job=~"$job", check=~"${check:regex}"}[$__rate_interval])`, []string{"m"}},
		{"comment", "m # sum of other_metric\n", []string{"m"}},
		{"repeated", "m + m", []string{"m"}},
		{"recording rule name", "job:tenantdrift_findings:max", []string{"job:tenantdrift_findings:max"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, alertingMetricNames(tc.expr))
		})
	}
}

func TestAlertingVariableSelector(t *testing.T) {
	for q, want := range map[string]string{
		"label_values(tenantdrift_build_info, job)":              "tenantdrift_build_info",
		`label_values(tenantdrift_findings{job=~"$job"}, check)`: `tenantdrift_findings{job=~"$job"}`,
		"label_values(job)": "",
		"query_result(max by (check) (tenantdrift_findings))":         "max by (check) (tenantdrift_findings)",
		" label_values( tenantdrift_leader{job=\"a,b\"} , instance) ": `tenantdrift_leader{job="a,b"}`,
	} {
		got, ok := alertingVariableSelector(q)
		assert.True(t, ok, q)
		assert.Equal(t, want, got, q)
	}
	_, ok := alertingVariableSelector("metrics(tenantdrift_.*)")
	assert.False(t, ok)
}

// alertingRunbookHeading is one Markdown heading of the runbook.
type alertingRunbookHeading struct {
	level  int
	anchor string
	line   int
}

var alertingHeadingRE = regexp.MustCompile(`^(#{1,6})[ \t]+(.*?)[ \t#]*$`)

// alertingRunbook returns the runbook's lines and headings; fenced code
// blocks are skipped.
func alertingRunbook(t *testing.T) ([]string, []alertingRunbookHeading) {
	t.Helper()
	b, err := os.ReadFile(alertingRunbookPath)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	var headings []alertingRunbookHeading
	seen := map[string]int{}
	fence := ""
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		case strings.HasPrefix(trimmed, "```"):
			fence = "```"
			continue
		case strings.HasPrefix(trimmed, "~~~"):
			fence = "~~~"
			continue
		}
		m := alertingHeadingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		anchor := alertingAnchor(m[2])
		// GitHub numbers repeated anchors: x, x-1, x-2, …
		if n := seen[anchor]; n > 0 {
			seen[anchor]++
			anchor = fmt.Sprintf("%s-%d", anchor, n)
		} else {
			seen[anchor] = 1
		}
		headings = append(headings, alertingRunbookHeading{level: len(m[1]), anchor: anchor, line: i})
	}
	return lines, headings
}

func alertingRunbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	_, headings := alertingRunbook(t)
	anchors := map[string]bool{}
	for _, h := range headings {
		anchors[h.anchor] = true
	}
	return anchors
}

// alertingRunbookSections returns the text under each heading, by anchor,
// up to the next heading of the same or a higher level.
func alertingRunbookSections(t *testing.T) map[string]string {
	t.Helper()
	lines, headings := alertingRunbook(t)
	out := map[string]string{}
	for i, h := range headings {
		end := len(lines)
		for _, next := range headings[i+1:] {
			if next.level <= h.level {
				end = next.line
				break
			}
		}
		out[h.anchor] = strings.Join(lines[h.line+1:end], "\n")
	}
	return out
}

// alertingAnchor is GitHub's anchor of a heading: lower case, letters,
// digits, "-" and "_" kept, spaces turned into "-", everything else
// (punctuation, Markdown's backticks and asterisks) dropped.
func alertingAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func TestAlertingAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"TenantRegistryDrift":        "tenantregistrydrift",
		"registry_missing":           "registry_missing",
		"`db_unreachable`":           "db_unreachable",
		"Before you start":           "before-you-start",
		"What's new? (v1.2)":         "whats-new-v12",
		"Checks: **critical** first": "checks-critical-first",
	} {
		assert.Equal(t, want, alertingAnchor(heading), heading)
	}
}
