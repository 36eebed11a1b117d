package state_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// clock is a settable clock for a store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openClock(t testing.TB, pool *pgxpool.Pool) (*state.Store, *clock) {
	t.Helper()
	c := &clock{t: t0}
	s, err := state.Open(t.Context(), pool, "", c.now)
	require.NoError(t, err)
	return s, c
}

// enqueue records a clean run of check "enqueue" that enqueues items.
func enqueue(t testing.TB, s *state.Store, items ...state.OutboxItem) {
	t.Helper()
	_, err := s.RecordRunWithOutbox(t.Context(), result("enqueue"), t0, t0,
		func(state.Transitions) []state.OutboxItem { return items })
	require.NoError(t, err)
}

func item(n int) state.OutboxItem {
	return state.OutboxItem{Kind: state.KindDegraded, Payload: map[string]any{"reason": fmt.Sprint("r", n)}}
}

func ids(es []state.OutboxEntry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestRecordRunWithOutbox(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, _ := openClock(t, pool)
	a := finding("registry_missing", "t1", "", "critical")
	record(t, s, result("registry_missing", a), 1)

	b := finding("registry_missing", "t2", "", "critical")
	var seen state.Transitions
	tr, err := s.RecordRunWithOutbox(t.Context(), result("registry_missing", b), at(2), at(2),
		func(tr state.Transitions) []state.OutboxItem {
			seen = tr
			return []state.OutboxItem{
				{Kind: state.KindNewFindings, Check: "registry_missing", Channel: "C1", ThreadKey: "k2",
					Payload: map[string]any{"severity": "critical", "fingerprints": fingerprints(tr.New)}},
				{Kind: state.KindResolvedReply, Check: "registry_missing", ThreadKey: "k1",
					Payload: map[string]any{"fingerprints": fingerprints(tr.Resolved)}},
			}
		})
	require.NoError(t, err)
	assert.Equal(t, tr, seen, "plan sees the run's transitions")

	es, err := s.ClaimOutbox(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, es, 2)
	assert.Equal(t, state.KindNewFindings, es[0].Kind)
	assert.Equal(t, "C1", es[0].Channel)
	assert.Equal(t, "k2", es[0].ThreadKey)
	assert.Equal(t, "registry_missing", es[0].Check)
	assert.Equal(t, 1, es[0].Attempts)
	assert.Equal(t, t0, es[0].CreatedAt.UTC())
	assert.Equal(t, t0.Add(state.OutboxLease), es[0].LeaseUntil.UTC())
	assert.False(t, es[0].Interrupted)
	assert.JSONEq(t, fmt.Sprintf(`{"severity":"critical","fingerprints":[%q]}`, b.Fingerprint), string(es[0].Payload))
	assert.Empty(t, es[1].Channel, "no channel is stored as NULL and read back empty")
	assert.JSONEq(t, fmt.Sprintf(`{"fingerprints":[%q]}`, a.Fingerprint), string(es[1].Payload))

	// A run that could not complete may enqueue too (degraded, say).
	_, err = s.RecordRunWithOutbox(t.Context(), check.Result{Name: "registry_missing", Err: errors.New("boom")}, at(3), at(3),
		func(tr state.Transitions) []state.OutboxItem {
			assert.Equal(t, state.Transitions{}, tr)
			return []state.OutboxItem{{Kind: state.KindDegraded}}
		})
	require.NoError(t, err)
	es, err = s.ClaimOutbox(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, es, 1)
	assert.JSONEq(t, `{}`, string(es[0].Payload), "a nil payload is stored as {}")
}

func TestRecordRunWithOutboxRollsBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  bool // Err set on the result: the error path
		plan func(state.Transitions) []state.OutboxItem
	}{
		{"unknown kind", false, func(state.Transitions) []state.OutboxItem {
			return []state.OutboxItem{{Kind: state.KindNewFindings}, {Kind: "bogus"}}
		}},
		{"payload does not marshal", false, func(state.Transitions) []state.OutboxItem {
			return []state.OutboxItem{{Kind: state.KindNewFindings, Payload: make(chan int)}}
		}},
		{"plan panics", false, func(state.Transitions) []state.OutboxItem { panic("planner bug") }},
		{"unknown kind after an error", true, func(state.Transitions) []state.OutboxItem {
			return []state.OutboxItem{{Kind: "bogus"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.NewPool(t)
			s, _ := openClock(t, pool)
			res := result("registry_missing", finding("registry_missing", "t1", "", "critical"))
			if tt.err {
				res = check.Result{Name: "registry_missing", Err: errors.New("boom")}
			}
			call := func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				_, err = s.RecordRunWithOutbox(t.Context(), res, at(1), at(1), tt.plan)
				return err
			}
			require.Error(t, call())
			assert.Zero(t, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.findings"), "findings rolled back")
			assert.Zero(t, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.runs"), "run rolled back")
			assert.Zero(t, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.outbox"), "outbox rolled back")

			// The store is still usable: the connection went back clean.
			record(t, s, res, 2)
		})
	}
}

func TestClaimOutboxConcurrent(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, _ := openClock(t, pool)
	const n = 300
	items := make([]state.OutboxItem, n)
	for i := range items {
		items[i] = item(i)
	}
	enqueue(t, s, items...)

	// Two replicas, each with its own pool, claim until nothing is left.
	var (
		mu      sync.Mutex
		claimed [2][]int64
		wg      sync.WaitGroup
	)
	for r := range 2 {
		replica, _ := openClock(t, newPool(t, pool, nil))
		wg.Go(func() {
			for {
				es, err := replica.ClaimOutbox(t.Context(), 7)
				if !assert.NoError(t, err) || len(es) == 0 {
					return
				}
				assert.True(t, slices.IsSorted(ids(es)), "oldest first")
				mu.Lock()
				claimed[r] = append(claimed[r], ids(es)...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	all := append(slices.Clone(claimed[0]), claimed[1]...)
	slices.Sort(all)
	assert.Len(t, slices.Compact(slices.Clone(all)), n, "every item claimed")
	assert.Len(t, all, n, "no item claimed twice")
	t.Logf("replica claims: %d and %d", len(claimed[0]), len(claimed[1]))
}

func TestOutboxLease(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, clk := openClock(t, pool)
	ctx := t.Context()
	enqueue(t, s, item(1), item(2))

	es, err := s.ClaimOutbox(ctx, 1)
	require.NoError(t, err)
	require.Len(t, es, 1)
	first := es[0]

	es, err = s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, es, 1, "a leased item is not claimed again")
	second := es[0]
	assert.NotEqual(t, first.ID, second.ID)

	ok, err := s.StartDelivery(ctx, second.ID, second.Attempts)
	require.NoError(t, err)
	require.True(t, ok)

	// Both claimers die. Within the lease nothing is due…
	clk.advance(state.OutboxLease - time.Second)
	es, err = s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	assert.Empty(t, es)
	// …after it both are, and the one that was being sent says so.
	clk.advance(time.Second)
	es, err = s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, es, 2)
	assert.Equal(t, []int64{first.ID, second.ID}, ids(es))
	assert.Equal(t, []int{2, 2}, []int{es[0].Attempts, es[1].Attempts})
	assert.False(t, es[0].Interrupted, "claimed but never started")
	assert.True(t, es[1].Interrupted, "started and never marked")

	// The first claim lost its lease: it may not start delivering.
	ok, err = s.StartDelivery(ctx, first.ID, first.Attempts)
	require.NoError(t, err)
	assert.False(t, ok, "a stale claim may not deliver")
	ok, err = s.StartDelivery(ctx, es[0].ID, es[0].Attempts)
	require.NoError(t, err)
	assert.True(t, ok)

	// A lease that lapses before delivery starts cannot start.
	clk.advance(state.OutboxLease)
	ok, err = s.StartDelivery(ctx, es[1].ID, es[1].Attempts)
	require.NoError(t, err)
	assert.False(t, ok, "an expired lease may not deliver")
}

func TestOutboxMarks(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, clk := openClock(t, pool)
	ctx := t.Context()
	enqueue(t, s, item(1), item(2), item(3), item(4))
	es, err := s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, es, 4)
	sent, uncertain, failed, retry := es[0].ID, es[1].ID, es[2].ID, es[3].ID
	for _, e := range es {
		ok, err := s.StartDelivery(ctx, e.ID, e.Attempts)
		require.NoError(t, err)
		require.True(t, ok)
	}

	require.NoError(t, s.MarkSent(ctx, sent, "1795856400.000001"))
	require.NoError(t, s.MarkUncertain(ctx, uncertain, "slack post: may have been delivered"))
	require.NoError(t, s.MarkFailed(ctx, failed, "slack post: channel_not_found"))
	require.NoError(t, s.MarkRetry(ctx, retry, "slack post: rate_limited", t0.Add(time.Minute)))

	assert.ErrorIs(t, s.MarkRetry(ctx, sent, "late", t0), state.ErrNotClaimed, "a sent item stays sent")
	assert.ErrorIs(t, s.MarkSent(ctx, uncertain, "ts"), state.ErrNotClaimed)

	var (
		st, ts, lastErr string
		sentAt          *time.Time
	)
	require.NoError(t, pool.QueryRow(ctx, `SELECT state, coalesce(slack_ts, ''), coalesce(last_error, ''), sent_at
		FROM tenantdrift.outbox WHERE id = $1`, sent).Scan(&st, &ts, &lastErr, &sentAt))
	assert.Equal(t, "sent", st)
	assert.Equal(t, "1795856400.000001", ts)
	assert.Empty(t, lastErr)
	require.NotNil(t, sentAt)
	assert.Equal(t, t0, sentAt.UTC())

	es, err = s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	assert.Empty(t, es, "the retry is not due yet")

	// Long after every lease, only the retry comes back, once; it is not
	// interrupted (MarkRetry says the request did not reach Slack).
	clk.advance(24 * time.Hour)
	es, err = s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, es, 1)
	assert.Equal(t, retry, es[0].ID)
	assert.False(t, es[0].Interrupted)
	assert.Equal(t, "slack post: rate_limited", es[0].LastError)
	assert.Equal(t, 2, es[0].Attempts)
}

func TestClaimOutboxThreadOrder(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, clk := openClock(t, pool)
	ctx := t.Context()
	enqueue(t, s,
		state.OutboxItem{Kind: state.KindNewFindings, ThreadKey: "k"},
		state.OutboxItem{Kind: state.KindResolvedReply, ThreadKey: "k"},
		state.OutboxItem{Kind: state.KindNewFindings, ThreadKey: "other"},
	)
	es, err := s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, es, 2, "the reply waits for its original")
	assert.Equal(t, []string{"k", "other"}, []string{es[0].ThreadKey, es[1].ThreadKey})
	assert.Equal(t, state.KindNewFindings, es[0].Kind)

	// A retried original still holds the reply back.
	require.NoError(t, s.MarkSent(ctx, es[1].ID, "1.1"))
	require.NoError(t, s.MarkRetry(ctx, es[0].ID, "rate_limited", t0.Add(time.Minute)))
	clk.advance(state.OutboxLease)
	got, err := s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, es[0].ID, got[0].ID)

	require.NoError(t, s.MarkFailed(ctx, got[0].ID, "channel_not_found"))
	got, err = s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, got, 1, "once the original is settled the reply is due")
	assert.Equal(t, state.KindResolvedReply, got[0].Kind)
}

func TestThreads(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, _ := openClock(t, pool)
	ctx := t.Context()

	_, _, ok, err := s.ThreadTS(ctx, "k")
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, s.SaveThread(ctx, "k", "C1", "1.1", "registry_missing", t0))
	ch, ts, ok, err := s.ThreadTS(ctx, "k")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []string{"C1", "1.1"}, []string{ch, ts})

	// Saving again (the drift came back, a new message) replaces it.
	require.NoError(t, s.SaveThread(ctx, "k", "C2", "2.2", "registry_missing", t0.Add(time.Hour)))
	ch, ts, ok, err = s.ThreadTS(ctx, "k")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []string{"C2", "2.2"}, []string{ch, ts})

	require.Error(t, s.SaveThread(ctx, "", "C1", "1.1", "", t0))
}

func TestPruneOutbox(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, clk := openClock(t, pool)
	ctx := t.Context()
	enqueue(t, s, item(1), item(2))
	es, err := s.ClaimOutbox(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, s.MarkSent(ctx, es[0].ID, "1.1"))

	clk.advance(48 * time.Hour)
	_, _, err = s.Prune(ctx, 24*time.Hour)
	require.NoError(t, err)
	var left []json.RawMessage
	rows, err := pool.Query(ctx, `SELECT payload FROM tenantdrift.outbox`)
	require.NoError(t, err)
	for rows.Next() {
		var p json.RawMessage
		require.NoError(t, rows.Scan(&p))
		left = append(left, p)
	}
	require.NoError(t, rows.Err())
	require.Len(t, left, 1, "the sent item is pruned, the pending one kept")
	assert.JSONEq(t, `{"reason":"r2"}`, string(left[0]))
}

func TestEnqueueAndRecordDelivered(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s, _ := openClock(t, pool)
	ctx := t.Context()

	require.NoError(t, s.Enqueue(ctx, item(1), item(2)))
	require.NoError(t, s.RecordDelivered(ctx, item(3), t0.Add(-time.Minute), "sent", "", ""))
	require.NoError(t, s.RecordDelivered(ctx, item(4), t0.Add(-time.Minute), "uncertain", "", "slack webhook: may have been delivered"))
	require.Error(t, s.RecordDelivered(ctx, item(5), t0, "pending", "", ""))
	n, err := s.OutboxPending(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	es, err := s.ClaimOutbox(ctx, 10)
	require.NoError(t, err)
	require.Len(t, es, 2, "recorded deliveries are never claimed")
	assert.JSONEq(t, `{"reason":"r1"}`, string(es[0].Payload))
	n, err = s.OutboxPending(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "leased items are still pending")
	for _, e := range es {
		require.NoError(t, s.MarkSent(ctx, e.ID, ""))
	}
	n, err = s.OutboxPending(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)

	var states string
	require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(state || ':' || (sent_at IS NOT NULL)::text, ',' ORDER BY id)
		FROM tenantdrift.outbox`).Scan(&states))
	assert.Equal(t, "sent:true,sent:true,sent:true,uncertain:false", states)
}
