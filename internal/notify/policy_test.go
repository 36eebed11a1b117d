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
		{name: "nothing changed", tr: state.Transitions{StillOpen: []state.Finding{finding("a", "critical", earlier)}}},
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
			}
		})
	}
}
