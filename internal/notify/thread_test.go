package notify

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// policyRun records res at the clock's time with Plan's decisions.
func policyRun(t *testing.T, s *state.Store, clock *fakeClock, res check.Result, opts PolicyOptions) {
	t.Helper()
	now := clock.Now()
	opts.RunTime = now
	_, err := s.RecordRunWithOutbox(t.Context(), res, now, now, func(tr state.Transitions) []state.OutboxItem {
		return Plan(res.Name, tr, opts)
	})
	require.NoError(t, err)
}

// findingsOf is a completed run of checkName that found one finding of
// severity per slug, with reason.
func findingsOf(checkName, severity, reason string, slugs ...string) check.Result {
	res := check.Result{Name: checkName, Status: check.StatusOK}
	for i, slug := range slugs {
		f := check.Finding{Check: checkName, Severity: severity, TenantID: fmt.Sprint(100 + i), TenantSlug: slug, Reason: reason}
		f.Fingerprint = check.Fingerprint(f)
		res.Findings = append(res.Findings, f)
		res.Status = check.StatusDrift
	}
	return res
}

func merge(rs ...check.Result) check.Result {
	out := check.Result{Name: rs[0].Name, Status: check.StatusOK}
	for _, r := range rs {
		out.Findings = append(out.Findings, r.Findings...)
		if len(out.Findings) > 0 {
			out.Status = check.StatusDrift
		}
	}
	return out
}

// drain delivers until nothing is due: an item waits for the earlier
// items of its thread, one DeliverOnce at a time.
func drain(t *testing.T, dm daemon) (sent, failed int) {
	t.Helper()
	for range 10 {
		s, f := deliverOnce(t, dm)
		if s+f == 0 {
			break
		}
		sent, failed = sent+s, failed+f
	}
	return sent, failed
}

func sleep(t *testing.T, clock *fakeClock, d time.Duration) {
	t.Helper()
	require.NoError(t, clock.Sleep(t.Context(), d))
}

func methods(reqs []request) []string {
	out := []string{}
	for _, r := range reqs {
		out = append(out, r.Path)
	}
	return out
}

// TestDeliverResolvedEdit: the announcement is edited once, when the last
// of its findings is resolved, even by another process than the one that
// posted it; before that, resolutions are thread replies only.
func TestDeliverResolvedEdit(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	first := start(t, pool, f, clock)
	opts := PolicyOptions{Channels: map[string]string{"critical": "C1"}}

	policyRun(t, first.store, clock, drift("acme", "globex"), opts)
	drain(t, first)
	require.Len(t, posts(f), 1)
	originalTS := "1795856400.000001"

	// globex is fixed: a reply, and the original stays as it is.
	sleep(t, clock, time.Hour)
	policyRun(t, first.store, clock, drift("acme"), opts)
	drain(t, first)
	reqs := posts(f)
	require.Equal(t, []string{"/api/chat.postMessage", "/api/chat.postMessage"}, methods(reqs), "partially resolved: a reply, no edit")
	assert.Equal(t, originalTS, reqs[1].Form.Get("thread_ts"))

	// Restart; acme is fixed too: a reply, then the original is edited.
	sleep(t, clock, time.Hour)
	second := start(t, pool, f, clock)
	policyRun(t, second.store, clock, drift(), opts)
	sent, failed := drain(t, second)
	assert.Equal(t, []int{2, 0}, []int{sent, failed})
	reqs = posts(f)
	require.Equal(t, []string{"/api/chat.postMessage", "/api/chat.postMessage", "/api/chat.postMessage", "/api/chat.update"}, methods(reqs))
	assert.Equal(t, originalTS, reqs[2].Form.Get("thread_ts"))
	edit := reqs[3]
	assert.Equal(t, []string{"C1", originalTS}, []string{edit.Form.Get("channel"), edit.Form.Get("ts")}, "the stored message is edited")

	// What the edit shows: every finding of the original, resolved.
	globexResolved, acmeResolved := t0.Add(time.Hour), t0.Add(2*time.Hour)
	want := Resolved("registry_missing", "critical", []state.Finding{
		resolvedFinding(drift("acme").Findings[0], acmeResolved),
		resolvedFinding(drift("acme", "globex").Findings[1], globexResolved),
	}, RenderOptions{})
	assert.Equal(t, want.Text, edit.Form.Get("text"))
	wantBlocks, err := json.Marshal(want.Blocks)
	require.NoError(t, err)
	assert.JSONEq(t, string(wantBlocks), edit.Form.Get("blocks"))
	assert.Contains(t, edit.Form.Get("blocks"), "after 2h")

	// Nothing more to say, however often it runs.
	for range 3 {
		sleep(t, clock, time.Hour)
		policyRun(t, second.store, clock, drift(), opts)
		drain(t, second)
	}
	assert.Len(t, posts(f), 4, "one edit")
}

func resolvedFinding(f check.Finding, at time.Time) state.Finding {
	return state.Finding{Finding: f, FirstSeen: t0, LastSeen: t0, ResolvedAt: &at}
}

// TestDeliverReminders: still-open critical findings are reminded in
// their thread once per repeat interval, measured from the announcement
// or the last reminder, across restarts; warnings never are.
func TestDeliverReminders(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	dm := start(t, pool, f, clock)
	opts := PolicyOptions{RepeatInterval: 4 * time.Hour}
	res := merge(findingsOf("db_unreachable", "critical", "timeout", "acme", "bolt"),
		findingsOf("db_unreachable", "warning", "auth_failed", "wren"))
	fixed := merge(findingsOf("db_unreachable", "critical", "timeout", "acme"),
		findingsOf("db_unreachable", "warning", "auth_failed", "wren"))

	policyRun(t, dm.store, clock, res, opts)
	drain(t, dm)
	require.Len(t, posts(f), 2, "one announcement per severity")
	criticalTS := "1795856400.000001"
	require.Contains(t, posts(f)[0].Form.Get("text"), "[critical]")

	// runAfter advances the clock by d, runs the check with the findings
	// of rs, delivers and returns the messages sent meanwhile.
	runAfter := func(d time.Duration, dm daemon, rs check.Result) []request {
		t.Helper()
		before := len(posts(f))
		sleep(t, clock, d)
		policyRun(t, dm.store, clock, rs, opts)
		drain(t, dm)
		return posts(f)[before:]
	}

	assert.Empty(t, runAfter(4*time.Hour-time.Minute, dm, res), "not before the interval")
	got := runAfter(time.Minute, dm, fixed) // bolt fixed just now: a reply, then the reminder
	require.Len(t, got, 2)
	assert.Contains(t, got[0].Form.Get("text"), "Resolved")
	reminder := got[1]
	assert.Equal(t, "/api/chat.postMessage", reminder.Path)
	assert.Equal(t, criticalTS, reminder.Form.Get("thread_ts"), "a reply in the announcement's thread")
	assert.Equal(t, "CDEFAULT", reminder.Form.Get("channel"))
	assert.Equal(t, "Still open: Tenant database unreachable — 1 tenant, the oldest for 4h", reminder.Form.Get("text"))
	assert.Contains(t, reminder.Form.Get("blocks"), "acme")
	assert.NotContains(t, reminder.Form.Get("blocks"), "bolt", "resolved findings are not reminded")
	assert.NotContains(t, reminder.Form.Get("blocks"), "wren", "warnings are not reminded")

	assert.Empty(t, runAfter(time.Hour, dm, fixed), "not twice in one interval")
	assert.Empty(t, runAfter(3*time.Hour-time.Minute, dm, fixed), "measured from the last reminder")

	// A restart does not forget when the last reminder was.
	restarted := start(t, pool, f, clock)
	got = runAfter(time.Minute, restarted, fixed)
	require.Len(t, got, 1)
	assert.Equal(t, criticalTS, got[0].Form.Get("thread_ts"))
	assert.Equal(t, "Still open: Tenant database unreachable — 1 tenant, the oldest for 8h", got[0].Form.Get("text"))

	// Reminders off.
	opts.RepeatInterval = 0
	assert.Empty(t, runAfter(24*time.Hour, restarted, fixed), "0 turns reminders off")
}

// TestDeliverAuditStorm: an audit's runs are planned together, so many
// new findings across checks make one storm message with every check's
// count, where runs recorded one by one each stay under the threshold.
func TestDeliverAuditStorm(t *testing.T) {
	names := []string{"registry_missing", "registry_orphan", "db_unreachable"}
	runs := func() []check.Result {
		var rs []check.Result
		for i, name := range names {
			slugs := make([]string, 30)
			for j := range slugs {
				slugs[j] = fmt.Sprintf("%s-t%02d", name, j)
			}
			rs = append(rs, findingsOf(name, "critical", fmt.Sprint("reason_", i), slugs...))
		}
		return rs
	}
	opts := PolicyOptions{StormThreshold: 50, Channels: map[string]string{"critical": "C1"}}

	t.Run("audit", func(t *testing.T) {
		pool := pgtest.NewPool(t)
		clock := &fakeClock{now: t0}
		f := newFakeSlack(t, clock)
		dm := start(t, pool, f, clock)
		opts := opts
		opts.RunTime = t0
		_, err := dm.store.RecordRunsWithOutbox(t.Context(), runs(), t0, t0, func(ts []state.Transitions) []state.OutboxItem {
			byCheck := map[string]state.Transitions{}
			for i, name := range names {
				byCheck[name] = ts[i]
			}
			return PlanRuns(byCheck, opts)
		})
		require.NoError(t, err)
		drain(t, dm)
		reqs := posts(f)
		require.Len(t, reqs, 1, "one storm message")
		assert.Equal(t, "C1", reqs[0].Form.Get("channel"))
		assert.Equal(t, "Drift storm: 90 new findings across 3 checks", reqs[0].Form.Get("text"))
		for i, name := range names {
			assert.Contains(t, reqs[0].Form.Get("blocks"), fmt.Sprintf("*`%s`* 30: `reason_%d` 30", name, i))
		}
	})
	t.Run("one run per check", func(t *testing.T) {
		pool := pgtest.NewPool(t)
		clock := &fakeClock{now: t0}
		f := newFakeSlack(t, clock)
		dm := start(t, pool, f, clock)
		for _, res := range runs() {
			policyRun(t, dm.store, clock, res, opts)
		}
		drain(t, dm)
		reqs := posts(f)
		require.Len(t, reqs, 3, "each run is under the threshold")
		for _, r := range reqs {
			assert.NotContains(t, r.Form.Get("text"), "storm")
		}
	})
}

// TestDeliverResolvedOriginalUnknown: when the announcement was never
// posted, the resolution of its last finding is one new message, which
// names the check; the edit of the unknown original makes no request and
// is counted as skipped, not sent.
func TestDeliverResolvedOriginalUnknown(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	dm, m := startWith(t, pool, f, clock, DelivererOptions{Channel: "CDEFAULT"})
	s := dm.store
	opts := PolicyOptions{Channels: map[string]string{"critical": "C1"}}

	// The announcement fails for good: no thread is saved.
	f.respond = apiError("channel_not_found")
	policyRun(t, s, clock, drift("acme"), opts)
	drain(t, dm)
	require.Len(t, posts(f), 1)
	f.respond = nil

	sleep(t, clock, 3*time.Hour)
	policyRun(t, s, clock, drift(), opts)
	drain(t, dm)
	reqs := posts(f)[1:]
	require.Equal(t, []string{"/api/chat.postMessage"}, methods(reqs), "one resolution message, not two")
	assert.Empty(t, reqs[0].Form.Get("thread_ts"))
	assert.Equal(t, "C1", reqs[0].Form.Get("channel"))
	assert.Equal(t, "Resolved: registry_missing: Tenant without a database row, 1 tenant", reqs[0].Form.Get("text"),
		"a standalone resolution names its check")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "Tenant without a database row")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "acme")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "after 3h")
	assert.Equal(t, []string{"failed", "sent", "sent"}, outboxStates(t, pool))

	count := func(kind, result string) float64 {
		return testutil.ToFloat64(m.notifications.WithLabelValues(kind, result))
	}
	assert.InDelta(t, 1, count(state.KindResolvedReply, ResultSent), 0)
	assert.Zero(t, count(state.KindResolvedEdit, ResultSent), "no request, no delivery attempt")
	assert.InDelta(t, 1, count(state.KindResolvedEdit, ResultSkipped), 0)
}
