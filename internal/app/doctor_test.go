package app_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
)

// doctorSlack is the Slack doctor talks to: auth.test accepts only token,
// chat.scheduleMessage answers per channel (channel_not_found,
// not_in_channel, or scheduled), and the webhook at hookPath fails when
// hookStatus is set.
type doctorSlack struct {
	*httptest.Server
	token    string
	hookPath string

	mu         sync.Mutex
	reqs       []slackRequest
	hookStatus int
}

func newDoctorSlack(t *testing.T, token, hookPath string) *doctorSlack {
	t.Helper()
	f := &doctorSlack{token: token, hookPath: hookPath}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *doctorSlack) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	req := slackRequest{Method: strings.TrimPrefix(r.URL.Path, "/"), Token: form.Get("token"), Header: r.Header.Clone(), Body: string(body)}
	form.Del("token")
	req.Form = form
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	hookStatus := f.hookStatus
	f.mu.Unlock()
	if r.URL.Path == f.hookPath {
		if hookStatus != 0 {
			w.WriteHeader(hookStatus)
		}
		fmt.Fprint(w, "ok")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if req.Token != f.token {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	channel := form.Get("channel")
	switch req.Method {
	case "auth.test":
		fmt.Fprint(w, `{"ok":true,"url":"https://acme.slack.com/","team":"Acme","user":"tenantdrift","team_id":"T0ACME","user_id":"U0BOT"}`)
	case "chat.scheduleMessage":
		switch channel {
		case "#gone":
			fmt.Fprint(w, `{"ok":false,"error":"channel_not_found"}`)
		case "#private":
			fmt.Fprint(w, `{"ok":false,"error":"not_in_channel"}`)
		default:
			fmt.Fprintf(w, `{"ok":true,"channel":"C%s","scheduled_message_id":"Q1","post_at":%s}`, strings.TrimPrefix(channel, "#"), form.Get("post_at"))
		}
	case "chat.deleteScheduledMessage", "chat.postMessage":
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1795856400.000001"}`, channel)
	default:
		http.NotFound(w, r)
	}
}

func (f *doctorSlack) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.Method+" "+r.Form.Get("channel"))
	}
	return out
}

func (f *doctorSlack) requests() []slackRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackRequest(nil), f.reqs...)
}

// doctorLines returns doctor's output lines keyed by what they are about.
func doctorLines(t *testing.T, stdout string) map[string]string {
	t.Helper()
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		status, rest, ok := strings.Cut(l, "  ")
		require.True(t, ok, "line %q", l)
		status = strings.TrimSpace(status)
		require.Contains(t, []string{"ok", "FAIL", "skip"}, status, "line %q", l)
		what, detail, ok := strings.Cut(strings.TrimSpace(rest), ": ")
		require.True(t, ok, "line %q", l)
		lines[what] = status + " " + detail
	}
	return lines
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool) // uml's password is encrypted with appKey
	slack := newDoctorSlack(t, slackCanary, "/services/T0/B0/hook")
	closed := closedAddr(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	api := "  api_url: " + slack.URL + "/\n"
	healthy := write("healthy.yaml", "slack:\n  token_file: "+secretFile(t, slackCanary)+"\n  channel: \"#alerts\"\n  channels: {critical: \"#alerts\", warning: \"#oncall\"}\n"+api)
	broken := write("broken.yaml", "slack:\n  token_file: "+secretFile(t, slackCanary)+"\n  channel: \"#alerts\"\n  channels: {critical: \"#private\", info: \"#gone\"}\n"+api)
	badToken := write("badtoken.yaml", "slack:\n  token_file: "+secretFile(t, "xoxb-revoked")+"\n  channel: \"#alerts\"\n"+api)
	webhook := write("webhook.yaml", "slack:\n  webhook_url_file: "+secretFile(t, slack.URL+"/services/T0/B0/hook")+"\n")
	otherKey := "base64:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		lines   map[string]string // what → substring of "status detail"
		methods []string          // the Slack calls, in order
	}{
		{
			name: "healthy", env: map[string]string{"APP_KEY": appKey}, args: []string{"--config", healthy}, code: app.ExitOK,
			lines: map[string]string{
				"landlord":    "ok connected to ",
				"registry":    "ok layout laravel, 2 tenants",
				"state store": "ok in the landlord database, schema tenantdrift not created yet",
				"APP_KEY":     "ok decrypts the stored password of tenant uml (aes-256-cbc)",
				"slack token": "ok workspace Acme, bot tenantdrift (U0BOT)",
				"slack channel #alerts (default, critical)": "ok the bot can post",
				"slack channel #oncall (warning)":           "ok the bot can post",
			},
			methods: []string{"auth.test ", "chat.scheduleMessage #alerts", "chat.deleteScheduledMessage C" + "alerts",
				"chat.scheduleMessage #oncall", "chat.deleteScheduledMessage Concall"},
		},
		{
			name: "post test", env: map[string]string{"APP_KEY": appKey}, args: []string{"--config", healthy, "--post-test"}, code: app.ExitOK,
			lines: map[string]string{"slack channel #oncall (warning)": "ok test message posted"},
			methods: []string{"auth.test ", "chat.scheduleMessage #alerts", "chat.deleteScheduledMessage Calerts", "chat.postMessage #alerts",
				"chat.scheduleMessage #oncall", "chat.deleteScheduledMessage Concall", "chat.postMessage #oncall"},
		},
		{
			name: "wrong key, channels the bot cannot post to", env: map[string]string{"APP_KEY": otherKey}, args: []string{"--config", broken}, code: app.ExitError,
			lines: map[string]string{
				"APP_KEY":                           "FAIL cannot decrypt the stored password of tenant uml (nor 0 other sampled): mac_invalid: the key is not the one",
				"slack channel #alerts (default)":   "ok the bot can post",
				"slack channel #private (critical)": "FAIL Slack answered not_in_channel — invite the bot to the channel (/invite @tenantdrift), or add the bot scope chat:write.public",
				"slack channel #gone (info)":        "FAIL Slack answered channel_not_found — check the name",
			},
			methods: []string{"auth.test ", "chat.scheduleMessage #alerts", "chat.deleteScheduledMessage Calerts",
				"chat.scheduleMessage #private", "chat.scheduleMessage #gone"},
		},
		{
			name: "revoked token", args: []string{"--config", badToken}, code: app.ExitError,
			lines: map[string]string{
				"APP_KEY":        "skip no key configured",
				"slack token":    "FAIL Slack answered invalid_auth — the token is not valid",
				"slack channels": "skip no valid token",
			},
			methods: []string{"auth.test "},
		},
		{
			name: "webhook", args: []string{"--config", webhook}, code: app.ExitOK,
			lines: map[string]string{"slack webhook": "skip an incoming webhook cannot be checked without posting; run doctor --post-test"},
		},
		{
			name: "webhook post test", args: []string{"--config", webhook, "--post-test"}, code: app.ExitOK,
			lines:   map[string]string{"slack webhook": "ok test message posted"},
			methods: []string{"services/T0/B0/hook "},
		},
		{
			name: "landlord down", env: map[string]string{"TENANTDRIFT_LANDLORD_DSN": "postgres://u@" + closed + "/x?connect_timeout=3", "APP_KEY": appKey},
			code: app.ExitError,
			lines: map[string]string{
				"landlord":    "FAIL connect to landlord " + closed + "/x: ",
				"registry":    "skip no landlord",
				"state store": "skip in the landlord database, which doctor could not reach",
				"APP_KEY":     "skip key parsed (aes-256-cbc), but no registry",
				"slack":       "skip not configured",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
			for k, v := range tt.env {
				env[k] = v
			}
			before := len(slack.requests())
			r := run(t, env, append([]string{"doctor"}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, "%s\n%s", r.stdout, r.stderr)
			lines := doctorLines(t, r.stdout)
			for what, want := range tt.lines {
				assert.Contains(t, lines[what], want, "%s\n%s", what, r.stdout)
			}
			got := slack.methods()[before:]
			if len(got) == 0 {
				got = nil
			}
			assert.Equal(t, tt.methods, got, r.stdout)
			assert.NotContains(t, r.stdout+r.stderr, slackCanary)
		})
	}

	// A schema migrated by a newer tenantdrift fails the state line.
	execSQL(t, pool, `CREATE SCHEMA tenantdrift; CREATE TABLE tenantdrift.schema_migrations (version int PRIMARY KEY); INSERT INTO tenantdrift.schema_migrations VALUES (1), (999)`)
	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, "doctor")
	assert.Equal(t, app.ExitError, r.code, r.stdout)
	assert.Contains(t, doctorLines(t, r.stdout)["state store"], "FAIL in the landlord database, schema tenantdrift: version 999 is newer than this tenantdrift knows")
}

// closedAddr returns a listener address nothing listens on any more.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestDoctorNeverPrintsSecrets runs doctor at debug level, with every
// check passing and failing, and searches stdout and stderr for the DSN
// password, the token, the webhook URL, the APP_KEY and the decrypted
// password.
func TestDoctorNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	const (
		dbPassword  = "Canary-Db-Pw-3f8a"
		decrypted   = "Canary-Dec-7c" // short: the column is varchar(255)
		hookSecret  = "CanaryHookSecret9e2d"
		wrongSecret = "Canary-Wrong-Db-Pw-22aa"
	)
	key := []byte("Canary-App-Key-0123456789abcdef!") // 32 bytes
	appKeyCanary := "base64:" + base64.StdEncoding.EncodeToString(key)
	dsn, pool := landlord(t)
	u := mustURL(t, dsn)
	role := "doctor_" + strings.ReplaceAll(strings.TrimPrefix(u.Path, "/"), "-", "_")
	execSQL(t, pool, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s; GRANT CREATE ON DATABASE %q TO %s`,
		role, dbPassword, role, strings.TrimPrefix(u.Path, "/"), role))
	enc, err := laravel.NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	payload, err := enc.Encrypt([]byte(decrypted), true)
	require.NoError(t, err)
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES ('7699fd1c-0000-4000-8000-000000000001', 'n', 'a@x', 'acme', 'tenant_acme', now() - interval '1 day')`)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '7699fd1c-0000-4000-8000-000000000001', 'tenant_acme', 'acme', 'u', $1, 'active', now() - interval '1 day')`, payload)
	good := *u
	good.User = url.UserPassword(role, dbPassword)
	wrong := *u
	wrong.User = url.UserPassword(role, wrongSecret)

	hookPath := "/services/T0/B0/" + hookSecret
	slack := newDoctorSlack(t, slackCanary, hookPath)
	dir := t.TempDir()
	tokenCfg := filepath.Join(dir, "token.yaml")
	require.NoError(t, os.WriteFile(tokenCfg, []byte("state:\n  dsn: "+good.String()+"\nslack:\n  token_file: "+secretFile(t, slackCanary)+
		"\n  channel: \"#alerts\"\n  channels: {critical: \"#private\"}\n  api_url: "+slack.URL+"/\n"), 0o600))
	wrongTokenCfg := filepath.Join(dir, "wrongtoken.yaml")
	require.NoError(t, os.WriteFile(wrongTokenCfg, []byte("slack:\n  token_file: "+secretFile(t, "xoxb-"+wrongSecret)+"\n  channel: \"#alerts\"\n  api_url: "+slack.URL+"/\n"), 0o600))
	hookCfg := filepath.Join(dir, "hook.yaml")
	require.NoError(t, os.WriteFile(hookCfg, []byte("slack:\n  webhook_url_file: "+secretFile(t, slack.URL+hookPath)+"\n"), 0o600))

	secrets := []string{dbPassword, wrongSecret, decrypted, hookSecret, slackCanary, appKeyCanary, strings.TrimPrefix(appKeyCanary, "base64:")}
	otherKey := "base64:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	runs := []struct {
		name string
		env  map[string]string
		args []string
		want []string // what doctor says, proving it got that far
	}{
		{"token", map[string]string{"TENANTDRIFT_LANDLORD_DSN": good.String(), "APP_KEY": appKeyCanary}, []string{"--config", tokenCfg, "--post-test"},
			[]string{"ok    APP_KEY: decrypts the stored password of tenant acme", "ok    state store: at ", "ok    slack channel #alerts (default): test message posted", "FAIL  slack channel #private"}},
		{"webhook", map[string]string{"TENANTDRIFT_LANDLORD_DSN": good.String(), "APP_KEY": appKeyCanary}, []string{"--config", hookCfg, "--post-test"},
			[]string{"ok    slack webhook: test message posted"}},
		{"webhook failing", map[string]string{"TENANTDRIFT_LANDLORD_DSN": good.String(), "APP_KEY": appKeyCanary}, []string{"--config", hookCfg, "--post-test"},
			[]string{"FAIL  slack webhook: test message not posted"}},
		{"wrong password, wrong token", map[string]string{"TENANTDRIFT_LANDLORD_DSN": wrong.String(), "APP_KEY": appKeyCanary}, []string{"--config", wrongTokenCfg},
			[]string{"FAIL  landlord: connect to landlord", "password authentication failed", "FAIL  slack token: Slack answered invalid_auth"}},
		{"wrong key", map[string]string{"TENANTDRIFT_LANDLORD_DSN": good.String(), "APP_KEY": otherKey}, []string{"--config", hookCfg},
			[]string{"FAIL  APP_KEY: cannot decrypt the stored password of tenant acme"}},
	}
	for _, rr := range runs {
		slack.mu.Lock()
		slack.hookStatus = 0
		if rr.name == "webhook failing" {
			slack.hookStatus = http.StatusInternalServerError
		}
		slack.mu.Unlock()
		for _, logFormat := range []string{"text", "json"} {
			r := run(t, rr.env, append([]string{"doctor", "--log-level", "debug", "--log-format", logFormat}, rr.args...)...)
			out := r.stdout + r.stderr
			for _, w := range rr.want {
				assert.Contains(t, r.stdout, w, rr.name)
			}
			for _, s := range secrets {
				assert.NotContains(t, out, s, "%s: %s", rr.name, out)
			}
		}
	}
	// The runs did reach what they must not print.
	var posted, hooked bool
	for _, r := range slack.requests() {
		posted = posted || r.Method == "chat.postMessage"
		hooked = hooked || strings.Contains(r.Method, hookSecret)
	}
	assert.True(t, posted)
	assert.True(t, hooked)
}
