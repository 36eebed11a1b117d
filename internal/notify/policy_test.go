package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/notify"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

func TestPlan(t *testing.T) {
	run := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	earlier := run.Add(-48 * time.Hour)
	runKey := fmt.Sprintf("registry_missing/critical/%d", run.UnixMicro())
	earlierKey := fmt.Sprintf("registry_missing/critical/%d", earlier.UnixMicro())
	finding := func(slug, severity string, firstSeen time.Time) state.Finding {
		return state.Finding{
			Finding:   check.Finding{Check: "registry_missing", Severity: severity, TenantSlug: slug, Reason: "no_database_row", Fingerprint: "fp-" + slug},
			FirstSeen: firstSeen, LastSeen: run,
		}
	}
	resolvedAt := run
	resolved := func(f state.Finding) state.Finding { f.ResolvedAt = &resolvedAt; return f }
	notified := func(f state.Finding, at time.Time) state.Finding { f.NotifiedAt = &at; return f }
	lateAt := earlier.Add(24 * time.Hour) // announced a day after it was first seen
	lateKey := fmt.Sprintf("registry_missing/critical/%d", lateAt.UnixMicro())
	many := func(n int) []state.Finding {
		fs := make([]state.Finding, n)
		for i := range fs {
			fs[i] = finding(fmt.Sprintf("t%d", i), "critical", run)
		}
		return fs
	}

	type want struct {
		kind, channel, threadKey, severity string
		slugs                              []string
		total                              int
	}
	cases := []struct {
		name string
		tr   state.Transitions
		opts notify.PolicyOptions
		want []want
	}{
		{name: "nothing changed", tr: state.Transitions{StillOpen: []state.Finding{notified(finding("a", "critical", earlier), earlier)}}},
		{name: "still open, never announced: announced, keyed by the run", tr: state.Transitions{StillOpen: []state.Finding{
			notified(finding("a", "critical", earlier), earlier), finding("b", "critical", earlier), finding("w", "warning", earlier)}},
			want: []want{
				{kind: state.KindNewFindings, threadKey: runKey, severity: "critical", slugs: []string{"b"}},
				{kind: state.KindNewFindings, threadKey: fmt.Sprintf("registry_missing/warning/%d", run.UnixMicro()), severity: "warning", slugs: []string{"w"}},
			}},
		{name: "never announced shares the message of new findings", tr: state.Transitions{
			New: []state.Finding{finding("a", "critical", run)}, StillOpen: []state.Finding{finding("b", "critical", earlier)}},
			want: []want{{kind: state.KindNewFindings, threadKey: runKey, severity: "critical", slugs: []string{"a", "b"}}}},
		{name: "never announced below min severity stays quiet", tr: state.Transitions{StillOpen: []state.Finding{finding("i", "info", earlier)}},
			opts: notify.PolicyOptions{MinSeverity: "warning"}},
		{name: "resolution of a late announcement replies in its thread", tr: state.Transitions{Resolved: []state.Finding{
			resolved(notified(finding("a", "critical", earlier), lateAt)), resolved(notified(finding("b", "critical", earlier), earlier))}},
			want: []want{
				{kind: state.KindResolvedReply, threadKey: lateKey, severity: "critical", slugs: []string{"a"}},
				{kind: state.KindResolvedReply, threadKey: earlierKey, severity: "critical", slugs: []string{"b"}},
			}},
		{name: "new findings, one message per severity", tr: state.Transitions{New: []state.Finding{
			finding("a", "critical", run), finding("b", "warning", run), finding("c", "critical", run)}},
			opts: notify.PolicyOptions{Channels: map[string]string{"critical": "#crit"}},
			want: []want{
				{kind: state.KindNewFindings, channel: "#crit", threadKey: runKey, severity: "critical", slugs: []string{"a", "c"}},
				{kind: state.KindNewFindings, threadKey: fmt.Sprintf("registry_missing/warning/%d", run.UnixMicro()), severity: "warning", slugs: []string{"b"}},
			}},
		{name: "reopened with new share the message", tr: state.Transitions{
			New: []state.Finding{finding("a", "critical", run)}, Reopened: []state.Finding{finding("r", "critical", earlier)}},
			want: []want{{kind: state.KindNewFindings, threadKey: runKey, severity: "critical", slugs: []string{"a", "r"}}}},
		{name: "reopened alone is keyed by the run", tr: state.Transitions{Reopened: []state.Finding{finding("r", "critical", earlier)}},
			want: []want{{kind: state.KindNewFindings, threadKey: runKey, severity: "critical", slugs: []string{"r"}}}},
		{name: "below min severity is quiet", tr: state.Transitions{
			New: []state.Finding{finding("i", "info", run)}, Resolved: []state.Finding{resolved(finding("w", "warning", earlier))}},
			opts: notify.PolicyOptions{MinSeverity: "critical"}},
		{name: "resolution replies in the announcing thread", tr: state.Transitions{Resolved: []state.Finding{
			resolved(finding("a", "critical", earlier)), resolved(finding("b", "critical", earlier)), resolved(finding("c", "critical", run))}},
			want: []want{
				{kind: state.KindResolvedReply, threadKey: earlierKey, severity: "critical", slugs: []string{"a", "b"}},
				{kind: state.KindResolvedReply, threadKey: runKey, severity: "critical", slugs: []string{"c"}},
			}},
		{name: "at the storm threshold: usual messages", tr: state.Transitions{New: many(3)}, opts: notify.PolicyOptions{StormThreshold: 3},
			want: []want{{kind: state.KindNewFindings, threadKey: runKey, severity: "critical", slugs: []string{"t0", "t1", "t2"}}}},
		{name: "over the storm threshold: one storm", tr: state.Transitions{New: many(4), Resolved: []state.Finding{resolved(finding("old", "critical", earlier))}},
			opts: notify.PolicyOptions{StormThreshold: 3, Channels: map[string]string{"critical": "#crit"}},
			want: []want{
				{kind: state.KindResolvedReply, channel: "#crit", threadKey: earlierKey, severity: "critical", slugs: []string{"old"}},
				{kind: state.KindStorm, channel: "#crit", total: 4},
			}},
		{name: "default storm threshold", tr: state.Transitions{New: many(notify.DefaultStormThreshold + 1)},
			want: []want{{kind: state.KindStorm, total: notify.DefaultStormThreshold + 1}}},
		{name: "never announced counts towards a storm", tr: state.Transitions{New: many(3), StillOpen: []state.Finding{
			finding("b", "critical", earlier), notified(finding("a", "critical", earlier), earlier)}},
			opts: notify.PolicyOptions{StormThreshold: 3},
			want: []want{{kind: state.KindStorm, total: 4}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.RunTime = run
			items := notify.Plan("registry_missing", tc.tr, tc.opts)
			require.Len(t, items, len(tc.want))
			for i, w := range tc.want {
				it := items[i]
				assert.Equal(t, w.kind, it.Kind)
				assert.Equal(t, w.channel, it.Channel)
				assert.Equal(t, w.threadKey, it.ThreadKey)
				p, ok := it.Payload.(notify.Payload)
				require.True(t, ok)
				if w.kind == state.KindStorm {
					assert.Empty(t, it.Check)
					assert.Len(t, it.Fingerprints, w.total, "a storm lists what it announces")
					assert.Equal(t, w.total, p.Total)
					assert.Equal(t, map[string]map[string]int{"registry_missing": {"no_database_row": w.total}}, p.Counts)
					continue
				}
				assert.Equal(t, "registry_missing", it.Check)
				assert.Equal(t, w.severity, p.Severity)
				var slugs []string
				for _, f := range p.Findings {
					slugs = append(slugs, f.TenantSlug)
				}
				assert.Equal(t, w.slugs, slugs)
				if w.kind == state.KindNewFindings {
					var fps []string
					for _, slug := range w.slugs {
						fps = append(fps, "fp-"+slug)
					}
					assert.Equal(t, fps, it.Fingerprints, "the findings the store marks announced")
				}
			}
		})
	}
}

func TestPlanThreads(t *testing.T) {
	run := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	announced := run.Add(-4 * time.Hour)
	resolvedAt := run
	finding := func(slug, severity string, resolved bool) state.Finding {
		f := state.Finding{
			Finding:   check.Finding{Check: "db_unreachable", Severity: severity, TenantSlug: slug, Reason: "timeout", Fingerprint: "fp-" + slug},
			FirstSeen: announced, LastSeen: run, Status: state.StatusOpen,
		}
		if resolved {
			f.ResolvedAt, f.Status = &resolvedAt, state.StatusResolved
		}
		return f
	}
	thread := func(key string, at time.Time, reminded *time.Time, fs ...state.Finding) state.Thread {
		return state.Thread{Key: key, Check: "db_unreachable", AnnouncedAt: at, RemindedAt: reminded, Findings: fs}
	}
	lately := run.Add(-time.Hour)

	type want struct {
		kind, threadKey string
		slugs           []string
	}
	cases := []struct {
		name     string
		threads  []state.Thread
		interval time.Duration
		want     []want
	}{
		{name: "all resolved: the original is edited with every finding",
			threads: []state.Thread{thread("k", announced, nil, finding("a", "critical", true), finding("b", "critical", true))},
			want:    []want{{state.KindResolvedEdit, "k", []string{"a", "b"}}}},
		{name: "partly resolved, reminders off: nothing",
			threads: []state.Thread{thread("k", announced, nil, finding("a", "critical", false), finding("b", "critical", true))}},
		{name: "due: the open critical findings are reminded", interval: 4 * time.Hour,
			threads: []state.Thread{thread("k", announced, nil, finding("a", "critical", false), finding("b", "critical", true))},
			want:    []want{{state.KindReminder, "k", []string{"a"}}}},
		{name: "not yet due", interval: 4*time.Hour + time.Second,
			threads: []state.Thread{thread("k", announced, nil, finding("a", "critical", false))}},
		{name: "reminded within the interval", interval: 2 * time.Hour,
			threads: []state.Thread{thread("k", announced, &lately, finding("a", "critical", false))}},
		{name: "warnings are not reminded", interval: time.Hour,
			threads: []state.Thread{thread("k", announced, nil, finding("w", "warning", false))}},
		{name: "a reopened finding is reminded in its newest thread", interval: time.Hour,
			threads: []state.Thread{
				thread("old", announced, nil, finding("a", "critical", false), finding("b", "critical", false)),
				thread("new", lately, nil, finding("a", "critical", false)),
			},
			want: []want{{state.KindReminder, "new", []string{"a"}}, {state.KindReminder, "old", []string{"b"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			items := notify.Plan("db_unreachable", state.Transitions{Threads: tc.threads},
				notify.PolicyOptions{RunTime: run, RepeatInterval: tc.interval, Channels: map[string]string{"critical": "#crit"}})
			require.Len(t, items, len(tc.want))
			for i, w := range tc.want {
				it := items[i]
				assert.Equal(t, w.kind, it.Kind)
				assert.Equal(t, w.threadKey, it.ThreadKey)
				assert.Equal(t, "db_unreachable", it.Check)
				assert.Equal(t, "#crit", it.Channel)
				p, ok := it.Payload.(notify.Payload)
				require.True(t, ok)
				var slugs []string
				for _, f := range p.Findings {
					slugs = append(slugs, f.TenantSlug)
				}
				assert.Equal(t, w.slugs, slugs)
				if w.kind == state.KindReminder {
					assert.Equal(t, run, p.At)
				} else {
					assert.Equal(t, "critical", p.Severity)
				}
			}
		})
	}
}

func TestPlanRuns(t *testing.T) {
	run := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	many := func(checkName, severity string, n int) []state.Finding {
		fs := make([]state.Finding, n)
		for i := range fs {
			fs[i] = state.Finding{Finding: check.Finding{Check: checkName, Severity: severity, TenantSlug: fmt.Sprint("t", i),
				Reason: "r_" + checkName, Fingerprint: fmt.Sprint(checkName, i)}, FirstSeen: run, LastSeen: run}
		}
		return fs
	}
	old := run.Add(-time.Hour)
	gone := state.Finding{Finding: check.Finding{Check: "b", Severity: "warning", Fingerprint: "gone"}, FirstSeen: old, ResolvedAt: &run}
	runs := map[string]state.Transitions{
		"b": {New: many("b", "warning", 3), Resolved: []state.Finding{gone}},
		"a": {New: many("a", "critical", 3)},
	}

	// Under the threshold in total: each check's own messages, by name.
	items := notify.PlanRuns(runs, notify.PolicyOptions{RunTime: run, StormThreshold: 6})
	var kinds, checks []string
	for _, it := range items {
		kinds, checks = append(kinds, it.Kind), append(checks, it.Check)
	}
	assert.Equal(t, []string{state.KindResolvedReply, state.KindNewFindings, state.KindNewFindings}, kinds)
	assert.Equal(t, []string{"b", "a", "b"}, checks)
	assert.Equal(t, []string{"a0", "a1", "a2"}, items[1].Fingerprints, "an announcement names its findings")

	// Over it: one storm for both, with each check's counts.
	items = notify.PlanRuns(runs, notify.PolicyOptions{RunTime: run, StormThreshold: 5, Channels: map[string]string{"critical": "#crit"}})
	require.Len(t, items, 2)
	assert.Equal(t, state.KindResolvedReply, items[0].Kind, "resolutions are not held back")
	assert.Equal(t, state.KindStorm, items[1].Kind)
	assert.Equal(t, "#crit", items[1].Channel, "the most severe finding's channel")
	p, ok := items[1].Payload.(notify.Payload)
	require.True(t, ok)
	assert.Equal(t, 6, p.Total)
	assert.Equal(t, map[string]map[string]int{"a": {"r_a": 3}, "b": {"r_b": 3}}, p.Counts)
}
