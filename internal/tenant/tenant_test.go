package tenant_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/demo"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// rows returns "slug=database_name" of both canonical relations.
func rows(t *testing.T, pool *pgxpool.Pool, reg *tenant.Registry) (tenants, dbs []string) {
	t.Helper()
	ctx := context.Background()
	collect := func(body string) []string {
		sql, args := reg.Query(body, nil)
		r, err := pool.Query(ctx, sql, args)
		require.NoError(t, err)
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	tenants = collect("SELECT coalesce(slug, '?') || '=' || coalesce(database_name, 'NULL') FROM registry_tenants ORDER BY 1")
	dbs = collect("SELECT coalesce(slug, '?') || '=' || coalesce(database_name, 'NULL') || '@' || coalesce(host, '') || ':' || coalesce(port, '') FROM registry_databases ORDER BY 1")
	return tenants, dbs
}

func TestLaravelPreset(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	exec(t, pool, demo.Schema)
	exec(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at) VALUES
		('00000000-0000-4000-8000-000000000001', 'A', 'a@x', 'a', 'tenant_a', now()),
		('00000000-0000-4000-8000-000000000002', 'B', 'b@x', 'b', NULL, now()),
		('00000000-0000-4000-8000-000000000003', 'C', 'c@x', 'c', 'tenant_c', now())`)
	exec(t, pool, `UPDATE tenants SET deleted_at = now() WHERE slug = 'c'`)
	exec(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port)
		VALUES ('00000000-0000-4000-8000-000000000101', '00000000-0000-4000-8000-000000000001', 'tenant_a', 'a', 'u', 'p', 'db1', 5433),
		       ('00000000-0000-4000-8000-000000000103', '00000000-0000-4000-8000-000000000003', 'tenant_c', 'c', 'u', 'p', 'db1', 5433)`)
	reg, err := tenant.Resolve(context.Background(), pool, config.Default().Registry, []string{"slug", "database_name"})
	require.NoError(t, err)
	ts, ds := rows(t, pool, reg)
	// The soft-deleted tenant and its row are left out.
	assert.Equal(t, []string{"a=tenant_a", "b=NULL"}, ts)
	assert.Equal(t, []string{"a=tenant_a@db1:5433"}, ds)
	n, err := reg.Count(context.Background(), pool)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestLaravelPresetOtherColumnNames(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	// A leaner variant: bigint ids, username/password/driver, no slug on the
	// database side, no soft deletes, other schema and table names.
	exec(t, pool, `CREATE SCHEMA landlord;
		CREATE TABLE landlord.orgs (id bigserial PRIMARY KEY, slug text, database_name text, created_at timestamptz);
		CREATE TABLE landlord.org_dbs (id bigserial PRIMARY KEY, tenant_id bigint, database_name text, username text, password text, driver text);
		INSERT INTO landlord.orgs (slug, database_name, created_at) VALUES ('x', 'db_x', now());
		INSERT INTO landlord.org_dbs (tenant_id, database_name, username, password, driver) VALUES (1, 'db_x', 'u', 'p', 'pgsql');`)
	cfg := config.Default().Registry
	cfg.Schema, cfg.TenantsTable, cfg.DatabasesTable = "landlord", "orgs", "org_dbs"
	reg, err := tenant.Resolve(context.Background(), pool, cfg, []string{"database_name"})
	require.NoError(t, err)
	ts, ds := rows(t, pool, reg)
	assert.Equal(t, []string{"x=db_x"}, ts)
	assert.Equal(t, []string{"?=db_x@:"}, ds)
}

func TestLayoutErrors(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()

	// An empty landlord: the tables are missing.
	_, err := tenant.Resolve(ctx, pool, config.Default().Registry, nil)
	var le *tenant.LayoutError
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Equal(t, "the landlord has no table public.tenants that this user can see (registry.preset laravel expects it; set registry.tenants_table or registry.schema if yours is named differently)", err.Error())

	// A required column is missing.
	exec(t, pool, `CREATE TABLE tenants (id uuid, slug text); CREATE TABLE tenant_databases (id uuid, tenant_id uuid)`)
	_, err = tenant.Resolve(ctx, pool, config.Default().Registry, nil)
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Contains(t, err.Error(), `table "public"."tenant_databases" has no column database_name (looked for database_name, database)`)

	// A field to compare that one side lacks.
	exec(t, pool, `ALTER TABLE tenant_databases ADD COLUMN database_name text`)
	_, err = tenant.Resolve(ctx, pool, config.Default().Registry, []string{"slug", "region"})
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Contains(t, err.Error(), `checks.field_mismatch.fields: "region" is not a column of both`)
}

func TestStanclPreset(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	exec(t, pool, `CREATE TABLE tenants (id varchar(255) PRIMARY KEY, created_at timestamp, updated_at timestamp, data json);
		INSERT INTO tenants VALUES ('acme', now(), now(), '{"tenancy_db_name": "tenant_acme_custom", "tenancy_db_username": "u", "tenancy_db_password": "p"}'),
		                           ('globex', now(), now(), '{}')`)
	cfg := config.Default().Registry
	cfg.Preset, cfg.Host, cfg.DatabaseSuffix = config.PresetStancl, "tenants.db.internal", "_prod"
	reg, err := tenant.Resolve(context.Background(), pool, cfg, []string{"slug", "database_name"})
	require.NoError(t, err)
	ts, ds := rows(t, pool, reg)
	assert.Equal(t, []string{"acme=tenant_acme_custom", "globex=tenantglobex_prod"}, ts)
	assert.Equal(t, []string{"acme=tenant_acme_custom@tenants.db.internal:5432", "globex=tenantglobex_prod@tenants.db.internal:5432"}, ds)
}

func TestSpatiePreset(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	exec(t, pool, `CREATE TABLE tenants (id bigserial PRIMARY KEY, name varchar(255), domain varchar(255), database varchar(255), created_at timestamp);
		INSERT INTO tenants (name, domain, database, created_at) VALUES ('A', 'a.example', 'db_a', now()), ('B', 'b.example', NULL, now())`)
	cfg := config.Default().Registry
	cfg.Preset = config.PresetSpatie
	reg, err := tenant.Resolve(context.Background(), pool, cfg, nil)
	require.NoError(t, err)
	ts, ds := rows(t, pool, reg)
	assert.Equal(t, []string{"a.example=db_a", "b.example=NULL"}, ts)
	// A tenant without a database has no tenant database row.
	assert.Equal(t, []string{"a.example=db_a@:5432"}, ds)
}

func TestCustomPreset(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	exec(t, pool, `CREATE TABLE accounts (id int, handle text, db text, made timestamptz, gone timestamptz, region text);
		CREATE TABLE account_dbs (id int, account int, db text, region text);
		INSERT INTO accounts VALUES (1, 'one', 'db1', now(), NULL, 'eu'), (2, 'two', 'db2', now(), now(), 'eu');
		INSERT INTO account_dbs VALUES (10, 1, 'db1', 'us'), (20, 2, 'db2', 'eu')`)
	cfg := config.Default().Registry
	cfg.Preset = config.PresetCustom
	cfg.TenantsQuery = `SELECT id, handle AS slug, handle AS name, 'active' AS status, db AS database_name, made AS created_at, gone AS deleted_at, region FROM accounts;`
	cfg.DatabasesQuery = `SELECT id, account AS tenant_id, NULL AS slug, db AS database_name, NULL AS host, NULL AS port, NULL AS username, NULL AS password, 'pgsql' AS driver, NULL AS status, NULL::timestamptz AS created_at, NULL AS connection_config, region FROM account_dbs`
	reg, err := tenant.Resolve(context.Background(), pool, cfg, []string{"database_name", "region"})
	require.NoError(t, err)
	assert.True(t, reg.Comparable("region"))
	ts, ds := rows(t, pool, reg)
	assert.Equal(t, []string{"one=db1"}, ts)
	assert.Equal(t, []string{"?=db1@:"}, ds)

	// Missing canonical columns are named.
	cfg.DatabasesQuery = `SELECT id, account AS tenant_id FROM account_dbs`
	_, err = tenant.Resolve(context.Background(), pool, cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registry.databases_query does not return the column(s) slug, database_name, host, port, username, password, driver, status, created_at, connection_config")

	// A query that does not parse is one clear error.
	cfg.DatabasesQuery = `SELEC nonsense`
	_, err = tenant.Resolve(context.Background(), pool, cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registry.databases_query: syntax error")
}
