package repair_test

import (
	"context"
	"sync"
	"testing"
	"time"

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

func TestSetStatusSparesARowThatFinishedProvisioning(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, "UPDATE tenant_databases SET status = 'provisioning', created_at = now() - interval '2 days' WHERE id = $1", charDB)
	require.NoError(t, err)
	f.planner.Config.Actions.ProvisioningStuck.Mode = config.ModeApply
	f.planner.ProvisioningStatuses = []string{"provisioning"}
	f.planner.ProvisioningCutoff = time.Now().Add(-30 * time.Minute)
	stuck := check.Finding{Check: config.CheckProvisioningStuck, TenantID: charlie, TenantSlug: "charlie", Key: charDB, Actual: "provisioning", Fingerprint: "fp-stuck"}

	// The job finishes between the check and the plan.
	_, err = f.pool.Exec(ctx, "UPDATE tenant_databases SET status = 'active' WHERE id = $1", charDB)
	require.NoError(t, err)
	actions, un, err := f.planner.Plan(ctx, []check.Finding{stuck})
	require.NoError(t, err)
	assert.Empty(t, actions)
	assert.Equal(t, map[string]int{"the row is no longer stuck in provisioning": 1}, un[config.CheckProvisioningStuck])
	assert.Equal(t, "active", f.value(t, "SELECT status FROM tenant_databases WHERE id = $1", charDB))

	// Still stuck: given up on.
	_, err = f.pool.Exec(ctx, "UPDATE tenant_databases SET status = 'provisioning' WHERE id = $1", charDB)
	require.NoError(t, err)
	got := f.applier.Apply(ctx, f.plan(t, stuck))
	assert.Equal(t, repair.StatusApplied, got[0].Status, got[0].Reason)
	assert.Equal(t, "failed", f.value(t, "SELECT status FROM tenant_databases WHERE id = $1", charDB))
}

func TestInsertRechecksTheTenant(t *testing.T) {
	for _, tc := range []struct{ name, change string }{
		{"renamed database", "UPDATE tenants SET database_name = 'tenant_golf_v2' WHERE id = $1"},
		{"soft-deleted", "UPDATE tenants SET deleted_at = now() WHERE id = $1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			ctx := context.Background()
			const golf = "90000000-0000-4000-8000-000000000007"
			_, err := f.pool.Exec(ctx, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES ($1, 'Golf', 'g@x.test', 'golf', 'tenant_golf', now())`, golf)
			require.NoError(t, err)
			f.planner.Config.Actions.RegistryMissing.Password = "pw"
			drift := check.Finding{Check: config.CheckRegistryMissing, TenantID: golf, TenantSlug: "golf", Fingerprint: "fp-golf"}
			actions := f.plan(t, drift)
			_, err = f.pool.Exec(ctx, tc.change, golf)
			require.NoError(t, err)
			// The probe would fail here (no such database): drop it to
			// reach the recheck inside the transaction.
			got := f.applier.Apply(ctx, repair.WithoutProbe(actions))
			assert.Equal(t, repair.StatusConflict, got[0].Status, got[0].Reason)
			assert.Equal(t, "0", f.value(t, "SELECT count(*)::text FROM tenant_databases WHERE tenant_id = $1", golf))
		})
	}
}

func TestCopyNonTextAndSharedValues(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// An integer column both tables have, and status, which many tenants
	// share: neither is unique, both copy.
	for _, q := range []string{
		"ALTER TABLE tenants ADD COLUMN plan_id integer",
		"ALTER TABLE tenant_databases ADD COLUMN plan_id integer",
		"UPDATE tenants SET plan_id = 7, status = 'suspended' WHERE id = '" + bravo + "'",
		"UPDATE tenant_databases SET plan_id = 3, status = 'active'",
	} {
		_, err := f.pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	reg, err := tenant.Resolve(ctx, f.pool, config.Default().Registry, []string{"slug", "status", "plan_id"})
	require.NoError(t, err)
	layout, _ := reg.Layout()
	f.planner.Layout = layout
	f.planner.Config.Actions.FieldMismatch.SourceOfTruth = map[string]string{"plan_id": config.SourceTenants, "status": config.SourceDatabases}
	got := f.applier.Apply(ctx, f.plan(t,
		check.Finding{Check: config.CheckFieldMismatch, TenantID: bravo, TenantSlug: "bravo", Field: "plan_id", Fingerprint: "fp-plan"},
		check.Finding{Check: config.CheckFieldMismatch, TenantID: bravo, TenantSlug: "bravo", Field: "status", Fingerprint: "fp-status"}))
	for _, a := range got {
		assert.Equal(t, repair.StatusApplied, a.Status, "%s: %s", a.Column, a.Reason)
	}
	assert.Equal(t, "7", f.value(t, "SELECT plan_id::text FROM tenant_databases WHERE id = $1", bravoDB))
	assert.Equal(t, "active", f.value(t, "SELECT status FROM tenants WHERE id = $1", bravo))
}

func TestInsertIntoStringPortsAndTakenNames(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// A schema that keeps the port as a string.
	_, err := f.pool.Exec(ctx, `ALTER TABLE tenant_databases ALTER COLUMN port TYPE varchar(10) USING port::text, ALTER COLUMN port DROP DEFAULT`)
	require.NoError(t, err)
	reg, err := tenant.Resolve(ctx, f.pool, config.Default().Registry, []string{"slug"})
	require.NoError(t, err)
	layout, _ := reg.Layout()
	f.planner.Layout = layout
	f.planner.Config.Actions.RegistryMissing.Password = "pw"
	const hotel, india = "90000000-0000-4000-8000-000000000008", "90000000-0000-4000-8000-000000000009"
	_, err = f.pool.Exec(ctx, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES
		($1, 'Hotel', 'h@x.test', 'hotel', 'tenant_hotel', now()), ($2, 'India', 'i@x.test', 'india', 'tenant_bravo', now())`, hotel, india)
	require.NoError(t, err)
	actions, un, err := f.planner.Plan(ctx, []check.Finding{
		{Check: config.CheckRegistryMissing, TenantID: hotel, TenantSlug: "hotel", Fingerprint: "fp-hotel"},
		{Check: config.CheckRegistryMissing, TenantID: india, TenantSlug: "india", Fingerprint: "fp-india"},
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"another row already names this database: registry_duplicate needs a human": 1}, un[config.CheckRegistryMissing])
	require.Len(t, actions, 1)
	actions = repair.Decide(actions, repair.Policy{Config: f.planner.Config, Apply: true, Tenants: 100, DriftTenants: 2})
	got := f.applier.Apply(ctx, repair.WithoutProbe(actions))
	assert.Equal(t, repair.StatusApplied, got[0].Status, got[0].Reason)
	assert.Equal(t, "5432", f.value(t, "SELECT port FROM tenant_databases WHERE tenant_id = $1", hotel))
}
