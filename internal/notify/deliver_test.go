package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var _ Outbox = (*state.Store)(nil)

// daemon is one tenantdrift process: a store and a deliverer on the
// shared database, Slack and clock.
type daemon struct {
	store *state.Store
	d     *Deliverer
}

func start(t *testing.T, pool *pgxpool.Pool, f *fakeSlack, clock *fakeClock) daemon {
	t.Helper()
	d, _ := startWith(t, pool, f, clock, DelivererOptions{Channel: "CDEFAULT"})
	return d
}

// startWith is start with the deliverer's options and delivery metrics of
// its own, which it returns.
func startWith(t *testing.T, pool *pgxpool.Pool, f *fakeSlack, clock *fakeClock, opts DelivererOptions) (daemon, *Metrics) {
	t.Helper()
	s, err := state.Open(t.Context(), pool, "", clock.Now)
	require.NoError(t, err)
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	c := newClient(f, clock, nil, Options{MaxAttempts: 1, ChannelInterval: -1})
	opts.Now, opts.Metrics = clock.Now, m
	return daemon{store: s, d: NewDeliverer(c, s, opts)}, m
}

// plan is a minimal policy: one message per run with new findings, in
// C1, threaded by check; one reply per resolved finding.
func plan(checkName string) func(state.Transitions) []state.OutboxItem {
	return func(tr state.Transitions) []state.OutboxItem {
		var items []state.OutboxItem
		if len(tr.New) > 0 {
			items = append(items, state.OutboxItem{Kind: state.KindNewFindings, Check: checkName, Channel: "C1",
				ThreadKey: checkName, Payload: Payload{Severity: "critical", Findings: PayloadFindings(tr.New)}})
		}
		for _, f := range tr.Resolved {
			items = append(items, state.OutboxItem{Kind: state.KindResolvedReply, Check: checkName, Channel: "C1",
				ThreadKey: checkName, Payload: Payload{Findings: PayloadFindings([]state.Finding{f})}})
		}
		return items
	}
}

func drift(slugs ...string) check.Result {
	res := check.Result{Name: "registry_missing", Status: check.StatusOK}
	for i, slug := range slugs {
		f := check.Finding{Check: "registry_missing", Severity: "critical", TenantID: fmt.Sprint(100 + i),
			TenantSlug: slug, Reason: "no_database_row"}
		f.Fingerprint = check.Fingerprint(f)
		res.Findings = append(res.Findings, f)
		res.Status = check.StatusDrift
	}
	return res
}

func recordRun(t *testing.T, s *state.Store, clock *fakeClock, res check.Result) {
	t.Helper()
	now := clock.Now()
	_, err := s.RecordRunWithOutbox(t.Context(), res, now, now, plan(res.Name))
	require.NoError(t, err)
}

func deliverOnce(t *testing.T, dm daemon) (sent, failed int) {
	t.Helper()
	sent, failed, err := dm.d.DeliverOnce(t.Context())
	require.NoError(t, err)
	return sent, failed
}

func outboxStates(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT state FROM tenantdrift.outbox ORDER BY id`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func posts(f *fakeSlack) []request {
	var out []request
	for _, r := range f.requests() {
		if r.Path == "/api/chat.postMessage" || r.Path == "/api/chat.update" {
			out = append(out, r)
		}
	}
	return out
}

func TestDeliverNewFindingsRestartAndReply(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	first := start(t, pool, f, clock)

	recordRun(t, first.store, clock, drift("acme", "globex"))
	sent, failed := deliverOnce(t, first)
	assert.Equal(t, []int{1, 0}, []int{sent, failed})
	reqs := posts(f)
	require.Len(t, reqs, 1, "one run's new findings are one message")
	assert.Equal(t, "C1", reqs[0].Form.Get("channel"))
	assert.Contains(t, reqs[0].Form.Get("text"), "registry_missing")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "acme")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "globex")
	originalTS := "1795856400.000001"

	// Restart: a new process on the same database posts nothing again,
	// even long after every lease.
	require.NoError(t, clock.Sleep(t.Context(), time.Hour))
	second := start(t, pool, f, clock)
	sent, failed = deliverOnce(t, second)
	assert.Equal(t, []int{0, 0}, []int{sent, failed})
	assert.Len(t, posts(f), 1, "nothing posted twice after a restart")

	// globex is fixed: the reply goes into the original thread.
	recordRun(t, second.store, clock, drift("acme"))
	sent, _ = deliverOnce(t, second)
	assert.Equal(t, 1, sent)
	reqs = posts(f)
	require.Len(t, reqs, 2)
	assert.Equal(t, originalTS, reqs[1].Form.Get("thread_ts"), "the stored ts is reused")
	assert.Equal(t, "C1", reqs[1].Form.Get("channel"))
	assert.Contains(t, reqs[1].Form.Get("text"), "Resolved after 1h")
	assert.Equal(t, []string{"sent", "sent"}, outboxStates(t, pool))
}

func TestDeliverServerErrorIsUncertain(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	f.respond = status(http.StatusInternalServerError)
	dm := start(t, pool, f, clock)

	recordRun(t, dm.store, clock, drift("acme"))
	sent, failed := deliverOnce(t, dm)
	assert.Equal(t, []int{0, 1}, []int{sent, failed})
	assert.Equal(t, []string{"uncertain"}, outboxStates(t, pool))

	f.respond = nil
	for range 3 {
		require.NoError(t, clock.Sleep(t.Context(), 24*time.Hour))
		sent, failed = deliverOnce(t, start(t, pool, f, clock))
		assert.Equal(t, []int{0, 0}, []int{sent, failed})
	}
	assert.Len(t, posts(f), 1, "an uncertain message is never re-posted")
}

func TestDeliverRateLimitedIsRetried(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	limited := status(http.StatusTooManyRequests, "Retry-After", "1")
	f.respond = func(w http.ResponseWriter, r *http.Request, n int) bool { return n == 1 && limited(w, r, n) }
	dm := start(t, pool, f, clock)

	recordRun(t, dm.store, clock, drift("acme"))
	sent, failed := deliverOnce(t, dm)
	assert.Equal(t, []int{0, 0}, []int{sent, failed})
	assert.Equal(t, []string{"pending"}, outboxStates(t, pool))

	sent, _ = deliverOnce(t, dm)
	assert.Zero(t, sent, "not due before the backoff")

	require.NoError(t, clock.Sleep(t.Context(), DefaultRetryBackoff))
	sent, failed = deliverOnce(t, dm)
	assert.Equal(t, []int{1, 0}, []int{sent, failed})
	require.NoError(t, clock.Sleep(t.Context(), time.Hour))
	sent, _ = deliverOnce(t, dm)
	assert.Zero(t, sent)
	assert.Len(t, posts(f), 2, "refused once, then delivered once")
	assert.Equal(t, []string{"sent"}, outboxStates(t, pool))
}

func TestDeliverInterruptedIsUncertain(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	dm := start(t, pool, f, clock)
	recordRun(t, dm.store, clock, drift("acme"))

	// A process claims the item, starts posting and dies.
	es, err := dm.store.ClaimOutbox(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, es, 1)
	ok, err := dm.store.StartDelivery(t.Context(), es[0].ID, es[0].Attempts)
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, clock.Sleep(t.Context(), state.OutboxLease))
	sent, failed := deliverOnce(t, start(t, pool, f, clock))
	assert.Equal(t, []int{0, 1}, []int{sent, failed})
	assert.Empty(t, posts(f), "a message that may have been posted is not re-posted")
	assert.Equal(t, []string{"uncertain"}, outboxStates(t, pool))
}

func TestDeliverThreadsAndFailures(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	dm := start(t, pool, f, clock)
	ctx := t.Context()
	require.NoError(t, dm.store.SaveThread(ctx, "known", "C9", "1.5", "registry_missing", t0))

	resolved := t0.Add(time.Hour)
	fs := []PayloadFinding{{Fingerprint: "fp", TenantSlug: "acme", FirstSeen: t0, ResolvedAt: &resolved}}
	items := []state.OutboxItem{
		{Kind: state.KindResolvedEdit, Check: "registry_missing", ThreadKey: "known", Payload: Payload{Severity: "critical", Findings: fs}},
		{Kind: state.KindReminder, Check: "registry_missing", ThreadKey: "unknown", Payload: Payload{Findings: fs, At: t0.Add(2 * time.Hour)}},
		{Kind: state.KindDegraded, Channel: "CGONE", Payload: Payload{Reason: "state store unreachable"}},
	}
	_, err := dm.store.RecordRunWithOutbox(ctx, check.Result{Name: "x"}, t0, t0,
		func(state.Transitions) []state.OutboxItem { return items })
	require.NoError(t, err)
	f.respond = func(w http.ResponseWriter, r *http.Request, n int) bool {
		return f.requests()[n-1].Form.Get("channel") == "CGONE" && apiError("channel_not_found")(w, r, n)
	}

	sent, failed := deliverOnce(t, dm)
	assert.Equal(t, []int{2, 1}, []int{sent, failed})
	reqs := posts(f)
	require.Len(t, reqs, 3)
	assert.Equal(t, "/api/chat.update", reqs[0].Path, "an edit of a known message")
	assert.Equal(t, []string{"C9", "1.5"}, []string{reqs[0].Form.Get("channel"), reqs[0].Form.Get("ts")})
	assert.Equal(t, "/api/chat.postMessage", reqs[1].Path, "a reply without its original is a new message")
	assert.Equal(t, "CDEFAULT", reqs[1].Form.Get("channel"))
	assert.Empty(t, reqs[1].Form.Get("thread_ts"))
	assert.Contains(t, reqs[1].Form.Get("text"), "Still open")
	assert.Equal(t, []string{"sent", "sent", "failed"}, outboxStates(t, pool))
}

func TestRender(t *testing.T) {
	resolved := t0.Add(time.Hour)
	fs := []PayloadFinding{{Fingerprint: "fp", TenantSlug: "acme", FirstSeen: t0, ResolvedAt: &resolved}}
	tests := []struct {
		kind    string
		payload Payload
		text    string
	}{
		{state.KindNewFindings, Payload{Severity: "critical", Findings: fs}, "registry_missing"},
		{state.KindResolvedReply, Payload{Findings: fs}, "Resolved after 1h"},
		{state.KindResolvedReply, Payload{Findings: append(fs, fs[0])}, "Resolved: registry_missing"},
		{state.KindResolvedEdit, Payload{Findings: fs}, "Resolved: registry_missing"},
		{state.KindReminder, Payload{Findings: fs, At: t0.Add(3 * time.Hour)}, "the oldest for 3h"},
		{state.KindStorm, Payload{Counts: map[string]map[string]int{"registry_missing": {"no_database_row": 600}}, Total: 600}, "600 new findings"},
		{state.KindDegraded, Payload{Reason: "state store unreachable"}, "state store unreachable"},
		{state.KindRecovered, Payload{AfterSeconds: 600}, "recovered after 10m"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			b, err := json.Marshal(tt.payload)
			require.NoError(t, err)
			m, err := Render(tt.kind, "registry_missing", b, RenderOptions{})
			require.NoError(t, err)
			assert.Contains(t, m.Text, tt.text)
			assertWithinLimits(t, m)
		})
	}
	_, err := Render("bogus", "", nil, RenderOptions{})
	require.Error(t, err)
	_, err = Render(state.KindDegraded, "", []byte(`[1]`), RenderOptions{})
	require.Error(t, err)
}

// TestDeliverWebhook: through an incoming webhook every item is its own
// message, an edit is skipped, and failures keep the outbox semantics
// without the webhook URL reaching the outbox or the logs.
func TestDeliverWebhook(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	var logs bytes.Buffer
	s, err := state.Open(t.Context(), pool, "", clock.Now)
	require.NoError(t, err)
	c := newClient(f, clock, &logs, Options{MaxAttempts: 1, ChannelInterval: -1})
	d := NewDeliverer(c, s, DelivererOptions{WebhookURL: f.URL + canaryHook, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	dm := daemon{store: s, d: d}
	hooks := func() []request {
		var out []request
		for _, r := range f.requests() {
			if r.Path == canaryHook {
				out = append(out, r)
			}
		}
		return out
	}

	recordRun(t, s, clock, drift("acme", "globex"))
	sent, failed := deliverOnce(t, dm)
	assert.Equal(t, []int{1, 0}, []int{sent, failed})
	require.Len(t, hooks(), 1)
	assert.Contains(t, hooks()[0].Body, "acme")

	// globex resolved: a standalone message; an edit of the original
	// message is marked sent without a request.
	clock.Sleep(t.Context(), time.Hour) //nolint:errcheck // the fake clock never fails
	now := clock.Now()
	_, err = s.RecordRunWithOutbox(t.Context(), drift("acme"), now, now, func(tr state.Transitions) []state.OutboxItem {
		items := plan("registry_missing")(tr)
		return append(items, state.OutboxItem{Kind: state.KindResolvedEdit, Check: "registry_missing", ThreadKey: "registry_missing",
			Payload: Payload{Severity: "critical", Findings: PayloadFindings(tr.Resolved)}})
	})
	require.NoError(t, err)
	sent, failed = deliverOnce(t, dm)
	assert.Equal(t, []int{1, 0}, []int{sent, failed})
	sent, failed = deliverOnce(t, dm) // the edit waits for the reply of its thread
	assert.Equal(t, []int{1, 0}, []int{sent, failed})
	reqs := hooks()
	require.Len(t, reqs, 2, "the edit made no request")
	assert.Contains(t, reqs[1].Body, "Resolved")
	assert.Contains(t, reqs[1].Body, "Tenant without a database row", "the resolution names its check")
	assert.Contains(t, reqs[1].Body, "globex")
	assert.Equal(t, []string{"sent", "sent", "sent"}, outboxStates(t, pool))

	// A server error after the request was sent: uncertain, never again.
	f.respond = status(http.StatusInternalServerError)
	recordRun(t, s, clock, drift("acme", "globex", "initech"))
	sent, failed = deliverOnce(t, dm)
	assert.Equal(t, []int{0, 1}, []int{sent, failed})
	assert.Equal(t, []string{"sent", "sent", "sent", "uncertain"}, outboxStates(t, pool))
	f.respond = nil
	require.NoError(t, clock.Sleep(t.Context(), 24*time.Hour))
	sent, failed = deliverOnce(t, dm)
	assert.Equal(t, []int{0, 0}, []int{sent, failed})

	// Slack unreachable before the request: retried later, and the error
	// that names the URL is stored redacted.
	f.Close()
	recordRun(t, s, clock, drift("acme"))
	sent, failed = deliverOnce(t, dm)
	assert.Equal(t, []int{0, 0}, []int{sent, failed})
	var rows string
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT string_agg(o::text, E'\n') FROM tenantdrift.outbox o`).Scan(&rows))
	assert.Contains(t, rows, "pending")
	assert.NotContains(t, rows, "canaryhooksecret")
	assert.NotContains(t, logs.String(), "canaryhooksecret")
	assert.Contains(t, logs.String(), "will retry", "the failure was logged")
}
