package checks_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/demo"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// now is the fixed clock of these tests; rows are placed relative to it.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// landlord is a fresh database with the Laravel schema of the incident.
type landlord struct {
	t    *testing.T
	pool *pgxpool.Pool
}

func newLandlord(t *testing.T) *landlord {
	t.Helper()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(context.Background(), demo.Schema)
	require.NoError(t, err)
	return &landlord{t: t, pool: pool}
}

func (l *landlord) exec(sql string, args ...any) {
	l.t.Helper()
	_, err := l.pool.Exec(context.Background(), sql, args...)
	require.NoError(l.t, err)
}

// tenant inserts a tenant created age before now; dbName may be nil.
func (l *landlord) tenant(id, slug string, dbName any, age time.Duration) {
	l.t.Helper()
	l.exec(`INSERT INTO tenants (id, name, email, slug, status, database_name, created_at, updated_at)
		VALUES ($1, $2, $3, $2, 'active', $4, $5, $5)`, id, slug, id+"@example.test", dbName, now.Add(-age))
}

// database inserts a tenant_databases row.
func (l *landlord) database(id, tenantID, slug, dbName, status string, age time.Duration) {
	l.t.Helper()
	l.exec(`INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, database_driver, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'u', 'p', '127.0.0.1', 5432, 'pgsql', $5, $6, $6)`, id, tenantID, dbName, slug, status, now.Add(-age))
}

// run resolves the registry under cfg and runs the named check.
func (l *landlord) run(cfg *config.Config, name string) ([]check.Finding, error) {
	l.t.Helper()
	ctx := context.Background()
	insts, err := checks.Build(cfg, []string{name})
	require.NoError(l.t, err)
	reg, err := tenant.Resolve(ctx, l.pool, cfg.Registry, cfg.Checks.FieldMismatch.Fields)
	require.NoError(l.t, err)
	res := check.RunOne(ctx, insts[0], check.Env{DB: l.pool, Registry: reg, Now: now}, slog.New(slog.DiscardHandler))
	return res.Findings, res.Err
}

// mustRun is run for a check that must not error.
func (l *landlord) mustRun(cfg *config.Config, name string) []check.Finding {
	l.t.Helper()
	fs, err := l.run(cfg, name)
	require.NoError(l.t, err)
	return fs
}

// uuid makes a readable fixed uuid: uuid(1) = 00000000-0000-4000-8000-000000000001.
func uuid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

const old = 48 * time.Hour
