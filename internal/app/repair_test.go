package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/leader"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/serverproc"
)

// Canary secrets of the repair tests: none may appear in any output.
const (
	// Short enough that encrypt()'s payload fits Laravel's varchar(255).
	repairPW    = "canary-pw-5150"
	plaintextPW = "canary-pw-8086"
)

// repairLandlord loads healthy tenants and one of each repairable drift:
//   - alpha has no tenant_databases row; its database exists and accepts
//     the configured username and repairPW;
//   - bravo's slug differs between the tables (tenants is right);
//   - charlie's password is stored in clear text;
//   - delta has been provisioning for two days.
//
// It returns the name of alpha's database and the username it accepts.
func repairLandlord(t *testing.T, pool *pgxpool.Pool, healthy int) (db, user string) {
	t.Helper()
	suffix, err := serverproc.RandomHex(4)
	require.NoError(t, err)
	db, user = "rpdb_"+suffix, "alpha_"+suffix
	admin := pgtest.NewPool(t)
	execSQL(t, admin, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", user, repairPW))
	execSQL(t, admin, "CREATE DATABASE "+db+" OWNER "+user)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+user)
	})
	healthyPW := encrypt(t, "healthy-pw")
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at, updated_at)
		SELECT gen_random_uuid(), 'Healthy '||i, 'h'||i||'@x.test', 'healthy-'||i, 'healthy_'||i, now() - interval '3 days', now()
		FROM generate_series(1, $1) AS i`, healthy)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, status, created_at)
		SELECT gen_random_uuid(), t.id, t.database_name, t.slug, t.slug||'_user', $1, '127.0.0.1', 5432, 'active', t.created_at FROM tenants t`, healthyPW)
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at, updated_at) VALUES
		('a0000000-0000-4000-8000-000000000001', 'Alpha', 'a@x.test', 'alpha', $1, now() - interval '2 days', now()),
		('b0000000-0000-4000-8000-000000000002', 'Bravo', 'b@x.test', 'bravo', 'tenant_bravo', now() - interval '2 days', now()),
		('c0000000-0000-4000-8000-000000000003', 'Charlie', 'c@x.test', 'charlie', 'tenant_charlie', now() - interval '2 days', now()),
		('d0000000-0000-4000-8000-000000000004', 'Delta', 'd@x.test', 'delta', 'tenant_delta', now() - interval '2 days', now())`, db)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, status, created_at) VALUES
		('b1000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000002', 'tenant_bravo', 'bravo-old', 'bravo_user', $1, '127.0.0.1', 5432, 'active', now() - interval '2 days'),
		('c1000000-0000-4000-8000-000000000003', 'c0000000-0000-4000-8000-000000000003', 'tenant_charlie', 'charlie', 'charlie_user', $2, '127.0.0.1', 5432, 'active', now() - interval '2 days'),
		('d1000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000004', 'tenant_delta', 'delta', 'delta_user', $1, '127.0.0.1', 5432, 'provisioning', now() - interval '2 days')`,
		healthyPW, plaintextPW)
	return db, user
}

// repairConfig writes a config that repairs everything it can; extra is
// appended under repair:.
func repairConfig(t *testing.T, user string, extra string) string {
	t.Helper()
	body := fmt.Sprintf(`checks:
  db_unreachable: {enabled: false}
  database_orphan: {enabled: false}
repair:
  enabled: true
%s  actions:
    registry_missing: {mode: apply, host: 127.0.0.1, port: %d, username: "%s", password: "${TENANT_DB_PASSWORD}"}
    field_mismatch: {mode: apply, source_of_truth: {slug: tenants}}
    credential_plaintext: {mode: apply}
    provisioning_stuck: {mode: apply, set_status: failed}
`, extra, pgtest.Server(t).Port, strings.ReplaceAll(user, "alpha", "{{slug}}"))
	p := filepath.Join(t.TempDir(), "tenantdrift.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// appendConfig adds a section to the config file cfg.
func appendConfig(t *testing.T, cfg, section string) {
	t.Helper()
	body, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, append(body, []byte(section)...), 0o600))
}

// checksum is a digest of every landlord table's rows.
func checksum(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var sum string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT
		md5((SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') FROM tenants t) ||
		    (SELECT coalesce(string_agg(d::text, '|' ORDER BY d::text), '') FROM tenant_databases d))`).Scan(&sum))
	return sum
}

type repairJSON struct {
	SchemaVersion int `json:"schema_version"`
	Actions       []struct {
		Action, Check, Table, Column, Status, Reason string
		TenantID                                     string  `json:"tenant_id"`
		TenantSlug                                   string  `json:"tenant_slug"`
		Before                                       *string `json:"before"`
		After                                        *string `json:"after"`
	} `json:"actions"`
}

func decodeRepair(t *testing.T, out string) repairJSON {
	t.Helper()
	var doc repairJSON
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Equal(t, 1, doc.SchemaVersion)
	return doc
}

func TestRepairPlanApplyVerify(t *testing.T) {
	dsn, pool := landlord(t)
	db, user := repairLandlord(t, pool, 30)
	cfg := repairConfig(t, user, "")
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey, "TENANT_DB_PASSWORD": repairPW}
	var outputs []string

	// The plan writes nothing, not even the state schema.
	before := checksum(t, pool)
	res := run(t, env, "repair", "--config", cfg, "--log-level", "debug")
	outputs = append(outputs, res.stdout, res.stderr)
	require.Equal(t, app.ExitDrift, res.code, res.stderr)
	for _, want := range []string{
		"tenantdrift repair (plan): 4 actions",
		"+ insert_database_row  registry_missing  tenant \"alpha\"",
		"+ database_name = \"" + db + "\"",
		"+ database_password = \"******** (encrypted)\"",
		"~ copy_field  field_mismatch  tenant \"bravo\"",
		`"public"."tenant_databases".slug: "bravo-old" -> "bravo"`,
		`"public"."tenant_databases".database_password: "******** (clear text)" -> "******** (encrypted)"`,
		`"public"."tenant_databases".status: "provisioning" -> "failed"`,
		"planned: run with --apply to apply",
		"0 applied, 4 planned",
	} {
		assert.Contains(t, res.stdout, want)
	}
	assert.Equal(t, before, checksum(t, pool), "plan mode changed the landlord")
	var schemas int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenantdrift'").Scan(&schemas))
	assert.Zero(t, schemas, "plan mode created the state schema")

	// Apply: every action is written and verified.
	res = run(t, env, "repair", "--config", cfg, "--apply", "--format", "json", "--log-level", "debug")
	outputs = append(outputs, res.stdout, res.stderr)
	require.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)
	doc := decodeRepair(t, res.stdout)
	require.Len(t, doc.Actions, 4)
	for _, a := range doc.Actions {
		assert.Equal(t, "applied", a.Status, "%s: %s", a.Action, a.Reason)
	}

	ctx := context.Background()
	key, err := laravel.ParseKey(appKey)
	require.NoError(t, err)
	enc, err := laravel.NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	var gotUser, gotPW, host, status string
	var port int
	require.NoError(t, pool.QueryRow(ctx, `SELECT database_username, database_password, host, port, status FROM tenant_databases
		WHERE tenant_id = 'a0000000-0000-4000-8000-000000000001' AND database_name = $1`, db).Scan(&gotUser, &gotPW, &host, &port, &status))
	assert.Equal(t, user, gotUser)
	plain, err := enc.Decrypt(gotPW, laravel.FormatPHPSerialized)
	require.NoError(t, err, "the inserted password must decrypt like Laravel's decrypt()")
	assert.Equal(t, repairPW, string(plain))
	assert.Equal(t, "127.0.0.1", host)
	assert.Equal(t, pgtest.Server(t).Port, port)
	assert.Equal(t, "active", status)

	var slug string
	require.NoError(t, pool.QueryRow(ctx, "SELECT slug FROM tenant_databases WHERE id = 'b1000000-0000-4000-8000-000000000002'").Scan(&slug))
	assert.Equal(t, "bravo", slug)
	require.NoError(t, pool.QueryRow(ctx, "SELECT database_password FROM tenant_databases WHERE id = 'c1000000-0000-4000-8000-000000000003'").Scan(&gotPW))
	plain, err = enc.Decrypt(gotPW, laravel.FormatPHPSerialized)
	require.NoError(t, err)
	assert.Equal(t, plaintextPW, string(plain))
	require.NoError(t, pool.QueryRow(ctx, "SELECT status FROM tenant_databases WHERE id = 'd1000000-0000-4000-8000-000000000004'").Scan(&status))
	assert.Equal(t, "failed", status)

	// The audit log holds one verified row per repair, masked.
	rows, err := pool.Query(ctx, `SELECT action, result, verified, coalesce(before, ''), coalesce(after, ''), applied_by FROM tenantdrift.repairs ORDER BY id`)
	require.NoError(t, err)
	type logRow struct {
		Action, Result    string
		Verified          *bool
		Before, After, By string
	}
	logged, err := pgx.CollectRows(rows, pgx.RowToStructByPos[logRow])
	require.NoError(t, err)
	require.Len(t, logged, 4)
	for _, l := range logged {
		assert.Equal(t, "applied", l.Result, l.Action)
		require.NotNil(t, l.Verified, l.Action)
		assert.True(t, *l.Verified, l.Action)
		assert.Contains(t, l.By, "tenantdrift repair --apply")
		outputs = append(outputs, l.Before, l.After)
	}

	// Idempotent: a second apply finds nothing to do, and the audit sees
	// none of the repaired drift.
	res = run(t, env, "repair", "--config", cfg, "--apply")
	outputs = append(outputs, res.stdout, res.stderr)
	require.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)
	assert.Contains(t, res.stdout, "tenantdrift repair (apply): 0 actions")
	res = run(t, env, "audit", "--config", cfg, "--format", "json")
	require.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)

	for _, out := range outputs {
		for _, secret := range []string{repairPW, plaintextPW, strings.TrimPrefix(appKey, "base64:")} {
			assert.NotContains(t, out, secret)
		}
	}
}

// plaintextLandlord loads tenants tenants, the first drifted of which
// store their password in clear text.
func plaintextLandlord(t *testing.T, pool *pgxpool.Pool, tenants, drifted int) {
	t.Helper()
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at, updated_at)
		SELECT gen_random_uuid(), 'T '||i, 't'||i||'@x.test', 't-'||lpad(i::text, 4, '0'), 'db_'||i, now() - interval '3 days', now()
		FROM generate_series(1, $1) AS i`, tenants)
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, status, created_at)
		SELECT gen_random_uuid(), t.id, t.database_name, t.slug, t.slug||'_user',
			CASE WHEN t.slug <= 't-'||lpad($2::int::text, 4, '0') THEN 'clear-'||t.slug ELSE $1 END,
			'127.0.0.1', 5432, 'active', t.created_at FROM tenants t`, encrypt(t, "healthy-pw"), drifted)
}

func TestRepairCapsEachRun(t *testing.T) {
	dsn, pool := landlord(t)
	plaintextLandlord(t, pool, 300, 50)
	cfg := repairConfig(t, "unused", "")
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey, "TENANT_DB_PASSWORD": repairPW}

	res := run(t, env, "repair", "--config", cfg, "--apply", "--format", "json")
	require.Equal(t, app.ExitDrift, res.code, "actions wait for the next run: %s", res.stderr)
	doc := decodeRepair(t, res.stdout)
	count := map[string]int{}
	for _, a := range doc.Actions {
		count[a.Status]++
		if a.Status == "skipped" {
			assert.Equal(t, "max_repairs_per_run (10) reached: waits for the next run", a.Reason)
		}
	}
	assert.Equal(t, map[string]int{"applied": 10, "skipped": 40}, count)
	var clear int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM tenant_databases WHERE database_password LIKE 'clear-%'").Scan(&clear))
	assert.Equal(t, 40, clear, "exactly the cap was applied")

	// Four more runs finish the job; the fifth has nothing to do.
	for range 4 {
		res = run(t, env, "repair", "--config", cfg, "--apply")
		require.Contains(t, []int{app.ExitOK, app.ExitDrift}, res.code, res.stderr)
	}
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM tenant_databases WHERE database_password LIKE 'clear-%'").Scan(&clear))
	assert.Zero(t, clear)
	res = run(t, env, "repair", "--config", cfg, "--apply")
	assert.Equal(t, app.ExitOK, res.code, res.stdout)
}

func TestRepairBreaker(t *testing.T) {
	dsn, pool := landlord(t)
	plaintextLandlord(t, pool, 100, 30) // 30% of tenants in drift
	cfg := repairConfig(t, "unused", "")
	slack := newFakeSlack(t)
	appendConfig(t, cfg, slack.config())
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey, "TENANT_DB_PASSWORD": repairPW}
	before := checksum(t, pool)

	res := run(t, env, "repair", "--config", cfg, "--apply")
	require.Equal(t, app.ExitDrift, res.code, res.stderr)
	assert.Contains(t, res.stdout, "! circuit breaker open: 30 of 100 tenants (30%) show drift, above repair.breaker_ratio 20%")
	assert.Contains(t, res.stdout, "0 applied, 0 planned, 30 skipped")
	assert.Contains(t, res.stderr, "repair circuit breaker open: nothing applied")
	assert.Equal(t, before, checksum(t, pool), "an open breaker writes nothing")
	reqs := slack.requests()
	require.Len(t, reqs, 1, "the open breaker is announced")
	assert.Equal(t, ":octagonal_sign: tenantdrift applied no repair: circuit breaker open: 30 of 100 tenants (30%) show drift, above repair.breaker_ratio 20%; that looks like an outage or a bad config, so nothing is applied",
		reqs[0].Form.Get("text"))
	slackEnd := len(reqs)

	// An operator who has checked raises the ratio for one run.
	cfg = repairConfig(t, "unused", "  breaker_ratio: 0.5\n  max_repairs_per_run: 100\n")
	appendConfig(t, cfg, slack.config())
	res = run(t, env, "repair", "--config", cfg, "--apply", "--no-notify")
	assert.Len(t, slack.requests(), slackEnd, "--no-notify")
	require.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)
	assert.Contains(t, res.stdout, "30 applied")
}

func TestRepairBadInput(t *testing.T) {
	dsn, _ := landlord(t)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("registry: {preset: stancl}\n"), 0o600))
	res := run(t, env, "repair", "--config", cfg)
	assert.Equal(t, app.ExitError, res.code)
	assert.Equal(t, "tenantdrift repair: repair writes the laravel preset's tables only; registry.preset is stancl\n", res.stderr)

	require.NoError(t, os.WriteFile(cfg, []byte("state: {dsn: \"postgres://u:state-canary@127.0.0.1:1/x\"}\n"), 0o600))
	res = run(t, env, "repair", "--config", cfg, "--apply")
	assert.Equal(t, app.ExitError, res.code)
	assert.Contains(t, res.stderr, "the state store must live in the landlord database: unset state.dsn")
	assert.NotContains(t, res.stderr, "state-canary")

	res = run(t, env, "repair", "--format", "yaml")
	assert.Equal(t, app.ExitError, res.code)
	assert.Contains(t, res.stderr, `invalid --format "yaml"`)

	res = run(t, map[string]string{"TENANTDRIFT_LANDLORD_DSN": "postgres://u:pw-canary@127.0.0.1:1/landlord?connect_timeout=2"}, "repair")
	assert.Equal(t, app.ExitError, res.code)
	assert.Contains(t, res.stderr, "tenantdrift repair: ")
	assert.NotContains(t, res.stderr, "pw-canary")
	assert.NotContains(t, res.stderr, "goroutine")
}

func TestServeRepairs(t *testing.T) {
	dsn, pool := landlord(t)
	plaintextLandlord(t, pool, 20, 2)
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey}
	d := startServe(t, env, fastConfig+`  db_unreachable:
    enabled: false
repair:
  enabled: true
  actions:
    credential_plaintext: {mode: apply}
`)
	d.waitMetric(`tenantdrift_repairs_total{action="encrypt_password",result="applied"}`, "2")
	// The run that repaired recorded the verification: nothing to announce.
	d.waitMetric(`tenantdrift_findings{check="credential_plaintext",severity="warning"}`, "0")
	assert.Equal(t, "0", d.metric(`tenantdrift_repairs_total{action="encrypt_password",result="failed"}`))
	assert.Equal(t, "0", d.metric("tenantdrift_repair_breaker_open"))

	var clear, verified int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM tenant_databases WHERE database_password LIKE 'clear-%'").Scan(&clear))
	assert.Zero(t, clear)
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM tenantdrift.repairs WHERE verified AND applied_by LIKE 'tenantdrift serve%'").Scan(&verified))
	assert.Equal(t, 2, verified)
	var opened int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM tenantdrift.findings WHERE "check" = 'credential_plaintext'`).Scan(&opened))
	assert.Zero(t, opened, "a repaired finding is never recorded as open")
	assert.Equal(t, app.ExitOK, d.stop())
	assert.NotContains(t, d.stderr.String(), "clear-t-0001")
}

func TestRepairAnnouncedInSlack(t *testing.T) {
	dsn, pool := landlord(t)
	_, user := repairLandlord(t, pool, 30)
	slack := newFakeSlack(t)
	cfg := repairConfig(t, user, "")
	appendConfig(t, cfg, slack.config())
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey, "TENANT_DB_PASSWORD": repairPW}

	res := run(t, env, "repair", "--config", cfg)
	require.Equal(t, app.ExitDrift, res.code, res.stderr)
	assert.Empty(t, slack.requests(), "a plan announces nothing")

	res = run(t, env, "repair", "--config", cfg, "--apply", "--log-level", "debug")
	require.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)
	reqs := slack.requests()
	require.Len(t, reqs, 1, res.stderr)
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Equal(t, ":wrench: tenantdrift repaired 4 findings", reqs[0].Form.Get("text"))
	for _, slug := range []string{"alpha", "bravo", "charlie", "delta"} {
		assert.Contains(t, reqs[0].Form.Get("blocks"), slug)
	}
	for _, secret := range []string{repairPW, plaintextPW, strings.TrimPrefix(appKey, "base64:")} {
		assert.NotContains(t, reqs[0].Body, secret)
	}
	assertNoTokenLeak(t, reqs, res.stdout, res.stderr)

	res = run(t, env, "repair", "--config", cfg, "--apply")
	require.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)
	assert.Len(t, slack.requests(), 1, "nothing to do, nothing to say")
}

func TestRepairApplyWaitsForNoLeader(t *testing.T) {
	dsn, pool := landlord(t)
	_, user := repairLandlord(t, pool, 30)
	cfg := repairConfig(t, user, "")
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey, "TENANT_DB_PASSWORD": repairPW}
	// A daemon leads: it holds the leader lock on the landlord.
	conn, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(context.Background(), "SELECT pg_advisory_lock($1)", leader.Key)
	require.NoError(t, err)
	before := checksum(t, pool)

	res := run(t, env, "repair", "--config", cfg, "--apply")
	assert.Equal(t, app.ExitError, res.code)
	assert.Contains(t, res.stderr, "a tenantdrift serve holds the leader lock: only the leader repairs")
	assert.Equal(t, before, checksum(t, pool))
	res = run(t, env, "repair", "--config", cfg)
	assert.Equal(t, app.ExitDrift, res.code, "the plan needs no lock: %s", res.stderr)

	_, err = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", leader.Key)
	require.NoError(t, err)
	res = run(t, env, "repair", "--config", cfg, "--apply")
	assert.Equal(t, app.ExitOK, res.code, res.stdout+res.stderr)
}

func TestServeAnnouncesARepeatedFailureOnce(t *testing.T) {
	dsn, pool := landlord(t)
	_, user := repairLandlord(t, pool, 30)
	slack := newFakeSlack(t)
	// A wrong password for alpha: its insert fails every run.
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn, "APP_KEY": appKey, "TENANT_DB_PASSWORD": "not-" + repairPW}
	d := startServe(t, env, fastConfig+fmt.Sprintf(`  db_unreachable:
    enabled: false
state: {enabled: true}
repair:
  enabled: true
  actions:
    registry_missing: {mode: apply, host: 127.0.0.1, port: %d, username: "%s", password: "${TENANT_DB_PASSWORD}"}
`, pgtest.Server(t).Port, strings.ReplaceAll(user, "alpha", "{{slug}}"))+slack.config())
	d.waitMetric(`tenantdrift_repairs_total{action="insert_database_row",result="failed"}`, "3")
	assert.Equal(t, app.ExitOK, d.stop())
	var failures []string
	for _, r := range slack.requests() {
		if strings.Contains(r.Form.Get("text"), "tenantdrift repaired") {
			failures = append(failures, r.Form.Get("blocks"))
		}
	}
	require.Len(t, failures, 1, "three failed runs, one announcement")
	assert.Contains(t, failures[0], "did not accept the credentials (auth_failed")
	assert.NotContains(t, failures[0], repairPW)
}
