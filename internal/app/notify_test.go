package app_test

import (
	"context"
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
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/serverproc"
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
	// tokenFile and hookFile hold the token and the webhook URL: config
	// files only ever reference them.
	tokenFile, hookFile string
}

// secretFile writes value to a file of its own and returns its path.
func secretFile(t *testing.T, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(value+"\n"), 0o600))
	return p
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	f.tokenFile = secretFile(t, slackCanary)
	f.hookFile = secretFile(t, f.URL+webhookPath)
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
	return fmt.Sprintf("slack:\n  token_file: %s\n  channel: \"#tenant-alerts\"\n  api_url: %s/\n", f.tokenFile, f.URL)
}

// webhookConfig is the slack section posting to f's incoming webhook.
func (f *fakeSlack) webhookConfig() string {
	return fmt.Sprintf("slack:\n  webhook_url_file: %s\n", f.hookFile)
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

	// Fixed: a reply in the announcement's thread, and the announcement,
	// all of whose findings are resolved, is edited to say so.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "x"))
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	reqs = slack.requests()
	require.Len(t, reqs, 3, r.stderr)
	assert.Equal(t, "chat.postMessage", reqs[1].Method)
	assert.Equal(t, "1795856400.000001", reqs[1].Form.Get("thread_ts"), "the resolution replies in the thread")
	assert.Contains(t, strings.ToLower(reqs[1].Form.Get("text")), "resolved")
	assert.Contains(t, reqs[1].Form.Get("text")+reqs[1].Form.Get("blocks"), "test1")
	assert.Equal(t, "chat.update", reqs[2].Method)
	assert.Equal(t, "1795856400.000001", reqs[2].Form.Get("ts"), "the announcement is edited")
	assert.Contains(t, reqs[2].Form.Get("text"), "Resolved: registry_missing")
	assert.Contains(t, reqs[2].Form.Get("blocks"), "test1")
	outputs = append(outputs, r.stdout, r.stderr)

	// Nothing more to say however often it runs.
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Len(t, slack.requests(), 3, "the edit is made once")

	assertNoTokenLeak(t, reqs, outputs...)
}

// TestAuditAnnouncesHistoryOnce: drift recorded before Slack was
// configured is announced by the first audit with Slack, once, and its
// resolution replies in that announcement's thread.
func TestAuditAnnouncesHistoryOnce(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	audit := func() result {
		t.Helper()
		return run(t, env, "audit", "--config", cfg)
	}

	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"), 0o600))
	r := audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	require.Empty(t, slack.requests())

	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"+slack.config()), 0o600))
	r = audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	reqs := slack.requests()
	require.Len(t, reqs, 1, r.stderr)
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Contains(t, reqs[0].Form.Get("blocks"), "test1")
	assert.Empty(t, reqs[0].Form.Get("thread_ts"))

	r = audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Len(t, slack.requests(), 1, "announced once")

	// Fixed: the reply goes to the late announcement's thread.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "x"))
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	reqs = slack.requests()
	require.Len(t, reqs, 3, r.stderr)
	assert.Equal(t, "1795856400.000001", reqs[1].Form.Get("thread_ts"), "the resolution replies in the thread")
	assert.Equal(t, "chat.update", reqs[2].Method)
	assert.Equal(t, "1795856400.000001", reqs[2].Form.Get("ts"), "the announcement is edited")
	assertNoTokenLeak(t, reqs, r.stdout, r.stderr)
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

// TestAuditStormAcrossChecks: an audit is one run of every check, so many
// new findings across checks make one storm message naming each check's
// count, not one storm (or one message) per check.
func TestAuditStormAcrossChecks(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	// 30 tenants without a database row, 30 stuck in provisioning, 30
	// whose row has another slug.
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at)
		SELECT gen_random_uuid(), 'M' || i, 'm' || i || '@x', 'missing-' || i, 'tenant_missing_' || i, now() - interval '1 day'
		FROM generate_series(1, 30) i`)
	execSQL(t, pool, `WITH t AS (
			INSERT INTO tenants (id, name, email, slug, database_name, created_at)
			SELECT gen_random_uuid(), 'P' || i, 'p' || i || '@x', 'stuck-' || i, 'tenant_stuck_' || i, now() - interval '1 day'
			FROM generate_series(1, 30) i
			RETURNING id, slug, database_name)
		INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		SELECT gen_random_uuid(), t.id, t.database_name, t.slug, 'u', $1, 'provisioning', now() - interval '1 day' FROM t`, encrypt(t, "x"))
	execSQL(t, pool, `WITH t AS (
			INSERT INTO tenants (id, name, email, slug, database_name, created_at)
			SELECT gen_random_uuid(), 'S' || i, 's' || i || '@x', 'slug-' || i, 'tenant_slug_' || i, now() - interval '1 day'
			FROM generate_series(1, 30) i
			RETURNING id, slug, database_name)
		INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		SELECT gen_random_uuid(), t.id, t.database_name, t.slug || '-old', 'u', $1, 'active', now() - interval '1 day' FROM t`, encrypt(t, "x"))
	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\nchecks: {database_orphan: {enabled: false}}\n"+
		slack.config()+"  storm_threshold: 50\n"), 0o600))

	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, "audit", "--config", cfg)
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	reqs := slack.requests()
	require.Len(t, reqs, 1, "one storm message for the whole audit\n%s", r.stderr)
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Equal(t, "Drift storm: 90 new findings across 3 checks", reqs[0].Form.Get("text"))
	for _, name := range []string{"registry_missing", "provisioning_stuck", "field_mismatch"} {
		assert.Contains(t, reqs[0].Form.Get("blocks"), "*`"+name+"`* 30:", name)
	}
	assertNoTokenLeak(t, reqs, r.stdout, r.stderr)
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
	// The alert, its resolution, and the edit of the alert, which a
	// webhook cannot make: it is recorded done without a request.
	assert.Equal(t, "3", sent, rows)
	outputs = append(outputs, rows)
	for _, o := range outputs {
		assert.NotContains(t, o, webhookCanary)
	}
	for _, req := range slack.requests() {
		assert.NotContains(t, req.Body, webhookCanary)
	}
}

// TestSlackNeverCarriesPasswords: an audit whose findings come from
// decrypted passwords (a wrong one, one in clear text, one that does not
// decrypt) posts them to Slack, and no request carries a tenant password,
// the APP_KEY or the landlord's password.
func TestSlackNeverCarriesPasswords(t *testing.T) {
	t.Parallel()
	const (
		wrongPW = "canary-wrong-pw-4411"
		clearPW = "canary-clear-pw-2290"
		landPW  = "canary-landlord-pw-6631"
	)
	dsn, pool := landlord(t)
	role, err := serverproc.RandomHex(4)
	require.NoError(t, err)
	role = "slackcanary_" + role
	admin := pgtest.NewPool(t)
	execSQL(t, admin, fmt.Sprintf("CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s'", role, landPW))
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	u := mustURL(t, dsn)
	u.User = url.UserPassword(role, landPW)

	port := pgtest.Server(t).Port
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES
		('90000000-0000-4000-8000-000000000001', 'W', 'w@x', 'wrong', 'tenant_wrong_pw', now() - interval '1 day'),
		('90000000-0000-4000-8000-000000000002', 'C', 'c@x', 'clear', 'tenant_clear_pw', now() - interval '1 day'),
		('90000000-0000-4000-8000-000000000003', 'U', 'u@x', 'undecryptable', 'tenant_undecryptable', now() - interval '1 day')`)
	otherKey := "base64:" + strings.Repeat("A", 43) + "="
	key, err := laravel.ParseKey(otherKey)
	require.NoError(t, err)
	other, err := laravel.NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	undecryptable, err := other.Encrypt([]byte("canary-other-key-pw"), true)
	require.NoError(t, err)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, status, created_at) VALUES
		(gen_random_uuid(), '90000000-0000-4000-8000-000000000001', 'tenant_wrong_pw', 'wrong', 'postgres', $1, '127.0.0.1', $4, 'active', now() - interval '1 day'),
		(gen_random_uuid(), '90000000-0000-4000-8000-000000000002', 'tenant_clear_pw', 'clear', 'postgres', $2, '127.0.0.1', $4, 'active', now() - interval '1 day'),
		(gen_random_uuid(), '90000000-0000-4000-8000-000000000003', 'tenant_undecryptable', 'undecryptable', 'postgres', $3, '127.0.0.1', $4, 'active', now() - interval '1 day')`,
		encrypt(t, wrongPW), clearPW, undecryptable, port)

	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\nchecks: {database_orphan: {enabled: false}}\n"+slack.config()), 0o600))
	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": u.String(), "APP_KEY": appKey}, "audit", "--config", cfg, "--log-level", "debug")
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	reqs := slack.requests()
	require.NotEmpty(t, reqs)
	var bodies strings.Builder
	for _, req := range reqs {
		bodies.WriteString(req.Body)
	}
	all := bodies.String()
	for _, check := range []string{"db_unreachable", "credential_plaintext", "credential_undecryptable"} {
		assert.Contains(t, all, check, "the findings reached Slack")
	}
	for _, secret := range []string{wrongPW, clearPW, "canary-other-key-pw", landPW, strings.TrimPrefix(appKey, "base64:"), appKey} {
		assert.NotContains(t, all, secret)
		assert.NotContains(t, r.stdout, secret)
		assert.NotContains(t, r.stderr, secret)
	}
	assertNoTokenLeak(t, reqs, r.stdout, r.stderr)
}
