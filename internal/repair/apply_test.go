package repair_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/demo"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/probe"
	"github.com/tenantdrift/tenantdrift/internal/repair"
	"github.com/tenantdrift/tenantdrift/internal/serverproc"
	"github.com/tenantdrift/tenantdrift/internal/state"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	bravo   = "b0000000-0000-4000-8000-000000000002"
	bravoDB = "b1000000-0000-4000-8000-000000000002"
	charlie = "c0000000-0000-4000-8000-000000000003"
	charDB  = "c1000000-0000-4000-8000-000000000003"
)

type fixture struct {
	pool    *pgxpool.Pool
	store   *state.Store
	planner *repair.Planner
	applier *repair.Applier
	enc     *laravel.Encrypter
}

// setup loads bravo (slug mismatch, tenants right) and charlie (password
// in clear text) into a fresh landlord.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, demo.Schema)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES
		($1, 'Bravo', 'b@x.test', 'bravo', 'tenant_bravo', now() - interval '2 days'),
		($2, 'Charlie', 'c@x.test', 'charlie', 'tenant_charlie', now() - interval '2 days');
		`, bravo, charlie)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at) VALUES
		($1, $2, 'tenant_bravo', 'bravo-old', 'bravo_user', 'x', 'active', now()),
		($3, $4, 'tenant_charlie', 'charlie', 'charlie_user', 'clear-pw', 'active', now())`, bravoDB, bravo, charDB, charlie)
	require.NoError(t, err)

	cfg := config.Default()
	cfg.Repair = applyAll()
	cfg.Repair.Actions.FieldMismatch.SourceOfTruth = map[string]string{"slug": config.SourceTenants}
	reg, err := tenant.Resolve(ctx, pool, cfg.Registry, []string{"slug"})
	require.NoError(t, err)
	layout, ok := reg.Layout()
	require.True(t, ok)
	store, err := state.Open(ctx, pool, "tenantdrift", nil)
	require.NoError(t, err)
	key := make([]byte, 32)
	enc, err := laravel.NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	return &fixture{
		pool: pool, store: store, enc: enc,
		planner: &repair.Planner{DB: pool, Layout: layout, Config: cfg.Repair, Encrypter: enc, Serialize: true,
			Format: laravel.FormatAuto, LandlordHost: pgtest.Server(t).Host, SSLMode: "disable"},
		applier: &repair.Applier{DB: pool, Store: store, Prober: &probe.Prober{}, AppliedBy: "test"},
	}
}

var (
	slugDrift      = check.Finding{Check: config.CheckFieldMismatch, TenantID: bravo, TenantSlug: "bravo", Field: "slug", Fingerprint: "fp-bravo"}
	plaintextDrift = check.Finding{Check: config.CheckCredentialPlaintext, TenantID: charlie, TenantSlug: "charlie", Key: charDB, Fingerprint: "fp-charlie"}
)

func (f *fixture) plan(t *testing.T, findings ...check.Finding) []repair.Action {
	t.Helper()
	actions, un, err := f.planner.Plan(context.Background(), findings)
	require.NoError(t, err)
	require.Zero(t, un.Total(), "%v", un)
	return repair.Decide(actions, repair.Policy{Config: f.planner.Config, Apply: true, Tenants: 100, DriftTenants: len(findings)})
}

func (f *fixture) value(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var v string
	require.NoError(t, f.pool.QueryRow(context.Background(), sql, args...).Scan(&v))
	return v
}

func (f *fixture) repairs(t *testing.T) []state.RepairRecord {
	t.Helper()
	rs, err := f.store.Repairs(context.Background(), 100)
	require.NoError(t, err)
	return rs
}

func TestStalePlanIsAConflict(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	actions := f.plan(t, slugDrift, plaintextDrift)
	// Someone fixes both rows by hand between plan and apply.
	_, err := f.pool.Exec(ctx, "UPDATE tenant_databases SET slug = 'bravo-hand' WHERE id = $1", bravoDB)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, "UPDATE tenant_databases SET database_password = 'other-pw' WHERE id = $1", charDB)
	require.NoError(t, err)

	got := f.applier.Apply(ctx, actions)
	for _, a := range got {
		assert.Equal(t, repair.StatusConflict, a.Status, a.Action)
		assert.Contains(t, a.Reason, "changed since it was planned")
	}
	assert.Equal(t, "bravo-hand", f.value(t, "SELECT slug FROM tenant_databases WHERE id = $1", bravoDB))
	assert.Equal(t, "other-pw", f.value(t, "SELECT database_password FROM tenant_databases WHERE id = $1", charDB))
	rs := f.repairs(t)
	require.Len(t, rs, 2)
	for _, r := range rs {
		assert.Equal(t, state.RepairConflict, r.Result)
	}
}

func TestSourceOfTruthMovedIsAConflict(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	actions := f.plan(t, slugDrift)
	_, err := f.pool.Exec(ctx, "UPDATE tenants SET slug = 'bravo-renamed' WHERE id = $1", bravo)
	require.NoError(t, err)
	got := f.applier.Apply(ctx, actions)
	assert.Equal(t, repair.StatusConflict, got[0].Status)
	assert.Equal(t, "bravo-old", f.value(t, "SELECT slug FROM tenant_databases WHERE id = $1", bravoDB))
}

func TestConnectionKilledMidApplyLeavesNothing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	actions := f.plan(t, slugDrift, plaintextDrift)
	killed := 0
	f.applier.BeforeCommit = func(ctx context.Context, tx pgx.Tx) error {
		killed++
		// The landlord drops this very connection after the writes and
		// the audit row, before the commit.
		_, err := tx.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
		return err
	}
	got := f.applier.Apply(ctx, actions)
	require.Equal(t, 2, killed)
	for _, a := range got {
		assert.Equal(t, repair.StatusFailed, a.Status, a.Action)
	}
	assert.Equal(t, "bravo-old", f.value(t, "SELECT slug FROM tenant_databases WHERE id = $1", bravoDB))
	assert.Equal(t, "clear-pw", f.value(t, "SELECT database_password FROM tenant_databases WHERE id = $1", charDB))
	for _, r := range f.repairs(t) {
		assert.Equal(t, state.RepairFailed, r.Result, "only the failed attempts are logged, never an applied row without its change")
	}

	// The next run plans and applies the same repairs.
	f.applier.BeforeCommit = nil
	got = f.applier.Apply(ctx, f.plan(t, slugDrift, plaintextDrift))
	for _, a := range got {
		assert.Equal(t, repair.StatusApplied, a.Status, a.Reason)
	}
	stored := f.value(t, "SELECT database_password FROM tenant_databases WHERE id = $1", charDB)
	plain, err := f.enc.Decrypt(stored, laravel.FormatPHPSerialized)
	require.NoError(t, err)
	assert.Equal(t, "clear-pw", string(plain))
}

func TestRacingAppliersWriteOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// Two replicas planned the same repair.
	a1, a2 := f.plan(t, slugDrift), f.plan(t, slugDrift)
	var wg sync.WaitGroup
	results := make([][]repair.Action, 2)
	for i, acts := range [][]repair.Action{a1, a2} {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = f.applier.Apply(ctx, acts) }()
	}
	wg.Wait()
	statuses := []string{results[0][0].Status, results[1][0].Status}
	assert.ElementsMatch(t, []string{repair.StatusApplied, repair.StatusConflict}, statuses)
	assert.Equal(t, "bravo", f.value(t, "SELECT slug FROM tenant_databases WHERE id = $1", bravoDB))
}

func TestPasswordThatDoesNotFitIsNotPlanned(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, "UPDATE tenant_databases SET database_password = $2 WHERE id = $1", charDB, "a-clear-text-password-of-40-characters!!")
	require.NoError(t, err)
	actions, un, err := f.planner.Plan(ctx, []check.Finding{plaintextDrift})
	require.NoError(t, err)
	assert.Empty(t, actions)
	require.Equal(t, 1, un.Total())
	for why := range un[config.CheckCredentialPlaintext] {
		assert.Contains(t, why, "does not fit database_password varchar(255): widen the column to text")
	}
}

func TestUnrepairable(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, un, err := f.planner.Plan(ctx, []check.Finding{
		{Check: config.CheckRegistryDuplicate, TenantID: bravo},
		{Check: config.CheckDBUnreachable, TenantID: bravo},
		{Check: config.CheckFieldMismatch, TenantID: bravo, Field: "database_name"},
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"needs a human": 1}, un[config.CheckRegistryDuplicate])
	assert.Equal(t, map[string]int{"needs a human": 1}, un[config.CheckDBUnreachable])
	assert.Equal(t, map[string]int{"no source of truth for database_name": 1}, un[config.CheckFieldMismatch])
}

func TestCopyFieldRefusesAValueAnotherTenantHolds(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES
		('e0000000-0000-4000-8000-000000000005', 'Echo', 'e@x.test', 'echo', 'tenant_echo', now());
		INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at) VALUES
		('e1000000-0000-4000-8000-000000000005', 'e0000000-0000-4000-8000-000000000005', 'tenant_echo', 'bravo', 'echo_user', 'x', 'active', now())`)
	require.NoError(t, err)
	actions, un, err := f.planner.Plan(ctx, []check.Finding{slugDrift})
	require.NoError(t, err)
	assert.Empty(t, actions)
	assert.Equal(t, map[string]int{"another tenant already holds this slug: registry_duplicate needs a human": 1}, un[config.CheckFieldMismatch])
}

func TestCopyDatabaseNameProbesTheNewDatabase(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.planner.Config.Actions.FieldMismatch.SourceOfTruth = map[string]string{"database_name": config.SourceTenants}
	port := pgtest.Server(t).Port
	// bravo's row names a restored copy; tenants names a database that
	// does not exist.
	_, err := f.pool.Exec(ctx, `UPDATE tenant_databases SET database_name = 'tenant_bravo_restored', port = $2 WHERE id = $1`, bravoDB, port)
	require.NoError(t, err)
	drift := check.Finding{Check: config.CheckFieldMismatch, TenantID: bravo, TenantSlug: "bravo", Field: "database_name", Fingerprint: "fp-db"}
	got := f.applier.Apply(ctx, f.plan(t, drift))
	require.Len(t, got, 1)
	assert.Equal(t, repair.StatusFailed, got[0].Status)
	// bravo_user is no role on the server either: the probe fails before
	// it can see the database is missing; both mean nothing is written.
	assert.Regexp(t, `^database tenant_bravo did not accept the credentials \((auth_failed|database_missing), SQLSTATE \w+\): nothing written$`, got[0].Reason)
	assert.Equal(t, "tenant_bravo_restored", f.value(t, "SELECT database_name FROM tenant_databases WHERE id = $1", bravoDB))
}

func TestRacingInsertsWriteOneRow(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	suffix, err := serverproc.RandomHex(4)
	require.NoError(t, err)
	db, user := "rpdb_"+suffix, "rpuser_"+suffix
	admin := pgtest.NewPool(t)
	_, err = admin.Exec(ctx, "CREATE ROLE "+user+" LOGIN PASSWORD 'race-pw'")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+user)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+user)
	})
	const foxtrot = "f0000000-0000-4000-8000-000000000006"
	_, err = f.pool.Exec(ctx, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES ($1, 'Foxtrot', 'f@x.test', 'foxtrot', $2, now())`, foxtrot, db)
	require.NoError(t, err)
	rm := &f.planner.Config.Actions.RegistryMissing
	rm.Host, rm.Port, rm.Username, rm.Password = pgtest.Server(t).Host, pgtest.Server(t).Port, user, "race-pw"
	drift := check.Finding{Check: config.CheckRegistryMissing, TenantID: foxtrot, TenantSlug: "foxtrot", Fingerprint: "fp-foxtrot"}

	// Four replicas planned the same insert.
	plans := make([][]repair.Action, 4)
	for i := range plans {
		plans[i] = f.plan(t, drift)
	}
	var wg sync.WaitGroup
	results := make([]string, len(plans))
	for i := range plans {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = f.applier.Apply(ctx, plans[i])[0].Status }()
	}
	wg.Wait()
	assert.ElementsMatch(t, []string{repair.StatusApplied, repair.StatusConflict, repair.StatusConflict, repair.StatusConflict}, results)
	assert.Equal(t, "1", f.value(t, "SELECT count(*)::text FROM tenant_databases WHERE tenant_id = $1", foxtrot))
	stored := f.value(t, "SELECT database_password FROM tenant_databases WHERE tenant_id = $1", foxtrot)
	plain, err := f.enc.Decrypt(stored, laravel.FormatPHPSerialized)
	require.NoError(t, err)
	assert.Equal(t, "race-pw", string(plain))
	assert.Equal(t, user, f.value(t, "SELECT database_username FROM tenant_databases WHERE tenant_id = $1", foxtrot))
}
