package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
	"github.com/tenantdrift/tenantdrift/internal/demo"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type result struct {
	code           int
	stdout, stderr string
}

// run runs tenantdrift in-process with exactly the environment kv.
func run(t *testing.T, kv map[string]string, args ...string) result {
	t.Helper()
	return runCtx(context.Background(), t, kv, args...)
}

func runCtx(ctx context.Context, t *testing.T, kv map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := app.Main(ctx, args, app.Env{
		Stdout: &out, Stderr: &errb, Version: "test",
		LookupEnv: func(k string) (string, bool) { v, ok := kv[k]; return v, ok },
	})
	return result{code, out.String(), errb.String()}
}

// landlord returns the DSN of a fresh database holding the demo schema,
// and a pool on it.
func landlord(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	dsn := pgtest.NewDB(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), demo.Schema)
	require.NoError(t, err)
	return dsn, pool
}

func execSQL(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// appKey is the tests' APP_KEY (aes-256-cbc).
const appKey = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// encrypt returns what Laravel's encrypt() stores for s under appKey.
func encrypt(t *testing.T, s string) string {
	t.Helper()
	key, err := laravel.ParseKey(appKey)
	require.NoError(t, err)
	enc, err := laravel.NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	p, err := enc.Encrypt([]byte(s), true)
	require.NoError(t, err)
	return p
}

// noKeyWarning is what audit says on stderr when no APP_KEY is configured.
const noKeyWarning = "no APP_KEY configured: stored passwords cannot be decrypted, so credential_undecryptable and db_unreachable are skipped"

// incident loads the incident: uml is complete, test1 has no database row.
func incident(t *testing.T, pool *pgxpool.Pool) {
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at, updated_at) VALUES
		('7699fd1c-0000-4000-8000-000000000001', 'Acme Restaurant', 'a@acme.test', 'uml', 'tenant_uml', now() - interval '2 days', now()),
		('80b8d7cd-0000-4000-8000-000000000002', 'Test One GmbH', 't@one.test', 'test1', 'tenant_test1', now() - interval '1 day', now())`)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, status, created_at)
		VALUES ('f3b6690c-0000-4000-8000-000000000101', '7699fd1c-0000-4000-8000-000000000001', 'tenant_uml', 'uml', 'uml_user', $1, '127.0.0.1', $2, 'active', now() - interval '2 days')`,
		encrypt(t, "uml-db-secret"), pgtest.Server(t).Port) // on the test server, so database_orphan can inventory it
}

type document struct {
	SchemaVersion int `json:"schema_version"`
	Tool          struct{ Name, Version string }
	StartedAt     string `json:"started_at"`
	FinishedAt    string `json:"finished_at"`
	Complete      bool   `json:"complete"`
	Summary       map[string]int
	Checks        []struct {
		Name            string  `json:"name"`
		Status          string  `json:"status"`
		Findings        int     `json:"findings"`
		DurationSeconds float64 `json:"duration_seconds"`
		Error           string  `json:"error"`
	}
	Findings []map[string]string
}

func parse(t *testing.T, s string) document {
	t.Helper()
	var doc document
	dec := json.NewDecoder(strings.NewReader(s))
	require.NoError(t, dec.Decode(&doc), s)
	return doc
}

func TestAuditFindsTheIncident(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}

	r := run(t, env, "audit")
	assert.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Contains(t, r.stdout, "2 tenants, 7 checks, 1 finding (1 critical, 0 warning, 0 info)")
	assert.Regexp(t, `critical\s+registry_missing\s+test1\s+tenant_test1\s+no_database_row`, r.stdout)
	// Without an APP_KEY the two checks that need one are left out, once said.
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	assert.Contains(t, r.stderr, noKeyWarning)

	r = run(t, env, "audit", "--format", "json")
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	doc := parse(t, r.stdout)
	assert.Equal(t, 1, doc.SchemaVersion)
	assert.Equal(t, "tenantdrift", doc.Tool.Name)
	assert.Equal(t, "test", doc.Tool.Version)
	assert.True(t, doc.Complete)
	_, err := time.Parse(time.RFC3339, doc.StartedAt)
	assert.NoError(t, err)
	assert.Equal(t, map[string]int{"tenants": 2, "findings": 1, "critical": 1, "warning": 0, "info": 0, "checks_run": 7, "checks_errored": 0}, doc.Summary)
	require.Len(t, doc.Checks, 7)
	assert.Equal(t, "registry_missing", doc.Checks[0].Name)
	assert.Equal(t, "drift", doc.Checks[0].Status)
	assert.Equal(t, "ok", doc.Checks[1].Status)
	require.Len(t, doc.Findings, 1)
	f := doc.Findings[0]
	assert.Equal(t, map[string]string{
		"check": "registry_missing", "severity": "critical", "tenant_id": "80b8d7cd-0000-4000-8000-000000000002",
		"tenant_slug": "test1", "database_name": "tenant_test1", "field": "", "reason": "no_database_row",
		"expected": "", "actual": "", "message": f["message"], "fingerprint": f["fingerprint"],
	}, f)
	assert.Contains(t, f["message"], "password reset fails")

	// The same drift has the same fingerprint in the next run.
	again := parse(t, run(t, env, "audit", "--format", "json").stdout)
	assert.Equal(t, f["fingerprint"], again.Findings[0]["fingerprint"])

	// Markdown.
	r = run(t, env, "audit", "--format", "markdown")
	assert.Equal(t, app.ExitDrift, r.code)
	assert.Contains(t, r.stdout, "| critical | registry_missing | test1 | tenant_test1 |")

	// Fixing the registry clears the finding and the exit code.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '80b8d7cd-0000-4000-8000-000000000002', 'tenant_test1', 'test1', 'u', $1, 'active', now())`, encrypt(t, "test1-secret"))
	r = run(t, env, "audit")
	assert.Equal(t, app.ExitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "0 findings")
}

func TestAuditFailOnAndCheckSelection(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES
		('00000000-0000-4000-8000-000000000001', 'A', 'a@x', 'acme-gmbh', 'tenant_acme', now() - interval '1 day')`)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'tenant_acme', 'acme', 'u', 'p', 'active', now() - interval '1 day')`)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}

	cases := []struct {
		args []string
		code int
	}{
		{[]string{"audit"}, app.ExitDrift},                             // a warning, fail-on warning
		{[]string{"audit", "--fail-on", "critical"}, app.ExitOK},       // only a warning
		{[]string{"audit", "--fail-on", "info"}, app.ExitDrift},        //
		{[]string{"audit", "--fail-on", "never"}, app.ExitOK},          //
		{[]string{"audit", "--check", "registry_missing"}, app.ExitOK}, // the mismatch is not looked for
		{[]string{"audit", "--check", "registry_missing,field_mismatch"}, app.ExitDrift},
		{[]string{"audit", "--check", "nope"}, app.ExitError},
		{[]string{"audit", "--format", "xml"}, app.ExitError},
		{[]string{"audit", "--fail-on", "sometimes"}, app.ExitError},
		{[]string{"audit", "--log-level", "loud"}, app.ExitError},
		{[]string{"audit", "--log-format", "xml"}, app.ExitError},
		{[]string{"audit", "extra-arg"}, app.ExitError},
		{[]string{"audit", "--no-such-flag"}, app.ExitError},
		{[]string{"audit", "--help"}, app.ExitOK},
		{[]string{"validate", "--help"}, app.ExitOK},
		{[]string{"demo", "--help"}, app.ExitOK},
		{[]string{"--help"}, app.ExitOK},
		{[]string{"frobnicate"}, app.ExitError},
	}
	for _, tc := range cases {
		r := run(t, env, tc.args...)
		assert.Equal(t, tc.code, r.code, "%v\n%s%s", tc.args, r.stdout, r.stderr)
		assert.NotContains(t, r.stderr, "goroutine", tc.args)
	}
	r := run(t, env, "audit", "--check", "nope")
	assert.Contains(t, r.stderr, `unknown check "nope"`)
	for _, cmd := range []string{"audit", "serve", "repair", "doctor", "validate", "demo"} {
		r = run(t, env, cmd, "--help")
		assert.Equal(t, 1, strings.Count(r.stdout, "Usage: tenantdrift "+cmd), "help once, on stdout: %s", r.stdout)
		assert.Empty(t, r.stderr, cmd)
	}
	r = run(t, env, "audit", "--help")
	assert.Contains(t, r.stdout, "--fail-on")
	r = run(t, env, "audit", "--no-such-flag")
	assert.Contains(t, r.stderr, "flag provided but not defined: -no-such-flag\nUsage: tenantdrift audit")
	assert.Empty(t, r.stdout)
	r = run(t, map[string]string{"TENANTDRIFT_LOG_LEVEL": "loud"}, "validate")
	assert.Contains(t, r.stderr, `invalid log level "loud" from --log-level or TENANTDRIFT_LOG_LEVEL`)
}

func TestAuditCannotComplete(t *testing.T) {
	t.Parallel()
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": "postgres://u:pw@" + addr + "/landlord?connect_timeout=5"}, "audit", "--format", "json")
	assert.Equal(t, app.ExitError, r.code)
	assert.True(t, strings.HasSuffix(r.stderr, fmt.Sprintf("\ntenantdrift audit: connect to landlord %s/landlord: connect: connection refused\n", addr)), r.stderr)
	doc := parse(t, r.stdout)
	assert.False(t, doc.Complete)
	assert.Equal(t, 7, doc.Summary["checks_errored"])
	assert.Contains(t, doc.Checks[0].Error, "connection refused")

	// No landlord configured at all.
	r = run(t, nil, "audit")
	assert.Equal(t, app.ExitError, r.code)
	assert.Contains(t, r.stderr, "no landlord database given: set TENANTDRIFT_LANDLORD_DSN")
	assert.Empty(t, r.stdout)

	// A DSN that is not one.
	r = run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": "postgres://u:canary-xyzzy@[bad"}, "audit")
	assert.Equal(t, app.ExitError, r.code)
	assert.Contains(t, r.stderr, "landlord.dsn: not a valid PostgreSQL connection string")
	assert.NotContains(t, r.stderr+r.stdout, "canary-xyzzy")

	// A landlord without the registry tables.
	r = run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": pgtest.NewDB(t)}, "audit")
	assert.Equal(t, app.ExitError, r.code)
	assert.Contains(t, r.stderr, "tenantdrift audit: registry layout: the landlord has no table public.tenants")
	assert.Regexp(t, `registry_missing\s+error`, r.stdout)
	assert.Equal(t, 1, strings.Count(r.stdout, "the landlord has no table"), "the cause is said once, not once per check")
}

func TestAuditCheckErrorKeepsOthers(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	incident(t, pool)
	// One check times out; the others still run and report.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("checks:\n  registry_duplicate:\n    timeout: 1ns\n"), 0o600))
	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, "audit", "--config", cfg, "--format", "json")
	assert.Equal(t, app.ExitError, r.code)
	doc := parse(t, r.stdout)
	assert.False(t, doc.Complete)
	assert.Equal(t, 1, doc.Summary["checks_errored"])
	assert.Equal(t, 6, doc.Summary["checks_run"])
	require.Len(t, doc.Findings, 1)
	assert.Equal(t, "registry_missing", doc.Findings[0]["check"])
	for _, c := range doc.Checks {
		if c.Name == "registry_duplicate" {
			assert.Equal(t, "error", c.Status)
			assert.Contains(t, c.Error, "timed out after 1ns")
		}
	}
	assert.Contains(t, r.stderr, "the audit did not complete: 1 of 7 checks failed")
}

func TestAuditOddData(t *testing.T) {
	t.Parallel()
	dsn, pool := landlord(t)
	// NULLs in every nullable column, unicode, quotes, SQL metacharacters
	// and terminal escapes in slugs and database names.
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, status, database_name, branding, created_at, updated_at, deleted_at) VALUES
		('00000000-0000-4000-8000-000000000001', 'Café', 'c@x', 'café-zürich', 'active', NULL, NULL, NULL, NULL, NULL),
		('00000000-0000-4000-8000-000000000002', 'Quote', 'q@x', 'o''neill"; DROP TABLE tenants;--', 'active', 'tenant_o''neill$$1', NULL, now() - interval '1 day', NULL, NULL),
		('00000000-0000-4000-8000-000000000003', 'Esc', 'e@x', E'evil\x1b[31mred\nnewline', 'active', E'db\ttab', NULL, now() - interval '1 day', NULL, NULL),
		('00000000-0000-4000-8000-000000000004', 'Tokyo', 't@x', '日本橋', 'active', '日本橋_db', NULL, now() - interval '1 day', NULL, NULL)`)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, connection_config, created_at, updated_at) VALUES
		('00000000-0000-4000-8000-000000000101', '00000000-0000-4000-8000-000000000001', 'tenant_cafe', 'cafe-zurich', 'u', 'p', 'active', NULL, NULL, NULL),
		('00000000-0000-4000-8000-000000000102', '00000000-0000-4000-8000-000000000002', 'tenant_o''neill$$1', 'o''neill"; DROP TABLE tenants;--', 'u', 'p', 'active', NULL, NULL, NULL),
		('00000000-0000-4000-8000-000000000104', '00000000-0000-4000-8000-000000000004', '日本橋_db', '日本橋', 'u', 'p', 'active', NULL, NULL, NULL)`)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	r := run(t, env, "audit")
	assert.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "\x1b", "terminal escapes must not reach the operator's terminal")
	assert.Contains(t, r.stdout, `evil\x1b[31mred\nnewline`)
	assert.Contains(t, r.stdout, "café-zürich")

	doc := parse(t, run(t, env, "audit", "--format", "json").stdout)
	assert.True(t, doc.Complete)
	got := map[string]bool{}
	for _, f := range doc.Findings {
		got[f["check"]+"|"+f["tenant_slug"]+"|"+f["field"]] = true
	}
	assert.Equal(t, map[string]bool{
		"registry_missing|evil\x1b[31mred\nnewline|":             true, // JSON carries the exact value
		"field_mismatch|café-zürich|slug":                        true,
		"field_mismatch|café-zürich|database_name":               true, // NULL against a value
		"credential_plaintext|café-zürich|":                      true, // password "p"
		"credential_plaintext|o'neill\"; DROP TABLE tenants;--|": true,
		"credential_plaintext|日本橋|":                              true,
	}, got)
	// The tables are intact: nothing was executed from the values.
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM tenants").Scan(&n))
	assert.Equal(t, 4, n)
}

func TestAuditEmptyRegistry(t *testing.T) {
	t.Parallel()
	dsn, _ := landlord(t)
	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, "audit")
	assert.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "0 tenants, 7 checks, 0 findings")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("registry:\n  grace_period: 5m\n"), 0o600))
	r := run(t, nil, "validate", "--config", good)
	assert.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, good+": valid")
	assert.Contains(t, r.stdout, "no landlord DSN is set")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("registry:\n  preset: nope\n  grace: 5m\nchecks:\n  field_mismatch:\n    severity: loud\n"), 0o600))
	r = run(t, nil, "validate", "--config", bad)
	assert.Equal(t, app.ExitError, r.code)
	assert.Equal(t, []string{
		"tenantdrift validate: " + bad + `:2: registry.preset: unknown preset "nope" (use laravel, stancl, spatie or custom)`,
		"tenantdrift validate: " + bad + `:3: registry.grace: unknown key (did you mean "grace_period"?)`,
		"tenantdrift validate: " + bad + `:6: checks.field_mismatch.severity: unknown severity "loud" (use critical, warning or info)`,
	}, strings.Split(strings.TrimSpace(r.stderr), "\n"))

	// The shipped example validates.
	r = run(t, nil, "validate", "--config", "../../config/tenantdrift.example.yaml")
	assert.Equal(t, app.ExitOK, r.code, r.stderr)

	// The file can come from TENANTDRIFT_CONFIG.
	r = run(t, map[string]string{"TENANTDRIFT_CONFIG": bad}, "validate")
	assert.Equal(t, app.ExitError, r.code)
}

// TestSecretsNeverLeak plants a canary password in the landlord DSN and
// searches everything tenantdrift writes, with debug logging, in success
// and in failure.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const canary = "Canary-S3cret-Pw-91d7"
	dsn, pool := landlord(t)
	incident(t, pool)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	db := strings.TrimPrefix(u.Path, "/")
	role := "auditor_" + strings.ReplaceAll(db, "-", "_")
	execSQL(t, pool, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s`, role, canary, role))
	good := *u
	good.User = url.UserPassword(role, canary)
	wrong := *u
	wrong.User = url.UserPassword(role, canary+"-wrong")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "postgres://" + role + ":" + canary + "@" + ln.Addr().String() + "/x?connect_timeout=3"
	require.NoError(t, ln.Close())
	kv := "host=" + u.Hostname() + " port=" + u.Port() + " dbname=" + db + " user=" + role + " password=" + canary + " sslmode=disable"

	dir := t.TempDir()
	fileRef := filepath.Join(dir, "dsn")
	require.NoError(t, os.WriteFile(fileRef, []byte(good.String()), 0o600))
	cfgFile := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("landlord:\n  dsn_file: "+fileRef+"\n"), 0o600))

	runs := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"ok url", map[string]string{"TENANTDRIFT_LANDLORD_DSN": good.String()}, nil, app.ExitDrift},
		{"ok keyword/value", map[string]string{"TENANTDRIFT_LANDLORD_DSN": kv}, nil, app.ExitDrift},
		{"ok dsn_file", nil, []string{"--config", cfgFile}, app.ExitDrift},
		{"wrong password", map[string]string{"TENANTDRIFT_LANDLORD_DSN": wrong.String()}, nil, app.ExitError},
		{"refused", map[string]string{"TENANTDRIFT_LANDLORD_DSN": closed}, nil, app.ExitError},
		{"broken dsn", map[string]string{"TENANTDRIFT_LANDLORD_DSN": "postgres://" + role + ":" + canary + "@127.0.0.1:notaport/x"}, nil, app.ExitError},
	}
	for _, rr := range runs {
		for _, format := range []string{"table", "json", "markdown"} {
			for _, logFormat := range []string{"text", "json"} {
				args := append([]string{"audit", "--log-level", "debug", "--log-format", logFormat, "--format", format}, rr.args...)
				r := run(t, rr.env, args...)
				assert.Equal(t, rr.code, r.code, "%s: %s", rr.name, r.stderr)
				assert.NotContains(t, r.stdout, canary, rr.name)
				assert.NotContains(t, r.stderr, canary, rr.name)
			}
		}
	}
	r := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": wrong.String()}, "audit")
	assert.Contains(t, r.stderr, "password authentication failed")
	assert.Contains(t, r.stderr, "SQLSTATE 28P01")
}

func TestDemo(t *testing.T) {
	tmp := reachableTempDir(t)
	env := map[string]string{"TMPDIR": tmp}
	r := run(t, env, "demo", "--format", "json", "--tenants", "40")
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	doc := parse(t, r.stdout)
	assert.True(t, doc.Complete)
	assert.Equal(t, 41, doc.Summary["tenants"]) // plus the young one; the soft-deleted one is not counted
	kinds := map[string]bool{}
	for _, f := range doc.Findings {
		k := f["check"]
		switch {
		case f["field"] != "":
			k += "/" + f["field"]
		case f["check"] == "registry_duplicate", f["check"] == "db_unreachable", f["check"] == "credential_undecryptable":
			k += "/" + f["reason"]
		}
		kinds[k] = true
		assert.NotEqual(t, "fresh-start-pilates", f["tenant_slug"], "a tenant within the grace period")
		assert.NotEqual(t, "closed-shop", f["tenant_slug"], "a soft-deleted tenant")
	}
	assert.Equal(t, map[string]bool{
		"registry_missing": true, "registry_duplicate/multiple_rows": true, "registry_duplicate/tenants_share_database_name": true,
		"field_mismatch/slug": true, "field_mismatch/database_name": true, "provisioning_stuck": true,
		"credential_undecryptable/mac_invalid": true, "credential_plaintext": true, "database_orphan": true,
		"db_unreachable/auth_failed": true, "db_unreachable/database_missing": true, "db_unreachable/no_connect_privilege": true,
	}, kinds)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the demo cluster is removed on exit")

	// Table output explains the worst finding.
	r = run(t, env, "demo", "--tenants", "20")
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `Worst finding: critical registry_missing for tenant`)
	assert.Contains(t, r.stdout, "This is the incident tenantdrift was built for")
}

func TestDemoInterrupted(t *testing.T) {
	tmp := reachableTempDir(t)
	for _, after := range []time.Duration{50 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		r := runCtx(ctx, t, map[string]string{"TMPDIR": tmp}, "demo", "--tenants", "20")
		cancel()
		// Interrupted somewhere (or finished first on a fast machine): never
		// a stack trace, and the cluster is gone either way.
		if r.code != app.ExitOK {
			assert.Contains(t, r.stderr, "interrupted", after)
		}
		assert.NotContains(t, r.stderr, "goroutine")
		entries, err := os.ReadDir(tmp)
		require.NoError(t, err)
		assert.Empty(t, entries, "nothing left behind after %s", after)
	}
}

func TestDemoKeep(t *testing.T) {
	tmp := reachableTempDir(t)
	r := run(t, map[string]string{"TMPDIR": tmp}, "demo", "--keep", "--format", "json", "--tenants", "20")
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	parse(t, r.stdout) // stdout is still only the JSON document
	require.Contains(t, r.stderr, "still running (--keep)")
	var dsn string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "psql ") {
			dsn = strings.Trim(strings.TrimPrefix(strings.TrimSpace(line), "psql "), `"`)
		}
	}
	require.NotEmpty(t, dsn, r.stderr)
	// The kept cluster answers, and the audit works against it by DSN.
	a := run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}, "audit")
	assert.Equal(t, app.ExitDrift, a.code, a.stderr)
	// Stop it with the printed command.
	var stop string
	lines := strings.Split(r.stderr, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "Stop and remove it with:") && i+1 < len(lines) {
			stop = strings.TrimSpace(lines[i+1])
		}
	}
	require.NotEmpty(t, stop)
	out, err := shell(stop)
	require.NoError(t, err, out)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func shell(cmd string) (string, error) {
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	return string(out), err
}

// reachableTempDir is a temporary directory the postgres OS user can enter
// (the server runs as that user when the tests run as root).
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "td-demo-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { assert.NoError(t, os.RemoveAll(dir)) })
	return dir
}

// TestDecryptedPasswordsNeverLeak runs a full audit with debug logging over
// tenants whose decrypted passwords are canaries (one right, one stale, one
// in clear text) and searches every output for them and for the APP_KEY.
func TestDecryptedPasswordsNeverLeak(t *testing.T) {
	t.Parallel()
	const right, stale, plain = "Canary-Right-Pw-5b1e", "Canary-Stale-Pw-77c2", "Canary-Plain-Pw-0d9a"
	dsn, pool := landlord(t)
	info := pgtest.Server(t)
	admin, err := pgxpool.New(context.Background(), info.DSN("postgres"))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	x := strings.ReplaceAll(strings.TrimPrefix(mustURL(t, dsn).Path, "/"), "-", "_")
	role, db := "canary_"+x, "canarydb_"+x // not tenant_%: parallel tests inventory this server
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, right),
		fmt.Sprintf("CREATE DATABASE %s", db),
	} {
		_, err := admin.Exec(context.Background(), sql)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	execSQL(t, pool, `ALTER TABLE tenant_databases DROP CONSTRAINT tenant_databases_database_name_unique`)
	for i, pw := range []string{encrypt(t, right), encrypt(t, stale), plain} {
		id := fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i+1)
		execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES ($1::uuid, 'n', $1::text || '@x', $1::text, $2, now() - interval '1 day')`, id, db)
		execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, status, created_at)
			VALUES (gen_random_uuid(), $1::uuid, $2, $1::text, $3, $4, '127.0.0.1', $5, 'active', now() - interval '1 day')`, id, db, role, pw, info.Port)
	}
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey}
	var all strings.Builder
	for _, format := range []string{"table", "json", "markdown"} {
		for _, logFormat := range []string{"text", "json"} {
			r := run(t, env, "audit", "--log-level", "debug", "--log-format", logFormat, "--format", format)
			require.Equal(t, app.ExitDrift, r.code, r.stderr)
			all.WriteString(r.stdout + r.stderr)
		}
	}
	out := all.String()
	// The audit did look: the stale one fails, the clear-text one is flagged.
	assert.Contains(t, out, "auth_failed")
	assert.Contains(t, out, "not_encrypted")
	for _, secret := range []string{right, stale, plain, appKey, strings.TrimPrefix(appKey, "base64:")} {
		assert.NotContains(t, out, secret)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}
