package state

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLockKey is the pg_advisory_xact_lock key that serialises
// migrations of every tenantdrift state schema in a database ("tenantdr").
const migrateLockKey int64 = 0x74656e616e746472

// migration is one embedded migration file.
type migration struct {
	version int
	name    string // file name, for errors
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations returns the migrations in fsys's migrations directory in
// version order. Versions must run 1, 2, 3, … without gaps or repeats.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("read migrations: %s: name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1]) // four digits always parse
		body, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("read migrations: %s: want version %d", m.name, i+1)
		}
		if strings.TrimSpace(m.sql) == "" {
			return nil, fmt.Errorf("read migrations: %s is empty", m.name)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("read migrations: none embedded")
	}
	return ms, nil
}

// SchemaTooNewError is returned when the state schema was migrated by a
// newer tenantdrift than this one: this binary does not know the schema and
// will not run against it.
type SchemaTooNewError struct {
	Schema  string
	Version int // recorded in the schema
	Known   int // the newest this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("version %d is newer than this tenantdrift knows (%d); upgrade tenantdrift", e.Version, e.Known)
}

// migrate brings schema up to the newest embedded migration in one
// transaction, under an advisory lock so that processes starting together
// take turns; the ones that wait find the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migration) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer rollback(ctx, tx)

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}

	// CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database, which
	// a role that was handed an existing schema may lack: look first.
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("look up schema %s: %w", schema, err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	versions := pgx.Identifier{schema, "schema_migrations"}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+versions+
		" (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return fmt.Errorf("create %s: %w", versions, err)
	}

	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+versions).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	known := ms[len(ms)-1].version
	if current > known {
		return &SchemaTooNewError{Schema: schema, Version: current, Known: known}
	}
	if current == known {
		return nil // the deferred rollback releases the lock
	}

	// Migrations name their tables unqualified; SET LOCAL ends with the
	// transaction, so the pooled connection is left as it was.
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', $1, true)", pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("set search_path: %w", err)
	}
	for _, m := range ms[current:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+versions+" (version) VALUES ($1)", m.version); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// rollback ends tx if it is still open. After Commit it does nothing; with
// a cancelled ctx pgx closes the connection, which aborts the transaction
// on the server just the same.
func rollback(ctx context.Context, tx pgx.Tx) {
	_ = tx.Rollback(ctx) // ErrTxClosed after Commit; otherwise nothing to add
}

// SchemaVersion reports, without changing anything, the version the state
// schema (DefaultSchema when empty) is migrated to (0 when it does not
// exist yet: the first Open creates it) and the newest version this binary
// knows. Errors are an invalid schema name or the query's.
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool, schema string) (current, known int, err error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if err := validSchema(schema); err != nil {
		return 0, 0, err
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return 0, 0, err
	}
	known = ms[len(ms)-1].version
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL",
		pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&exists); err != nil {
		return 0, known, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, known, nil
	}
	if err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+
		pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&current); err != nil {
		return 0, known, fmt.Errorf("read schema version: %w", err)
	}
	return current, known, nil
}
