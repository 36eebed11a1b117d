package app_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
	"github.com/tenantdrift/tenantdrift/internal/leader"
)

// lockedBuffer is a bytes.Buffer safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemon is a tenantdrift serve running in-process.
type daemon struct {
	t      *testing.T
	addr   string
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan int
}

var servingRE = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startServe runs `tenantdrift serve` with a config file body and env.
func startServe(t *testing.T, env map[string]string, cfgBody string) *daemon {
	t.Helper()
	return startServeClock(t, env, cfgBody, nil)
}

// startServeClock is startServe with the daemon's clock (nil: time.Now).
func startServeClock(t *testing.T, env map[string]string, cfgBody string, now func() time.Time) *daemon {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "tenantdrift.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(cfgBody), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{t: t, stderr: &lockedBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		d.done <- app.Main(ctx, []string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--log-level", "debug"}, app.Env{
			Stdout: io.Discard, Stderr: d.stderr, Version: "test", Now: now,
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		})
	}()
	require.Eventually(t, func() bool {
		select {
		case code := <-d.done:
			d.done <- code
			return true
		default:
		}
		m := servingRE.FindStringSubmatch(d.stderr.String())
		if m != nil {
			d.addr = m[1]
		}
		return m != nil
	}, 20*time.Second, 20*time.Millisecond)
	require.NotEmpty(t, d.addr, "serve did not start: %s", d.stderr.String())
	t.Cleanup(func() { d.stop() })
	return d
}

// stop sends the equivalent of SIGTERM and returns the exit code.
func (d *daemon) stop() int {
	d.cancel()
	select {
	case code := <-d.done:
		d.done <- code
		return code
	case <-time.After(20 * time.Second):
		d.t.Fatalf("serve did not exit within 20s")
		return -1
	}
}

func (d *daemon) get(path string) (int, string) {
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of one exposition line, or "" when absent.
func (d *daemon) metric(series string) string {
	_, body := d.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func (d *daemon) waitMetric(series, want string) {
	d.t.Helper()
	require.Eventually(d.t, func() bool { return d.metric(series) == want }, 20*time.Second, 50*time.Millisecond,
		"%s never became %s; last %q\n%s", series, want, d.metric(series), d.stderr.String())
}

const fastConfig = `
schedule: "@every 1s"
leader:
  heartbeat: 200ms
server:
  shutdown_grace: 5s
checks:
  database_orphan:
    enabled: false
`

func TestServe(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, fastConfig)

	code, body := d.get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "ok")

	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	assert.Equal(t, "1", d.metric("tenantdrift_leader"))
	assert.Equal(t, "2", d.metric("tenantdrift_tenants"))
	assert.Equal(t, "0.5", d.metric("tenantdrift_registry_coverage_ratio"))
	assert.Equal(t, "0", d.metric(`tenantdrift_check_runs_total{check="registry_missing",outcome="error"}`))
	assert.Contains(t, d.metric(`tenantdrift_build_info{goversion="`+goVersion()+`",version="test"}`), "1")
	require.Eventually(t, func() bool { c, _ := d.get("/readyz"); return c == http.StatusOK }, 10*time.Second, 50*time.Millisecond,
		"readyz: %s", func() string { _, b := d.get("/readyz"); return b }())

	// The finding is in the history.
	waitOpen(t, pool, 1)

	// Repair the registry: the gauge drops and the finding resolves.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "x"))
	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "0")
	require.Eventually(t, func() bool {
		var resolved int
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM tenantdrift.findings WHERE "check" = 'registry_missing' AND resolved_at IS NOT NULL`).Scan(&resolved)
		return resolved == 1
	}, 10*time.Second, 50*time.Millisecond)

	// SIGTERM: a clean exit within the grace period.
	start := time.Now()
	assert.Equal(t, app.ExitOK, d.stop(), d.stderr.String())
	assert.Less(t, time.Since(start), 6*time.Second)
	assert.NotContains(t, d.stderr.String(), "goroutine ")
}

// proxy is a TCP proxy to the test server that can be taken down and
// brought back on the same port, to cut the landlord off.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	cutOn  []byte // when a client sends this, the proxy goes down first
}

// downOn takes the proxy down the moment a client sends pattern (say, a
// statement's text), before the server sees it: the client's process
// "dies" right there, as far as the server can tell.
func (p *proxy) downOn(pattern string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOn = []byte(pattern)
}

// forward copies what a client sends to the server, unless it holds cutOn.
func (p *proxy) forward(up, c net.Conn) {
	defer func() { _ = up.Close() }()
	buf := make([]byte, 64<<10)
	var tail []byte // the end of the previous read, for a pattern split across reads
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			pattern := p.cutOn
			p.mu.Unlock()
			if len(pattern) > 0 && bytes.Contains(append(tail, buf[:n]...), pattern) {
				p.down()
				return
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
			tail = append(tail[:0], buf[max(0, n-len(pattern)):n]...)
		}
		if err != nil {
			return
		}
	}
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.forward(up, c)
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// down stops listening and cuts every open connection.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// isDown reports whether the proxy is down.
func (p *proxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln == nil
}

// up listens again on the same port.
func (p *proxy) up() {
	var ln net.Listener
	require.Eventually(p.t, func() bool {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	p.serve(ln)
}

func TestServeLandlordDownAndBack(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	u := mustURL(t, dsn)
	px := newProxy(t, u.Host)
	px.down() // down at start
	u.Host = px.addr
	u.RawQuery = "sslmode=disable&connect_timeout=2"
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": u.String()}, fastConfig)

	// Alive, not ready, and saying why; nothing succeeds, nothing is resolved.
	code, _ := d.get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		c, body := d.get("/readyz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, "state store unreachable")
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "0", d.metric(`tenantdrift_check_last_success_timestamp_seconds{check="registry_missing"}`))

	// The landlord comes back: everything recovers by itself.
	px.up()
	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	require.Eventually(t, func() bool { c, _ := d.get("/readyz"); return c == http.StatusOK }, 15*time.Second, 100*time.Millisecond)

	// Down mid-run: errors are counted, the finding is not resolved.
	waitOpen(t, pool, 1)
	px.down()
	before := d.metric(`tenantdrift_check_runs_total{check="registry_missing",outcome="error"}`)
	require.Eventually(t, func() bool {
		return d.metric(`tenantdrift_check_runs_total{check="registry_missing",outcome="error"}`) != before
	}, 15*time.Second, 100*time.Millisecond)
	assert.Equal(t, "1", d.metric(`tenantdrift_findings{check="registry_missing",severity="critical"}`), d.stderr.String())
	var open int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM tenantdrift.findings WHERE "check" = 'registry_missing' AND resolved_at IS NULL`).Scan(&open))
	assert.Equal(t, 1, open, "an errored run resolves nothing")
	px.up()
	assert.Equal(t, app.ExitOK, d.stop(), d.stderr.String())
}

func TestServeOneActiveReplica(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	a := startServe(t, env, fastConfig)
	b := startServe(t, env, fastConfig)
	leaderOf := func() (*daemon, *daemon) {
		var l, f *daemon
		require.Eventually(t, func() bool {
			la, lb := a.metric("tenantdrift_leader"), b.metric("tenantdrift_leader")
			switch {
			case la == "1" && lb == "0":
				l, f = a, b
			case la == "0" && lb == "1":
				l, f = b, a
			default:
				return false
			}
			return true
		}, 15*time.Second, 50*time.Millisecond)
		return l, f
	}
	l, f := leaderOf()
	l.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	// The follower runs nothing, and shows the shared history.
	assert.Equal(t, "0", f.metric(`tenantdrift_check_runs_total{check="registry_missing",outcome="drift"}`))
	f.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")

	// Kill the leader's lock session: it steps down, and within a couple of
	// heartbeats (200 ms each; allow for a loaded machine) exactly one
	// replica leads again: the follower, or the old leader on a new session.
	old := lockHolder(t, pool)
	killLockHolder(t, pool)
	start := time.Now()
	require.Eventually(t, func() bool {
		pid := lockHolder(t, pool)
		return pid != 0 && pid != old
	}, 10*time.Second, 20*time.Millisecond)
	t.Logf("a leader again after %s", time.Since(start))
	require.Eventually(t, func() bool {
		return a.metric("tenantdrift_leader")+b.metric("tenantdrift_leader") == "10" ||
			a.metric("tenantdrift_leader")+b.metric("tenantdrift_leader") == "01"
	}, 10*time.Second, 20*time.Millisecond)

	// The leader goes away: the follower takes over and carries on.
	l, f = leaderOf()
	require.Equal(t, app.ExitOK, l.stop())
	start = time.Now()
	require.Eventually(t, func() bool { return f.metric("tenantdrift_leader") == "1" }, 10*time.Second, 20*time.Millisecond)
	t.Logf("takeover after %s", time.Since(start))
	f.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
}

// waitOpen waits until the history holds n open registry_missing findings.
func waitOpen(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var open int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM tenantdrift.findings WHERE "check" = 'registry_missing' AND resolved_at IS NULL`).Scan(&open)
		return err == nil && open == n
	}, 15*time.Second, 50*time.Millisecond)
}

// lockHolder is the backend pid holding the leader lock, or 0.
func lockHolder(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	key := uint64(leader.Key)
	var pid int
	err := pool.QueryRow(context.Background(), `SELECT coalesce(max(pid), 0) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted
		  AND classid = $1 AND objid = $2 AND objsubid = 1`, uint32(key>>32), uint32(key)).Scan(&pid)
	require.NoError(t, err)
	return pid
}

// killLockHolder terminates the session holding tenantdrift's advisory lock
// on the test database.
func killLockHolder(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var n int
	// A bigint advisory key is stored as classid (high 32 bits), objid (low).
	key := uint64(leader.Key)
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted
		  AND classid = $1 AND objid = $2 AND objsubid = 1`, uint32(key>>32), uint32(key)).Scan(&n))
	require.Equal(t, 1, n)
}

func goVersion() string { return runtime.Version() }

// TestServeSIGTERMDuringLongRun stops the daemon while db_unreachable waits
// on a database that never answers: it exits within the grace period and
// leaves no transaction open.
func TestServeSIGTERMDuringLongRun(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		var conns []net.Conn // held open, never answered
		for {
			c, err := silent.Accept()
			if err != nil {
				for _, c := range conns {
					_ = c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	execSQL(t, pool, `UPDATE tenant_databases SET port = $1, connection_config = '{"sslmode":"disable"}'`, silent.Addr().(*net.TCPAddr).Port)
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey}, `
schedule: "@every 1s"
leader: {heartbeat: 200ms}
server: {shutdown_grace: 3s}
checks:
  database_orphan: {enabled: false}
  db_unreachable: {probe_timeout: 60s, timeout: 2m}
`)
	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	// db_unreachable is now stuck on the silent listener.
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	code := d.stop()
	took := time.Since(start)
	assert.Equal(t, app.ExitOK, code, d.stderr.String())
	assert.Less(t, took, 3500*time.Millisecond, "exit within the grace period")
	var idle int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'tenantdrift' AND state LIKE 'idle in transaction%'`).Scan(&idle))
	assert.Zero(t, idle, "no transaction left open")
}

func TestServeMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, fastConfig+"metrics: {per_tenant: true}\n")
	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	_, body := d.get("/metrics")
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "install Debian's prometheus package (.ci/run does)")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, string(out))
	assert.Empty(t, strings.TrimSpace(string(out)))
	assert.Contains(t, body, `tenantdrift_tenant_findings{check="registry_missing",reason="no_database_row",tenant_slug="test1"} 1`)
}

func TestValidateRejectsBadSchedules(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("schedule: \"*/61 * * * *\"\nchecks:\n  field_mismatch:\n    schedule: \"CRON_TZ=Europe/Berlin\"\n"), 0o600))
	r := run(t, nil, "validate", "--config", cfg)
	assert.Equal(t, app.ExitError, r.code)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Len(t, lines, 2, r.stderr)
	assert.Contains(t, lines[0], ":1: schedule: invalid cron expression")
	assert.Contains(t, lines[1], ":4: checks.field_mismatch.schedule: invalid cron expression")
	assert.NotContains(t, r.stderr, "goroutine")
}

// TestAuditRecordsHistory: a cron container's audits keep history when a
// state store is configured, and --no-state leaves it alone.
func TestAuditRecordsHistory(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"), 0o600))
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	r := run(t, env, "audit", "--config", cfg)
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	waitOpen(t, pool, 1)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "x"))
	r = run(t, env, "audit", "--config", cfg, "--no-state")
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	waitOpen(t, pool, 1) // untouched
	r = run(t, env, "audit", "--config", cfg)
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	waitOpen(t, pool, 0) // resolved
	var runs int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM tenantdrift.runs WHERE "check" = 'registry_missing'`).Scan(&runs))
	assert.Equal(t, 2, runs)
}

// waitMoreRuns waits until the counter series has grown by n.
func (d *daemon) waitMoreRuns(series string, n float64) {
	d.t.Helper()
	value := func() float64 { v, _ := strconv.ParseFloat(d.metric(series), 64); return v }
	start := value()
	require.Eventually(d.t, func() bool { return value() >= start+n }, 20*time.Second, 50*time.Millisecond,
		"%s never grew by %v from %v\n%s", series, n, start, d.stderr.String())
}

// healthMessages returns the bodies of the webhook messages about
// tenantdrift's own health, in order.
func healthMessages(f *fakeSlack) (degraded, recovered []string) {
	for _, r := range f.requests() {
		switch {
		case strings.Contains(r.Body, "tenantdrift is degraded"):
			degraded = append(degraded, r.Body)
		case strings.Contains(r.Body, "tenantdrift recovered"):
			recovered = append(recovered, r.Body)
		}
	}
	return degraded, recovered
}

// TestServeDegradedByFailingChecks: checks that error degraded_after runs
// in a row make one "degraded" message, however long it lasts, and their
// recovery one "recovered" message; through a webhook whose URL appears in
// no output.
func TestServeDegradedByFailingChecks(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	slack := newFakeSlack(t)
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, fastConfig+slack.webhookConfig()+"  degraded_after: 2\n")
	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	assert.Equal(t, "0", d.metric("tenantdrift_degraded"))

	// The registry's layout breaks: every check errors.
	execSQL(t, pool, `ALTER TABLE tenant_databases RENAME TO tenant_databases_moved`)
	require.Eventually(t, func() bool { deg, _ := healthMessages(slack); return len(deg) > 0 }, 20*time.Second, 50*time.Millisecond, d.stderr.String())
	assert.Equal(t, "1", d.metric("tenantdrift_degraded"))
	d.waitMoreRuns(`tenantdrift_check_runs_total{check="registry_missing",outcome="error"}`, 2)
	deg, rec := healthMessages(slack)
	require.Len(t, deg, 1, "no repeat while degraded")
	assert.Contains(t, deg[0], "errored 2 runs in a row")
	assert.Contains(t, deg[0], "tenant_databases")
	assert.Empty(t, rec)

	// Fixed: one recovery, then quiet.
	execSQL(t, pool, `ALTER TABLE tenant_databases_moved RENAME TO tenant_databases`)
	require.Eventually(t, func() bool { _, rec := healthMessages(slack); return len(rec) > 0 }, 20*time.Second, 50*time.Millisecond, d.stderr.String())
	d.waitMetric("tenantdrift_degraded", "0")
	d.waitMoreRuns(`tenantdrift_check_runs_total{check="registry_missing",outcome="drift"}`, 2)
	time.Sleep(500 * time.Millisecond) // the last run's delivery, if any
	deg, rec = healthMessages(slack)
	assert.Len(t, deg, 1)
	require.Len(t, rec, 1)
	assert.Contains(t, rec[0], "degraded.")

	assert.Equal(t, "1", d.metric(`tenantdrift_slack_notifications_total{kind="degraded",result="sent"}`))
	assert.Equal(t, "1", d.metric(`tenantdrift_slack_notifications_total{kind="recovered",result="sent"}`))
	assert.Equal(t, "0", d.metric(`tenantdrift_slack_notifications_total{kind="new_findings",result="failed"}`))
	assert.Equal(t, "0", d.metric("tenantdrift_slack_outbox_pending"))
	_, metricsBody := d.get("/metrics")
	assert.Equal(t, app.ExitOK, d.stop())
	for _, o := range []string{d.stderr.String(), metricsBody} {
		assert.NotContains(t, o, webhookCanary)
	}
}

// TestServeDegradedWhileStoreDown: the landlord, which holds the state
// store too, goes away under the leader. The outbox cannot be written, so
// the degraded message goes straight to Slack; once the database is back
// it is recorded in the outbox, and the recovery goes through it.
func TestServeDegradedWhileStoreDown(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	u := mustURL(t, dsn)
	px := newProxy(t, u.Host)
	u.Host = px.addr
	u.RawQuery = "sslmode=disable&connect_timeout=2"
	slack := newFakeSlack(t)
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": u.String()}, fastConfig+slack.config())
	d.waitMetric(`tenantdrift_findings{check="registry_missing",severity="critical"}`, "1")
	require.Eventually(t, func() bool { return len(slack.requests()) == 1 }, 10*time.Second, 50*time.Millisecond, "the drift alert")

	px.down()
	var degraded slackRequest
	require.Eventually(t, func() bool {
		for _, r := range slack.requests() {
			if strings.Contains(r.Form.Get("text"), "tenantdrift is degraded") {
				degraded = r
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, d.stderr.String())
	// Whichever the leader noticed first: its lock or a run's write.
	assert.Regexp(t, `leadership lost|unreachable`, degraded.Form.Get("text"))
	assert.Equal(t, "#tenant-alerts", degraded.Form.Get("channel"))
	assert.Equal(t, "1", d.metric("tenantdrift_degraded"))

	px.up()
	require.Eventually(t, func() bool {
		for _, r := range slack.requests() {
			if strings.Contains(r.Form.Get("text"), "tenantdrift recovered") {
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, d.stderr.String())
	d.waitMetric("tenantdrift_degraded", "0")
	d.waitMoreRuns(`tenantdrift_check_runs_total{check="registry_missing",outcome="drift"}`, 2)
	time.Sleep(500 * time.Millisecond)

	var texts []string
	for _, r := range slack.requests() {
		texts = append(texts, r.Form.Get("text"))
	}
	require.Len(t, texts, 3, "the drift alert, degraded, recovered: %q", texts)
	var rows []string
	r, err := pool.Query(t.Context(), `SELECT kind || ' ' || state || ' ' || coalesce(slack_ts, '') FROM tenantdrift.outbox WHERE kind IN ('degraded', 'recovered') ORDER BY id`)
	require.NoError(t, err)
	for r.Next() {
		var s string
		require.NoError(t, r.Scan(&s))
		rows = append(rows, s)
	}
	require.NoError(t, r.Err())
	require.Len(t, rows, 2, "both recorded")
	assert.Regexp(t, `^degraded sent 1795856400\.\d+$`, rows[0], "the direct post, recorded when the store came back")
	assert.Regexp(t, `^recovered sent 1795856400\.\d+$`, rows[1])
	assert.Equal(t, app.ExitOK, d.stop(), d.stderr.String())
	assertNoTokenLeak(t, slack.requests(), d.stderr.String())
}

// TestServeDegradedWithoutEverLeading: a replica started while the
// database is unreachable never leads and runs nothing; it says so once.
func TestServeDegradedWithoutEverLeading(t *testing.T) {
	t.Parallel()
	slack := newFakeSlack(t)
	dsn := "postgres://tenantdrift:canary-unreachable-pw@" + closedAddr(t) + "/landlord?connect_timeout=1"
	d := startServe(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, fastConfig+slack.webhookConfig())
	require.Eventually(t, func() bool { deg, _ := healthMessages(slack); return len(deg) > 0 }, 20*time.Second, 50*time.Millisecond, d.stderr.String())
	d.waitMetric("tenantdrift_degraded", "1")
	d.waitMoreRuns(`tenantdrift_check_runs_total{check="registry_missing",outcome="error"}`, 2)
	deg, _ := healthMessages(slack)
	require.Len(t, deg, 1, "once, however many runs fail")
	assert.Contains(t, deg[0], "cannot reach the database to run the checks")
	assert.Equal(t, app.ExitOK, d.stop())
	assert.NotContains(t, d.stderr.String(), "canary-unreachable-pw")
	for _, r := range slack.requests() {
		assert.NotContains(t, r.Body, "canary-unreachable-pw")
	}
}
