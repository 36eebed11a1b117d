package app_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
)

// slackCanary is the bot token of the tests: it may appear in the token
// form field of requests to Slack, nowhere else.
const slackCanary = "xoxb-Canary-Slack-7c1e"

// webhookPath is the path of the tests' incoming webhook on the fake
// Slack; the URL it makes is a secret like the token.
const webhookPath = "/services/T0CANARY/B0CANARY/WebhookCanary9f3a"

// webhookCanary is the secret part of the webhook URL: no output may
// contain it.
const webhookCanary = "WebhookCanary9f3a"

// slackRequest is one Web API call the fake Slack received.
type slackRequest struct {
	Method string      // chat.postMessage, chat.update, or webhook
	Form   url.Values  // the form, without token
	Token  string      // the token field
	Header http.Header // the request's headers
	Body   string      // the raw body
}

// fakeSlack is Slack's Web API, in-process: chat.postMessage and
// chat.update succeed with increasing timestamps.
type fakeSlack struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []slackRequest
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	req := slackRequest{Method: strings.TrimPrefix(r.URL.Path, "/"), Token: form.Get("token"), Header: r.Header.Clone(), Body: string(body)}
	if r.URL.Path == webhookPath {
		req.Method, form = "webhook", url.Values{}
	}
	form.Del("token")
	req.Form = form
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch req.Method {
	case "chat.postMessage", "chat.update":
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1795856400.%06d"}`, form.Get("channel"), n)
	case "webhook":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeSlack) requests() []slackRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackRequest(nil), f.reqs...)
}

// config is the slack section pointing at f.
func (f *fakeSlack) config() string {
	return fmt.Sprintf("slack:\n  token: %s\n  channel: \"#tenant-alerts\"\n  api_url: %s/\n", slackCanary, f.URL)
}

// webhookConfig is the slack section posting to f's incoming webhook.
func (f *fakeSlack) webhookConfig() string {
	return fmt.Sprintf("slack:\n  webhook_url: %s%s\n", f.URL, webhookPath)
}

// assertNoTokenLeak checks that the token was sent only as the token field.
func assertNoTokenLeak(t *testing.T, reqs []slackRequest, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		assert.NotContains(t, o, slackCanary)
	}
	for _, r := range reqs {
		assert.Equal(t, slackCanary, r.Token, r.Method)
		assert.NotContains(t, r.Form.Encode(), slackCanary, r.Method)
		assert.Equal(t, 1, strings.Count(r.Body, slackCanary), r.Method)
		for k, vs := range r.Header {
			if k == "Authorization" {
				continue
			}
			assert.NotContains(t, strings.Join(vs, " "), slackCanary, k)
		}
	}
}

// TestAuditPostsSlackAlerts: a cron container's audits announce new drift
// once, stay quiet while it lasts, and reply when it resolves.
func TestAuditPostsSlackAlerts(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"+slack.config()), 0o600))
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	audit := func(args ...string) result {
		t.Helper()
		return run(t, env, append([]string{"audit", "--config", cfg, "--log-level", "debug"}, args...)...)
	}

	r := audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	reqs := slack.requests()
	require.Len(t, reqs, 1, r.stderr)
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Equal(t, "#tenant-alerts", reqs[0].Form.Get("channel"))
	assert.Contains(t, reqs[0].Form.Get("blocks"), "test1")
	assert.Contains(t, reqs[0].Form.Get("text"), "registry_missing")
	assert.Empty(t, reqs[0].Form.Get("thread_ts"))
	outputs := []string{r.stdout, r.stderr}

	// The same drift again: nothing new to say.
	r = audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Len(t, slack.requests(), 1)
	outputs = append(outputs, r.stdout, r.stderr)

	// --no-notify records but posts nothing.
	r = audit("--no-notify")
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Len(t, slack.requests(), 1)

	// Fixed: a reply in the announcement's thread.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "x"))
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	reqs = slack.requests()
	require.Len(t, reqs, 2, r.stderr)
	assert.Equal(t, "chat.postMessage", reqs[1].Method)
	assert.Equal(t, "1795856400.000001", reqs[1].Form.Get("thread_ts"), "the resolution replies in the thread")
	assert.Contains(t, strings.ToLower(reqs[1].Form.Get("text")), "resolved")
	assert.Contains(t, reqs[1].Form.Get("text")+reqs[1].Form.Get("blocks"), "test1")
	outputs = append(outputs, r.stdout, r.stderr)

	assertNoTokenLeak(t, reqs, outputs...)
}

// TestServePostsSlackAlertOnce: the daemon announces the incident once,
// however often the check runs.
func TestServePostsSlackAlertOnce(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	slack := newFakeSlack(t)
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, fastConfig+slack.config())

	require.Eventually(t, func() bool { return len(slack.requests()) >= 1 }, 10*time.Second, 50*time.Millisecond, d.stderr.String())
	// Several more runs of every check (@every 1s).
	d.waitMetric(`tenantdrift_check_runs_total{check="registry_missing",outcome="drift"}`, "3")
	time.Sleep(500 * time.Millisecond) // the last run's delivery, if any
	reqs := slack.requests()
	require.Len(t, reqs, 1, d.stderr.String())
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Contains(t, reqs[0].Form.Get("blocks"), "test1")
	assert.Equal(t, app.ExitOK, d.stop())
	assertNoTokenLeak(t, slack.requests(), d.stderr.String())
}

// TestAuditPostsThroughWebhook: with an incoming webhook instead of a bot
// token, the alert and its resolution are separate messages, each once,
// and the webhook URL appears nowhere but in the requests' URL.
func TestAuditPostsThroughWebhook(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"+slack.webhookConfig()), 0o600))
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	audit := func() result {
		t.Helper()
		return run(t, env, "audit", "--config", cfg, "--log-level", "debug")
	}

	r := audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	reqs := slack.requests()
	require.Len(t, reqs, 1, r.stderr)
	assert.Equal(t, "webhook", reqs[0].Method)
	assert.Contains(t, reqs[0].Body, "test1")
	assert.Contains(t, reqs[0].Body, "registry_missing")
	outputs := []string{r.stdout, r.stderr}

	// Fixed: the resolution is a message of its own that names the check.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "x"))
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	reqs = slack.requests()
	require.Len(t, reqs, 2, r.stderr)
	assert.Equal(t, "webhook", reqs[1].Method)
	assert.Contains(t, reqs[1].Body, "Resolved")
	assert.Contains(t, reqs[1].Body, "test1")
	assert.Contains(t, reqs[1].Body, "Tenant without a database row", "the resolution stands alone")
	assert.NotContains(t, reqs[1].Body, "thread_ts")
	outputs = append(outputs, r.stdout, r.stderr)

	// Nothing changed: nothing to say.
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Len(t, slack.requests(), 2)
	outputs = append(outputs, r.stdout, r.stderr)

	var rows, sent string
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT coalesce(string_agg(o::text, E'\n'), ''), count(*) FILTER (WHERE state = 'sent')::text FROM tenantdrift.outbox o`).Scan(&rows, &sent))
	assert.Equal(t, "2", sent, rows)
	outputs = append(outputs, rows)
	for _, o := range outputs {
		assert.NotContains(t, o, webhookCanary)
	}
	for _, req := range slack.requests() {
		assert.NotContains(t, req.Body, webhookCanary)
	}
}
