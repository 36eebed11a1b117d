package state_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// TestSchemaVersion: reading the version changes nothing, before and
// after the first Open.
func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(t.Context(), pgtest.NewDB(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	cur, known, err := state.SchemaVersion(t.Context(), pool, "")
	require.NoError(t, err)
	assert.Equal(t, 0, cur, "no schema yet")
	assert.Positive(t, known)
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tenantdrift')`).Scan(&exists))
	assert.False(t, exists, "SchemaVersion created nothing")

	open(t, pool)
	cur, known2, err := state.SchemaVersion(t.Context(), pool, "")
	require.NoError(t, err)
	assert.Equal(t, known, cur)
	assert.Equal(t, known, known2)

	_, _, err = state.SchemaVersion(t.Context(), pool, "Bad-Name")
	assert.ErrorContains(t, err, "invalid state schema name")
}
