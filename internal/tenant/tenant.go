// Package tenant maps a landlord database's tenant registry onto two
// canonical relations that every check composes as CTEs:
//
//	registry_tenants   (id, slug, name, status, database_name, created_at, deleted)
//	registry_databases (id, tenant_id, slug, database_name, host, port, username,
//	                    password, driver, status, created_at, connection_config)
//
// A preset (laravel, stancl, spatie) writes the two queries from the tables it
// finds; the custom preset takes them from the configuration. Resolve checks
// the queries against the landlord before any check runs, so a wrong layout
// is one clear error rather than five failing checks.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantdrift/tenantdrift/config"
)

// Querier runs SQL; *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TenantColumns are the canonical columns of a tenant.
var TenantColumns = []string{"id", "slug", "name", "status", "database_name", "created_at"}

// DatabaseColumns are the canonical columns of a tenant database row.
var DatabaseColumns = []string{"id", "tenant_id", "slug", "database_name", "host", "port", "username", "password", "driver", "status", "created_at", "connection_config"}

// Registry is a resolved layout: the canonical queries and what they expose.
type Registry struct {
	preset       string
	tenantsSQL   string
	databasesSQL string
	args         pgx.NamedArgs
	// comparable holds the columns found on both sides, canonical or not,
	// that field_mismatch may compare.
	comparable []string
	// layout is the physical tables behind the laravel preset; nil for
	// the others.
	layout *Layout
}

// Layout is where the laravel preset's registry physically lives: what a
// repair writes to.
type Layout struct {
	Tenants, Databases pgx.Identifier
	// TenantColumns and DatabaseColumns are every column of each table.
	TenantColumns, DatabaseColumns []string
	// tenantMap and databaseMap map a canonical column to its physical one.
	tenantMap, databaseMap map[string]string
}

// TenantColumn returns the physical tenants column behind canonical (or a
// column of that name), and whether there is one.
func (l *Layout) TenantColumn(canonical string) (string, bool) {
	return physical(l.tenantMap, l.TenantColumns, canonical)
}

// DatabaseColumn returns the physical tenant databases column behind
// canonical (or a column of that name), and whether there is one.
func (l *Layout) DatabaseColumn(canonical string) (string, bool) {
	return physical(l.databaseMap, l.DatabaseColumns, canonical)
}

func physical(m map[string]string, all []string, canonical string) (string, bool) {
	if c, ok := m[canonical]; ok {
		return c, true
	}
	if slices.Contains(all, canonical) {
		return canonical, true
	}
	return "", false
}

// Layout returns the physical tables of a laravel-preset registry; ok is
// false for the other presets, whose registry tenantdrift never writes.
func (r *Registry) Layout() (l *Layout, ok bool) { return r.layout, r.layout != nil }

// columnMap maps each canonical column to the first candidate have holds.
func columnMap(have []string, cols []column) map[string]string {
	m := map[string]string{}
	for _, c := range cols {
		for _, cand := range c.candidates {
			if slices.Contains(have, cand) {
				m[c.canonical] = cand
				break
			}
		}
	}
	return m
}

// Preset returns the layout preset the registry was resolved from.
func (r *Registry) Preset() string { return r.preset }

// Comparable reports whether a field exists on both sides of the registry.
func (r *Registry) Comparable(field string) bool { return slices.Contains(r.comparable, field) }

// Query composes a check's statement: body may refer to registry_tenants
// (active tenants only: not soft-deleted, not in an excluded status),
// registry_tenants_all (every tenant, for orphan detection) and
// registry_databases (rows of tenants that are not left out). Named
// arguments (@name) of the body are merged with the registry's own, which
// all start with "reg_".
//
// A body may start with its own WITH list; its CTEs are appended to the
// registry's.
func (r *Registry) Query(body string, args pgx.NamedArgs) (string, pgx.NamedArgs) {
	trimmed := strings.TrimSpace(body)
	if len(trimmed) > 5 && strings.EqualFold(trimmed[:5], "WITH ") {
		body = ",\n" + trimmed[5:]
	} else {
		body = "\n" + body
	}
	sql := "WITH registry_tenants_all AS NOT MATERIALIZED (" + r.tenantsSQL + "),\n" +
		"registry_tenants AS NOT MATERIALIZED (SELECT * FROM registry_tenants_all WHERE NOT deleted AND NOT (coalesce(status, '') = ANY (@reg_excluded_statuses::text[]))),\n" +
		"registry_databases AS NOT MATERIALIZED (SELECT d.* FROM (" + r.databasesSQL + ") AS d WHERE NOT EXISTS (SELECT 1 FROM registry_tenants_all AS x WHERE x.id = d.tenant_id AND (x.deleted OR coalesce(x.status, '') = ANY (@reg_excluded_statuses::text[]))))" +
		body
	all := make(pgx.NamedArgs, len(r.args)+len(args))
	for k, v := range r.args {
		all[k] = v
	}
	for k, v := range args {
		all[k] = v
	}
	return sql, all
}

// Count returns the number of active tenants in the registry.
func (r *Registry) Count(ctx context.Context, q Querier) (int, error) {
	sql, args := r.Query("SELECT count(*) FROM registry_tenants", nil)
	var n int
	if err := q.QueryRow(ctx, sql, args).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tenants: %w", err)
	}
	return n, nil
}

// LayoutError says the landlord does not look like the configured layout.
type LayoutError struct {
	Msg string
}

func (e *LayoutError) Error() string { return e.Msg }

// Resolve builds the registry for cfg, inspecting the landlord's tables for
// the presets, and verifies both canonical queries by running them with
// LIMIT 0. fields are the columns field_mismatch will compare; each must
// exist on both sides. It returns a *LayoutError when tables or columns are
// missing, or the database error when the landlord cannot be queried.
func Resolve(ctx context.Context, q Querier, cfg config.Registry, fields []string) (*Registry, error) {
	r := &Registry{
		preset: cfg.Preset,
		args: pgx.NamedArgs{
			"reg_excluded_statuses": nonNil(cfg.ExcludedStatuses),
			"reg_db_prefix":         cfg.DatabasePrefix,
			"reg_db_suffix":         cfg.DatabaseSuffix,
			"reg_host":              cfg.Host,
			"reg_port":              fmt.Sprint(cfg.Port),
			"reg_driver":            cfg.Driver,
		},
	}
	var err error
	switch cfg.Preset {
	case config.PresetLaravel:
		err = r.resolveLaravel(ctx, q, cfg, fields)
	case config.PresetStancl:
		err = r.resolveStancl(ctx, q, cfg, fields)
	case config.PresetSpatie:
		err = r.resolveSpatie(ctx, q, cfg, fields)
	case config.PresetCustom:
		err = r.resolveCustom(ctx, q, cfg, fields)
	default:
		err = &LayoutError{Msg: fmt.Sprintf("unknown registry preset %q", cfg.Preset)}
	}
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		if !r.Comparable(f) {
			return nil, &LayoutError{Msg: fmt.Sprintf("checks.field_mismatch.fields: %q is not a column of both the tenants and the tenant databases side of the %s layout", f, cfg.Preset)}
		}
	}
	// Run the composed statement once, empty, so a broken layout fails here.
	sql, args := r.Query("SELECT t.id, d.id FROM registry_tenants AS t, registry_databases AS d LIMIT 0", nil)
	rows, err := q.Query(ctx, sql, args)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s registry queries: %w", cfg.Preset, describeErr(err))
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// describeErr turns a PostgreSQL error into a sentence a user can act on.
func describeErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P01", "42703", "42883", "42601", "42804":
			return &LayoutError{Msg: fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)}
		}
	}
	return err
}

// tableColumns returns the columns of schema.table, or a LayoutError when
// the table does not exist or cannot be seen.
func tableColumns(ctx context.Context, q Querier, schema, table, preset, key string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("inspect table %s.%s: %w", schema, table, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("inspect table %s.%s: %w", schema, table, err)
	}
	if len(cols) == 0 {
		return nil, &LayoutError{Msg: fmt.Sprintf(
			"the landlord has no table %s.%s that this user can see (registry.preset %s expects it; set registry.%s or registry.schema if yours is named differently)",
			schema, table, preset, key)}
	}
	return cols, nil
}

// column maps one canonical column onto the first candidate a table has.
type column struct {
	canonical  string
	candidates []string
	required   bool
	cast       string // SQL type the canonical column has
}

// selectList writes "alias.col::type AS canonical" for each column, NULL for
// optional columns the table lacks; it errors on a missing required one.
func selectList(alias string, have []string, cols []column, table string) ([]string, error) {
	out := make([]string, 0, len(cols))
	for _, c := range cols {
		expr := ""
		for _, cand := range c.candidates {
			if slices.Contains(have, cand) {
				expr = alias + "." + pgx.Identifier{cand}.Sanitize()
				break
			}
		}
		if expr == "" {
			if c.required {
				return nil, &LayoutError{Msg: fmt.Sprintf("table %s has no column %s (looked for %s)", table, c.canonical, strings.Join(c.candidates, ", "))}
			}
			expr = "NULL"
		}
		out = append(out, fmt.Sprintf("%s::%s AS %s", expr, c.cast, c.canonical))
	}
	return out, nil
}

func textCol(name string, required bool, candidates ...string) column {
	if len(candidates) == 0 {
		candidates = []string{name}
	}
	return column{canonical: name, candidates: candidates, required: required, cast: "text"}
}

var laravelTenantCols = []column{
	textCol("id", true),
	textCol("slug", false),
	textCol("name", false),
	textCol("status", false),
	textCol("database_name", false, "database_name", "database"),
	{canonical: "created_at", candidates: []string{"created_at"}, cast: "timestamptz"},
}

var laravelDatabaseCols = []column{
	textCol("id", true),
	textCol("tenant_id", true),
	textCol("slug", false),
	textCol("database_name", true, "database_name", "database"),
	textCol("host", false, "host", "database_host"),
	textCol("port", false, "port", "database_port"),
	textCol("username", false, "database_username", "username", "db_username"),
	textCol("password", false, "database_password", "password", "db_password"),
	textCol("driver", false, "database_driver", "driver"),
	textCol("status", false),
	{canonical: "created_at", candidates: []string{"created_at"}, cast: "timestamptz"},
	textCol("connection_config", false),
}

func (r *Registry) resolveLaravel(ctx context.Context, q Querier, cfg config.Registry, fields []string) error {
	tcols, err := tableColumns(ctx, q, cfg.Schema, cfg.TenantsTable, cfg.Preset, "tenants_table")
	if err != nil {
		return err
	}
	dcols, err := tableColumns(ctx, q, cfg.Schema, cfg.DatabasesTable, cfg.Preset, "databases_table")
	if err != nil {
		return err
	}
	tname := pgx.Identifier{cfg.Schema, cfg.TenantsTable}.Sanitize()
	dname := pgx.Identifier{cfg.Schema, cfg.DatabasesTable}.Sanitize()
	tsel, err := selectList("t", tcols, laravelTenantCols, tname)
	if err != nil {
		return err
	}
	dsel, err := selectList("d", dcols, laravelDatabaseCols, dname)
	if err != nil {
		return err
	}
	deleted := "false"
	if slices.Contains(tcols, "deleted_at") {
		deleted = "t.deleted_at IS NOT NULL"
	}
	// Extra comparable fields: columns both tables have under one name.
	r.comparable = []string{"slug", "database_name", "status"}
	for _, f := range fields {
		if slices.Contains(r.comparable, f) || slices.Contains(TenantColumns, f) || slices.Contains(DatabaseColumns, f) {
			continue
		}
		if slices.Contains(tcols, f) && slices.Contains(dcols, f) {
			id := pgx.Identifier{f}.Sanitize()
			tsel = append(tsel, "t."+id+"::text AS "+id)
			dsel = append(dsel, "d."+id+"::text AS "+id)
			r.comparable = append(r.comparable, f)
		}
	}
	r.tenantsSQL = "SELECT " + strings.Join(tsel, ", ") + ", " + deleted + " AS deleted FROM " + tname + " AS t"
	r.databasesSQL = "SELECT " + strings.Join(dsel, ", ") + " FROM " + dname + " AS d"
	r.layout = &Layout{
		Tenants: pgx.Identifier{cfg.Schema, cfg.TenantsTable}, Databases: pgx.Identifier{cfg.Schema, cfg.DatabasesTable},
		TenantColumns: tcols, DatabaseColumns: dcols,
		tenantMap: columnMap(tcols, laravelTenantCols), databaseMap: columnMap(dcols, laravelDatabaseCols),
	}
	return nil
}

// resolveStancl maps stancl/tenancy (archtechx): one tenants table whose
// data JSON holds tenancy_db_name, tenancy_db_username and
// tenancy_db_password; the database name defaults to prefix + id + suffix.
// Every tenant has exactly one database, described by the same row.
func (r *Registry) resolveStancl(ctx context.Context, q Querier, cfg config.Registry, _ []string) error {
	tcols, err := tableColumns(ctx, q, cfg.Schema, cfg.TenantsTable, cfg.Preset, "tenants_table")
	if err != nil {
		return err
	}
	tname := pgx.Identifier{cfg.Schema, cfg.TenantsTable}.Sanitize()
	for _, c := range []string{"id", "data"} {
		if !slices.Contains(tcols, c) {
			return &LayoutError{Msg: fmt.Sprintf("table %s has no column %s (registry.preset stancl expects id and data)", tname, c)}
		}
	}
	created, deleted := "NULL::timestamptz", "false"
	if slices.Contains(tcols, "created_at") {
		created = "t.created_at::timestamptz"
	}
	if slices.Contains(tcols, "deleted_at") {
		deleted = "t.deleted_at IS NOT NULL"
	}
	data := "t.data::jsonb"
	dbName := "coalesce(" + data + "->>'tenancy_db_name', @reg_db_prefix::text || t.id::text || @reg_db_suffix::text)"
	r.tenantsSQL = "SELECT t.id::text AS id, coalesce(" + data + "->>'slug', t.id::text) AS slug, " + data + "->>'name' AS name, " +
		data + "->>'status' AS status, " + dbName + " AS database_name, " + created + " AS created_at, " + deleted + " AS deleted FROM " + tname + " AS t"
	r.databasesSQL = "SELECT t.id::text AS id, t.id::text AS tenant_id, coalesce(" + data + "->>'slug', t.id::text) AS slug, " + dbName + " AS database_name, " +
		"coalesce(" + data + "->>'tenancy_db_host', nullif(@reg_host::text, '')) AS host, coalesce(" + data + "->>'tenancy_db_port', @reg_port::text) AS port, " +
		data + "->>'tenancy_db_username' AS username, " + data + "->>'tenancy_db_password' AS password, " +
		"coalesce(" + data + "->>'tenancy_db_connection', @reg_driver::text) AS driver, NULL::text AS status, " + created + " AS created_at, NULL::text AS connection_config FROM " + tname + " AS t"
	r.comparable = []string{"slug", "database_name"}
	return nil
}

// resolveSpatie maps spatie/laravel-multitenancy: a tenants table with a
// database column; credentials come from the configuration. A tenant whose
// database column is empty has no tenant database.
func (r *Registry) resolveSpatie(ctx context.Context, q Querier, cfg config.Registry, _ []string) error {
	tcols, err := tableColumns(ctx, q, cfg.Schema, cfg.TenantsTable, cfg.Preset, "tenants_table")
	if err != nil {
		return err
	}
	tname := pgx.Identifier{cfg.Schema, cfg.TenantsTable}.Sanitize()
	for _, c := range []string{"id", "database"} {
		if !slices.Contains(tcols, c) {
			return &LayoutError{Msg: fmt.Sprintf("table %s has no column %s (registry.preset spatie expects id and database)", tname, c)}
		}
	}
	opt := func(col, cast string) string {
		if slices.Contains(tcols, col) {
			return "t." + pgx.Identifier{col}.Sanitize() + "::" + cast
		}
		return "NULL::" + cast
	}
	slug := "coalesce(" + opt("domain", "text") + ", t.id::text)"
	deleted := "false"
	if slices.Contains(tcols, "deleted_at") {
		deleted = "t.deleted_at IS NOT NULL"
	}
	r.tenantsSQL = "SELECT t.id::text AS id, " + slug + " AS slug, " + opt("name", "text") + " AS name, NULL::text AS status, t.database::text AS database_name, " +
		opt("created_at", "timestamptz") + " AS created_at, " + deleted + " AS deleted FROM " + tname + " AS t"
	r.databasesSQL = "SELECT t.id::text AS id, t.id::text AS tenant_id, " + slug + " AS slug, t.database::text AS database_name, nullif(@reg_host::text, '') AS host, @reg_port::text AS port, " +
		"NULL::text AS username, NULL::text AS password, @reg_driver::text AS driver, NULL::text AS status, " + opt("created_at", "timestamptz") + " AS created_at, NULL::text AS connection_config FROM " +
		tname + " AS t WHERE coalesce(t.database, '') <> ''"
	r.comparable = []string{"slug", "database_name"}
	return nil
}

// resolveCustom wraps the configured queries, casting their columns to the
// canonical types. Extra columns both queries return may be compared.
func (r *Registry) resolveCustom(ctx context.Context, q Querier, cfg config.Registry, fields []string) error {
	tq := strings.TrimRight(strings.TrimSpace(cfg.TenantsQuery), ";")
	dq := strings.TrimRight(strings.TrimSpace(cfg.DatabasesQuery), ";")
	tcols, err := queryColumns(ctx, q, tq, r.args, "registry.tenants_query")
	if err != nil {
		return err
	}
	dcols, err := queryColumns(ctx, q, dq, r.args, "registry.databases_query")
	if err != nil {
		return err
	}
	build := func(have []string, canon []string, key string) ([]string, error) {
		var missing []string
		sel := make([]string, 0, len(canon))
		for _, c := range canon {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
				continue
			}
			cast := "text"
			if c == "created_at" {
				cast = "timestamptz"
			}
			sel = append(sel, "q."+pgx.Identifier{c}.Sanitize()+"::"+cast+" AS "+c)
		}
		if len(missing) > 0 {
			return nil, &LayoutError{Msg: fmt.Sprintf("%s does not return the column(s) %s", key, strings.Join(missing, ", "))}
		}
		return sel, nil
	}
	tsel, err := build(tcols, TenantColumns, "registry.tenants_query")
	if err != nil {
		return err
	}
	dsel, err := build(dcols, DatabaseColumns, "registry.databases_query")
	if err != nil {
		return err
	}
	for _, f := range fields {
		if slices.Contains(tcols, f) && slices.Contains(dcols, f) {
			r.comparable = append(r.comparable, f)
			if !slices.Contains(TenantColumns, f) || !slices.Contains(DatabaseColumns, f) {
				id := pgx.Identifier{f}.Sanitize()
				tsel = append(tsel, "q."+id+"::text AS "+id)
				dsel = append(dsel, "q."+id+"::text AS "+id)
			}
		}
	}
	deleted := "false"
	if slices.Contains(tcols, "deleted_at") {
		deleted = "q.deleted_at IS NOT NULL"
	}
	r.tenantsSQL = "SELECT " + strings.Join(tsel, ", ") + ", " + deleted + " AS deleted FROM (" + tq + ") AS q"
	r.databasesSQL = "SELECT " + strings.Join(dsel, ", ") + " FROM (" + dq + ") AS q"
	return nil
}

func queryColumns(ctx context.Context, q Querier, sql string, args pgx.NamedArgs, key string) ([]string, error) {
	rows, err := q.Query(ctx, "SELECT * FROM ("+sql+") AS q LIMIT 0", args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, describeErr(err))
	}
	defer rows.Close()
	var cols []string
	for _, fd := range rows.FieldDescriptions() {
		cols = append(cols, fd.Name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", key, describeErr(err))
	}
	return cols, nil
}
