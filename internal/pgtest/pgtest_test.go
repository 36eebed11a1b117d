package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDB(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"first", "second", "third"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dsn := NewDB(t)
			conn, err := pgx.Connect(t.Context(), dsn)
			require.NoError(t, err)
			defer conn.Close(context.Background())

			var db string
			require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
			assert.True(t, strings.HasPrefix(db, "t_testnewdb_"+name+"_"), db)

			// Each test has the database to itself.
			_, err = conn.Exec(t.Context(), "CREATE TABLE tenants (slug text PRIMARY KEY)")
			require.NoError(t, err)
		})
	}
}

func TestNewDBDropsDatabaseAtCleanup(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := NewPool(t)
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
	})
	require.NotEmpty(t, name)

	conn, err := pgx.Connect(t.Context(), Server(t).DSN("postgres"))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var exists bool
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	assert.False(t, exists, "database %s outlived its test", name)
}

func TestServer(t *testing.T) {
	t.Parallel()
	s := Server(t)
	assert.NotEmpty(t, s.Host)
	assert.NotZero(t, s.Port)
	if os.Getenv(EnvDSN) == "" {
		require.NotNil(t, s.Cluster)
		assert.Equal(t, s.Cluster.Port(), s.Port)
	}
	conn, err := pgx.Connect(t.Context(), s.DSN("postgres"))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	require.NoError(t, conn.Ping(t.Context()))
}

func TestDBName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		test, wantBase string
	}{
		{"TestFoo", "testfoo"},
		{"TestFoo/sub_case#01", "testfoo_sub_case_01"},
		{"TestÜnïcode/ß", "test_n_code"},
		{"Test/" + strings.Repeat("x", 100), "test_" + strings.Repeat("x", 47)},
		{"Test/" + strings.Repeat("x", 46) + "/yy", "test_" + strings.Repeat("x", 46)},
	} {
		t.Run(tc.test, func(t *testing.T) {
			got, err := dbName(tc.test)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(got), maxIdentifier)
			assert.Regexp(t, `^t_`+tc.wantBase+`_[0-9a-f]{8}$`, got)
		})
	}
	a, _ := dbName("TestSame")
	b, _ := dbName("TestSame")
	assert.NotEqual(t, a, b)
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u:p@db.example:5433/admin?sslmode=disable", "postgres://u:p@db.example:5433/t_x?sslmode=disable"},
		{"postgresql://u@db.example", "postgresql://u@db.example/t_x"},
		{"host=db.example user=u dbname=admin", "host=db.example user=u dbname=admin dbname='t_x'"},
	} {
		assert.Equal(t, tc.want, withDatabase(tc.dsn, "t_x"), tc.dsn)
	}
}
