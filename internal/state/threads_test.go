package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// TestOpenThreads: a thread opened by a new_findings item is seen by the
// check's later plans with its findings as they stand, stamped by a
// reminder, and gone once an edit closes it.
func TestOpenThreads(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, clk := openClock(t, pool)
	a := finding("registry_missing", "acme", "", "critical")
	b := finding("registry_missing", "bolt", "", "critical")

	// run records a run of registry_missing at minute, planning items, and
	// returns the threads its plan saw.
	run := func(minute int, items []state.OutboxItem, fs ...check.Finding) []state.Thread {
		t.Helper()
		var seen []state.Thread
		tr, err := s.RecordRunWithOutbox(t.Context(), result("registry_missing", fs...), at(minute), at(minute),
			func(tr state.Transitions) []state.OutboxItem { seen = tr.Threads; return items })
		require.NoError(t, err)
		assert.Nil(t, tr.Threads, "threads are for the plan only")
		return seen
	}

	announce := state.OutboxItem{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: "k",
		Fingerprints: fps(a, b)}
	assert.Empty(t, run(1, []state.OutboxItem{announce}, a, b), "no thread before the announcement")

	other := finding("registry_orphan", "core", "", "critical")
	_, err := s.RecordRunWithOutbox(t.Context(), result("registry_orphan", other), at(1), at(1),
		func(tr state.Transitions) []state.OutboxItem {
			assert.Empty(t, tr.Threads, "another check's threads are not seen")
			return nil
		})
	require.NoError(t, err)

	// bolt is fixed; a reminder is enqueued.
	remind := state.OutboxItem{Kind: state.KindReminder, Check: "registry_missing", ThreadKey: "k"}
	threads := run(2, []state.OutboxItem{remind}, a)
	require.Len(t, threads, 1)
	th := threads[0]
	assert.Equal(t, "k", th.Key)
	assert.Equal(t, "registry_missing", th.Check)
	assert.Equal(t, at(1), th.AnnouncedAt.UTC())
	assert.Nil(t, th.RemindedAt)
	assert.Equal(t, at(1), th.LastNotified().UTC())
	assert.True(t, th.Open())
	require.Equal(t, fps(a, b), fingerprints(th.Findings))
	assert.Equal(t, []state.Status{state.StatusOpen, state.StatusResolved}, []state.Status{th.Findings[0].Status, th.Findings[1].Status})
	require.NotNil(t, th.Findings[1].ResolvedAt)
	assert.Equal(t, at(2), th.Findings[1].ResolvedAt.UTC())

	// All fixed: the plan sees the thread with nothing open and edits it.
	threads = run(3, []state.OutboxItem{{Kind: state.KindResolvedEdit, Check: "registry_missing", ThreadKey: "k"}})
	require.Len(t, threads, 1)
	require.NotNil(t, threads[0].RemindedAt)
	assert.Equal(t, at(2), threads[0].RemindedAt.UTC())
	assert.Equal(t, at(2), threads[0].LastNotified().UTC())
	assert.False(t, threads[0].Open())

	assert.Empty(t, run(4, nil, a), "a closed thread is not seen again, even when a finding reopens")

	// Pruning keeps the closed thread until retention has passed.
	_, _, err = s.Prune(t.Context(), time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 1, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.threads"))
	clk.advance(2 * time.Hour)
	_, _, err = s.Prune(t.Context(), time.Hour)
	require.NoError(t, err)
	assert.Zero(t, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.threads"))
	assert.Zero(t, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.thread_findings"))
}

// TestRecordRunsWithOutbox: an audit's runs commit together, and their
// plan sees them all at once.
func TestRecordRunsWithOutbox(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, _ := openClock(t, pool)
	a := finding("registry_missing", "acme", "", "critical")
	b := finding("registry_orphan", "bolt", "", "warning")
	failed := check.Result{Name: "db_unreachable", Status: check.StatusError, Err: errors.New("boom")}

	calls := 0
	ts, err := s.RecordRunsWithOutbox(t.Context(), []check.Result{result("registry_orphan", b), failed, result("registry_missing", a)},
		at(1), at(1), func(ts []state.Transitions) []state.OutboxItem {
			calls++
			require.Len(t, ts, 3)
			assert.Equal(t, fps(b), fingerprints(ts[0].New))
			assert.Equal(t, state.Transitions{}, ts[1], "an errored run changes nothing")
			assert.Equal(t, fps(a), fingerprints(ts[2].New))
			return []state.OutboxItem{{Kind: state.KindStorm}}
		})
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "one plan for every run")
	require.Len(t, ts, 3)
	assert.Equal(t, fps(a), fingerprints(ts[2].New))
	runs, err := s.LastRuns(t.Context())
	require.NoError(t, err)
	assert.Equal(t, state.OutcomeDrift, runs["registry_orphan"].Outcome)
	assert.Equal(t, state.OutcomeError, runs["db_unreachable"].Outcome)
	assert.Equal(t, state.OutcomeDrift, runs["registry_missing"].Outcome)
	assert.Equal(t, 1, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.outbox"))

	// One item that cannot be stored: no run of any check is recorded.
	_, err = s.RecordRunsWithOutbox(t.Context(), []check.Result{result("registry_orphan"), result("registry_missing")},
		at(2), at(2), func([]state.Transitions) []state.OutboxItem { return []state.OutboxItem{{Kind: "bogus"}} })
	require.Error(t, err)
	assert.Equal(t, 3, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.runs"))
	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, fps(a, b), fingerprints(open), "nothing resolved")

	_, err = s.RecordRunsWithOutbox(t.Context(), []check.Result{result("registry_orphan"), result("registry_orphan")}, at(3), at(3), nil)
	require.ErrorContains(t, err, "twice")
	_, err = s.RecordRunsWithOutbox(t.Context(), []check.Result{{}}, at(3), at(3), nil)
	require.Error(t, err)
}

// TestPruneSlackMessages: a saved Slack message is pruned once it was
// posted before the retention cutoff and nothing may still need it: its
// thread is closed (or was never kept) and no pending item refers to it.
func TestPruneSlackMessages(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, clk := openClock(t, pool)
	ctx := t.Context()
	a := finding("registry_missing", "acme", "", "critical")
	b := finding("registry_missing", "bolt", "", "critical")
	record := func(minute int, items []state.OutboxItem, fs ...check.Finding) {
		t.Helper()
		_, err := s.RecordRunWithOutbox(ctx, result("registry_missing", fs...), at(minute), at(minute),
			func(state.Transitions) []state.OutboxItem { return items })
		require.NoError(t, err)
	}

	// Two announcements, both posted; acme's is then resolved and closed.
	record(1, []state.OutboxItem{
		{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: "closed", Fingerprints: fps(a)},
		{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: "open", Fingerprints: fps(b)},
	}, a, b)
	for _, k := range []string{"closed", "open", "untracked", "waiting"} {
		require.NoError(t, s.SaveThread(ctx, k, "C1", "1."+k, "registry_missing", at(1)))
	}
	record(2, []state.OutboxItem{{Kind: state.KindResolvedEdit, Check: "registry_missing", ThreadKey: "closed"}}, b)
	// A reminder still waits for the message of "waiting".
	require.NoError(t, s.Enqueue(ctx, state.OutboxItem{Kind: state.KindReminder, Check: "registry_missing", ThreadKey: "waiting"}))
	_, err := pool.Exec(ctx, `UPDATE tenantdrift.outbox SET state = 'sent' WHERE thread_key <> 'waiting'`)
	require.NoError(t, err)

	messages := func() []string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT thread_key FROM tenantdrift.slack_messages ORDER BY thread_key`)
		require.NoError(t, err)
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return keys
	}

	_, _, err = s.Prune(ctx, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []string{"closed", "open", "untracked", "waiting"}, messages(), "nothing before the retention")

	clk.advance(48 * time.Hour)
	require.NoError(t, s.SaveThread(ctx, "recent", "C1", "2.0", "registry_missing", clk.now()))
	_, _, err = s.Prune(ctx, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []string{"open", "recent", "waiting"}, messages(),
		"old messages of closed or untracked threads go; open threads, pending items and recent posts keep theirs")
	_, _, ok, err := s.ThreadTS(ctx, "open")
	require.NoError(t, err)
	assert.True(t, ok, "an open thread can still be replied to")
}
