package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
	"github.com/tenantdrift/tenantdrift/internal/notify"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// TestAuditStormOfAThousand: 1,000 tenants lose their database rows at
// once. A cron audit posts one storm summary with the count, not 1,000
// messages; when they all come back, a bounded handful of requests says
// so, not a flood of replies.
func TestAuditStormOfAThousand(t *testing.T) {
	t.Parallel()
	const n = 1000
	dsn, pool := landlord(t)
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at)
		SELECT gen_random_uuid(), 'Tenant ' || i, 't' || i || '@storm.test', 'storm-' || i, 'tenant_storm_' || i, now() - interval '1 day'
		FROM generate_series(1, $1) AS i`, n)
	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"+slack.config()), 0o600))
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	audit := func() result {
		t.Helper()
		return run(t, env, "audit", "--config", cfg, "--check", "registry_missing", "--format", "json")
	}

	r := audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Equal(t, n, parse(t, r.stdout).Summary["findings"])
	reqs := slack.requests()
	require.Len(t, reqs, 1, "one storm summary, not one message per finding")
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Contains(t, reqs[0].Form.Get("text"), "Drift storm: 1000 new findings")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "registry_missing")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "no_database_row")

	// The same storm again: nothing new to say.
	r = audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Len(t, slack.requests(), 1)

	// Every row is back: one resolution, however many findings it covers.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		SELECT gen_random_uuid(), id, database_name, slug, 'u', 'x', 'active', now() FROM tenants`)
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	reqs = slack.requests()
	require.LessOrEqual(t, len(reqs), 3, "a bounded handful of requests, not a flood")
	require.Greater(t, len(reqs), 1, "the resolution is announced")
	for _, req := range reqs[1:] {
		assert.Equal(t, "chat.postMessage", req.Method)
		assert.Less(t, len(req.Form.Get("blocks")), 40_000, "a bounded message")
	}
	resolution := reqs[1].Form.Get("text") + reqs[1].Form.Get("blocks")
	assert.Contains(t, strings.ToLower(resolution), "resolved")
	assert.Contains(t, resolution, "1000")

	// And nothing more once it is quiet.
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Len(t, slack.requests(), len(reqs))
	assertNoTokenLeak(t, slack.requests(), r.stdout, r.stderr)
}

// newHangingSlack is a fakeSlack whose first chat.postMessage is read and
// recorded, then never answered: arrived is closed when it has come, and
// the request hangs until the client goes away.
func newHangingSlack(t *testing.T) (f *fakeSlack, arrived <-chan struct{}) {
	t.Helper()
	f = &fakeSlack{}
	first := make(chan struct{})
	stop := make(chan struct{})
	var once sync.Once
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hang := false
		if r.URL.Path == "/chat.postMessage" {
			once.Do(func() { hang = true })
		}
		if !hang {
			f.serve(w, r)
			return
		}
		f.serve(httptest.NewRecorder(), r) // recorded, not answered
		close(first)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(f.Close)
	t.Cleanup(func() { close(stop) }) // runs first: Close waits for handlers
	f.tokenFile = secretFile(t, slackCanary)
	f.hookFile = secretFile(t, f.URL+webhookPath)
	return f, first
}

// outboxItem is what the state store holds of an outbox row.
type outboxItem struct {
	State    string
	Attempts int
	Started  bool // sending_at set: a request may have been made
}

// newFindingsItem returns the outbox row announcing check's findings
// about tenant slug.
func newFindingsItem(t *testing.T, pool *pgxpool.Pool, slug string) outboxItem {
	t.Helper()
	var it outboxItem
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT state, attempts, sending_at IS NOT NULL FROM tenantdrift.outbox
		WHERE kind = 'new_findings' AND payload::text LIKE '%' || $1 || '%'`, `"tenant_slug": "`+slug+`"`).Scan(&it.State, &it.Attempts, &it.Started))
	return it
}

// postsAbout returns the chat.postMessage requests that mention slug.
func postsAbout(reqs []slackRequest, slug string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == "chat.postMessage" && strings.Contains(r.Form.Get("blocks"), slug) {
			n++
		}
	}
	return n
}

// driftPosts returns the requests that are not tenantdrift's own health
// messages: a daemon whose state store vanishes says it is degraded, and
// the next one that finds it back says it recovered.
func driftPosts(reqs []slackRequest) []slackRequest {
	var out []slackRequest
	for _, r := range reqs {
		text := r.Form.Get("text")
		if strings.Contains(text, "tenantdrift is degraded") || strings.Contains(text, "tenantdrift recovered") {
			continue
		}
		out = append(out, r)
	}
	return out
}

// afterLease is a daemon clock past the lease of every claim made until
// now: what a replacement daemon started that much later sees.
func afterLease() time.Time { return time.Now().Add(state.OutboxLease + time.Minute) }

// crashConfig is the config of a daemon whose state store is stateDSN.
func crashConfig(stateDSN string, slack *fakeSlack) string {
	return fastConfig + "state:\n  dsn: " + stateDSN + "\n" + slack.config()
}

// TestServeCrashWhilePosting: the daemon dies while Slack holds its post
// (the request was made, its outcome never recorded). A new daemon on the
// same state store does not post it again, since it may have arrived: it
// marks it uncertain; later alerts still flow.
func TestServeCrashWhilePosting(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	u := mustURL(t, dsn)
	px := newProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = px.addr
	slack, arrived := newHangingSlack(t)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}

	first := startServe(t, env, crashConfig(viaProxy.String(), slack))
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("no post reached Slack: %s", first.stderr.String())
	}
	// The process dies: from here nothing it does reaches the state store.
	px.down()
	first.stop()
	require.Equal(t, outboxItem{State: "pending", Attempts: 1, Started: true}, newFindingsItem(t, pool, "test1"),
		"started, never marked: %s", first.stderr.String())

	second := startServeClock(t, env, crashConfig(dsn, slack), afterLease)
	require.Eventually(t, func() bool { return newFindingsItem(t, pool, "test1").State == "uncertain" },
		20*time.Second, 100*time.Millisecond, second.stderr.String())
	assert.Contains(t, second.stderr.String(), "slack delivery uncertain, not retrying")

	// Later drift is still announced, and test1 never again.
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at)
		VALUES ('80b8d7cd-0000-4000-8000-000000000003', 'Test Two', 't@two.test', 'test2', 'tenant_test2', now() - interval '1 day')`)
	require.Eventually(t, func() bool { return postsAbout(slack.requests(), "test2") == 1 }, 20*time.Second, 100*time.Millisecond, second.stderr.String())
	second.waitMetric(`tenantdrift_check_runs_total{check="registry_missing",outcome="drift"}`, "6")
	assert.Equal(t, app.ExitOK, second.stop())
	reqs := slack.requests()
	assert.Equal(t, 1, postsAbout(reqs, "test1"), "the post that may have arrived is not repeated")
	assert.Equal(t, 1, postsAbout(reqs, "test2"))
	assert.Len(t, driftPosts(reqs), 2)
	assertNoTokenLeak(t, reqs, first.stderr.String(), second.stderr.String())
}

// TestServeCrashBeforePosting: the daemon dies after claiming the post
// and before making the request. A new daemon on the same state store
// posts it once the claim's lease has lapsed, exactly once.
func TestServeCrashBeforePosting(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	u := mustURL(t, dsn)
	px := newProxy(t, u.Host)
	// Dies the moment it tries to record that the request starts
	// (Store.StartDelivery): claimed, not started.
	px.downOn("SET sending_at = $1")
	viaProxy := *u
	viaProxy.Host = px.addr
	slack := newFakeSlack(t)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}

	first := startServe(t, env, crashConfig(viaProxy.String(), slack))
	require.Eventually(t, px.isDown, 20*time.Second, 50*time.Millisecond, first.stderr.String())
	first.stop()
	require.Equal(t, outboxItem{State: "pending", Attempts: 1, Started: false}, newFindingsItem(t, pool, "test1"),
		"claimed, not started: %s", first.stderr.String())
	assert.Empty(t, driftPosts(slack.requests()))

	second := startServeClock(t, env, crashConfig(dsn, slack), afterLease)
	require.Eventually(t, func() bool { return newFindingsItem(t, pool, "test1").State == "sent" },
		20*time.Second, 100*time.Millisecond, second.stderr.String())
	second.waitMetric(`tenantdrift_check_runs_total{check="registry_missing",outcome="drift"}`, "4")
	assert.Equal(t, app.ExitOK, second.stop())
	reqs := slack.requests()
	assert.Equal(t, 1, postsAbout(reqs, "test1"), "posted exactly once")
	assert.Len(t, driftPosts(reqs), 1)
	assertNoTokenLeak(t, reqs, first.stderr.String(), second.stderr.String())
}

// TestServeWaitsForDeliveryOnShutdown: the outbox drain in the background
// (not a scheduled run) is mid-delivery when the daemon is told to stop.
// serve waits for it to record the outcome before it closes the pools:
// it does not return first, and nothing fails on a closed pool.
func TestServeWaitsForDeliveryOnShutdown(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	// An item waiting in the outbox before the daemon starts, and no
	// check runs to deliver it: only the background drain will.
	s, err := state.Open(context.Background(), pool, "", time.Now)
	require.NoError(t, err)
	require.NoError(t, s.Enqueue(context.Background(), state.OutboxItem{Kind: state.KindDegraded,
		Payload: notify.Payload{Reason: "a test item"}}))

	// Slack keeps rate-limiting, so the drain waits in the Client.
	f := &fakeSlack{}
	arrived := make(chan struct{})
	var once sync.Once
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.serve(httptest.NewRecorder(), r) // recorded
		once.Do(func() { close(arrived) })
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(f.Close)
	f.tokenFile = secretFile(t, slackCanary)

	// The daemon's clock stalls while held: the drain, done waiting,
	// reads it to schedule its retry, and stalls there for a second.
	var hold atomic.Bool
	release := make(chan struct{})
	now := func() time.Time {
		if hold.Load() {
			<-release
		}
		return time.Now()
	}
	cfg := `
schedule: "@every 1h"
run_on_start: false
leader:
  heartbeat: 200ms
server:
  shutdown_grace: 5s
` + f.config()
	d := startServeClock(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, cfg, now)
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("the drain never reached Slack: %s", d.stderr.String())
	}
	require.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "slack rate limited") },
		10*time.Second, 20*time.Millisecond, d.stderr.String())

	hold.Store(true)
	d.cancel()
	returnedEarly := false
	select {
	case code := <-d.done:
		d.done <- code
		returnedEarly = true
	case <-time.After(time.Second):
	}
	close(release)
	assert.Equal(t, app.ExitOK, d.stop(), d.stderr.String())
	assert.False(t, returnedEarly, "serve returned while its drain was still delivering")
	time.Sleep(200 * time.Millisecond) // anything still running has logged by now
	assert.NotContains(t, d.stderr.String(), "closed pool")
	var st string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT state FROM tenantdrift.outbox`).Scan(&st))
	assert.Equal(t, "pending", st, "the retry is recorded: %s", d.stderr.String())
}
