package pgcluster

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startCluster starts a cluster for one test and stops it in Cleanup.
func startCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	begin := time.Now()
	c, err := Start(t.Context(), opts)
	require.NoError(t, err)
	t.Logf("cluster started in %v", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() { assert.NoError(t, c.Stop()) })
	return c
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, Options{
		Dir:      reachableTempDir(t),
		Settings: map[string]string{"work_mem": "12MB", "cluster_name": `it's \ odd`},
	})
	ctx := t.Context()

	require.DirExists(t, c.Dir())
	assert.Equal(t, "127.0.0.1", c.Host())
	assert.NotZero(t, c.Port())
	assert.Regexp(t, `^[0-9a-f]{24}$`, c.Password())
	assert.FileExists(t, filepath.Join(c.BinDir(), "initdb"))
	assert.Equal(t,
		"postgres://postgres:"+c.Password()+"@127.0.0.1:"+strconv.Itoa(c.Port())+"/app?sslmode=disable",
		c.DSN("app"))
	assert.NoFileExists(t, filepath.Join(c.Dir(), "pwfile"), "password file must not outlive initdb")

	t.Run("query and settings", func(t *testing.T) {
		conn := connect(t, c.DSN("postgres"))
		var one int
		require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
		assert.Equal(t, 1, one)

		for name, want := range map[string]string{
			"work_mem":           "12MB",
			"cluster_name":       `it's \ odd`,
			"fsync":              "off",
			"synchronous_commit": "off",
			"full_page_writes":   "off",
			"max_connections":    "200",
			"shared_buffers":     "128MB",
			"listen_addresses":   "127.0.0.1",
			"server_encoding":    "UTF8",
			"lc_collate":         "C",
		} {
			var got string
			require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got))
			assert.Equal(t, want, got, name)
		}
	})

	t.Run("create and drop database", func(t *testing.T) {
		const name = "Mixed Case-db"
		require.NoError(t, c.CreateDatabase(ctx, name))
		err := c.CreateDatabase(ctx, name)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "42P04", pgErr.Code, "duplicate_database")

		conn := connect(t, c.DSN(name))
		var db string
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
		assert.Equal(t, name, db)

		// The open session must not prevent the drop.
		require.NoError(t, c.DropDatabase(ctx, name))
		require.NoError(t, c.DropDatabase(ctx, name), "dropping a missing database is not an error")

		admin := connect(t, c.DSN("postgres"))
		var exists bool
		require.NoError(t, admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
		assert.False(t, exists)

		assert.Error(t, c.CreateDatabase(ctx, ""))
		assert.Error(t, c.DropDatabase(ctx, ""))
	})

	t.Run("password required over TCP", func(t *testing.T) {
		u, err := url.Parse(c.DSN("postgres"))
		require.NoError(t, err)
		u.User = url.UserPassword("postgres", "wrong-password")
		_, err = pgx.Connect(ctx, u.String())
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "28P01", pgErr.Code, "invalid_password")
	})

	t.Run("stop", func(t *testing.T) {
		dir := c.Dir()
		require.NoError(t, c.Stop())
		assert.NoDirExists(t, dir)
		assert.NoError(t, c.Stop(), "second Stop")
		_, err := net.DialTimeout("tcp", net.JoinHostPort(c.Host(), strconv.Itoa(c.Port())), time.Second)
		assert.Error(t, err, "server still listening after Stop")
	})
}

func TestStopCommand(t *testing.T) {
	t.Parallel()
	c := startCluster(t, Options{})

	out, err := exec.CommandContext(t.Context(), "/bin/sh", "-c", c.StopCommand()).CombinedOutput()
	require.NoError(t, err, "%s\n%s", c.StopCommand(), out)
	assert.NoDirExists(t, c.Dir())
	_, err = pgx.Connect(t.Context(), c.DSN("postgres"))
	assert.Error(t, err, "server still accepting connections")
	assert.NoError(t, c.Stop(), "Stop after the server was stopped by hand")
}

func TestStopAfterServerDied(t *testing.T) {
	t.Parallel()
	c := startCluster(t, Options{})
	pid, ok := c.postmasterPID()
	require.True(t, ok)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	require.NoError(t, c.Stop())
	assert.NoDirExists(t, c.Dir())
}

func TestStartRetriesTakenPort(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = taken.Close() }()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	picks := 0
	c := startCluster(t, Options{pickPort: func() (int, error) {
		picks++
		if picks <= 2 {
			return takenPort, nil
		}
		return freePort()
	}})
	assert.Equal(t, 3, picks)
	assert.NotEqual(t, takenPort, c.Port())
	conn := connect(t, c.DSN("postgres"))
	require.NoError(t, conn.Ping(t.Context()))
}

func TestStartGivesUpOnTakenPort(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = taken.Close() }()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	parent := reachableTempDir(t)
	picks := 0
	_, err = Start(t.Context(), Options{Dir: parent, pickPort: func() (int, error) {
		picks++
		return takenPort, nil
	}})
	require.Error(t, err)
	assert.Equal(t, portAttempts, picks)
	assert.Contains(t, err.Error(), "Address already in use")
	assertEmptyDir(t, parent)
}

func TestStartFailureReportsServerLog(t *testing.T) {
	t.Parallel()
	parent := reachableTempDir(t)
	_, err := Start(t.Context(), Options{Dir: parent, Settings: map[string]string{"shared_buffers": "lots"}})
	var stepErr *StepError
	require.ErrorAs(t, err, &stepErr)
	assert.Equal(t, "pg_ctl start", stepErr.Step)
	assert.Contains(t, err.Error(), `invalid value for parameter "shared_buffers": "lots"`)
	assert.LessOrEqual(t, strings.Count(err.Error(), "\n"), 30, "error should carry only the tail of the output")
	assertEmptyDir(t, parent)
}

func TestStartCanceled(t *testing.T) {
	t.Parallel()
	parent := reachableTempDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Start(ctx, Options{Dir: parent})
	require.Error(t, err)
	assertEmptyDir(t, parent)
}

func TestStartRejectsSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		settings map[string]string
		want     string
	}{
		{"managed port", map[string]string{"port": "5432"}, "settings.port: managed by pgcluster"},
		{"managed, any case", map[string]string{"Listen_Addresses": "*"}, "settings.Listen_Addresses: managed by pgcluster"},
		{"bad name", map[string]string{"work_mem = 1\nfsync": "on"}, "invalid setting name"},
		{"line break in value", map[string]string{"work_mem": "1MB\nfsync = on"}, "settings.work_mem: value contains a line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := reachableTempDir(t)
			_, err := Start(t.Context(), Options{Dir: parent, Settings: tc.settings})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assertEmptyDir(t, parent)
		})
	}
}

func TestBinSearch(t *testing.T) {
	// Not parallel: it writes scripts and executes them, and a fork by a
	// parallel test between the write and the exec holds the file open
	// for writing (ETXTBSY, golang.org/issue/22315).
	root := t.TempDir()
	mkBin := func(dir string, names ...string) string {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for _, name := range names {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
		}
		return dir
	}
	all := []string{"initdb", "pg_ctl", "postgres"}
	full := mkBin(filepath.Join(root, "custom"), all...)
	v9 := mkBin(filepath.Join(root, "lib", "9.6", "bin"), all...)
	v16 := mkBin(filepath.Join(root, "lib", "16", "bin"), all...)
	mkBin(filepath.Join(root, "lib", "17", "bin"), "pg_ctl") // client-only leftovers
	onPath := mkBin(filepath.Join(root, "path"), all...)
	pgConfig := filepath.Join(root, "pg_config")
	require.NoError(t, os.WriteFile(pgConfig, []byte("#!/bin/sh\necho "+full+"\n"), 0o755))
	badPgConfig := filepath.Join(root, "bad_pg_config")
	require.NoError(t, os.WriteFile(badPgConfig, []byte("#!/bin/sh\necho "+root+"\n"), 0o755))
	_ = v9

	path := func(pgConfig, initdb string) func(string) (string, error) {
		return func(name string) (string, error) {
			switch {
			case name == "pg_config" && pgConfig != "":
				return pgConfig, nil
			case name == "initdb" && initdb != "":
				return filepath.Join(initdb, "initdb"), nil
			}
			return "", exec.ErrNotFound
		}
	}
	env := func(dir string) func(string) string {
		return func(key string) string {
			if key == EnvBinDir {
				return dir
			}
			return ""
		}
	}

	for _, tc := range []struct {
		name    string
		search  binSearch
		want    string
		wantErr []string
	}{
		{
			name:   "env override wins",
			search: binSearch{getenv: env(onPath), lookPath: path(pgConfig, ""), glob: filepath.Join(root, "lib", "*", "bin")},
			want:   onPath,
		},
		{
			name:    "env override without binaries is an error, no fallback",
			search:  binSearch{getenv: env(root), lookPath: path(pgConfig, ""), glob: filepath.Join(root, "lib", "*", "bin")},
			wantErr: []string{EnvBinDir + "=" + root, "initdb, pg_ctl, postgres"},
		},
		{
			name:   "pg_config",
			search: binSearch{getenv: env(""), lookPath: path(pgConfig, onPath), glob: filepath.Join(root, "lib", "*", "bin")},
			want:   full,
		},
		{
			name:   "highest complete version",
			search: binSearch{getenv: env(""), lookPath: path(badPgConfig, onPath), glob: filepath.Join(root, "lib", "*", "bin")},
			want:   v16,
		},
		{
			name:   "initdb on PATH",
			search: binSearch{getenv: env(""), lookPath: path("", onPath), glob: filepath.Join(root, "nowhere", "*", "bin")},
			want:   onPath,
		},
		{
			name:   "nothing found",
			search: binSearch{getenv: env(""), lookPath: path(badPgConfig, ""), glob: filepath.Join(root, "nowhere", "*", "bin")},
			wantErr: []string{
				"from " + badPgConfig + " --bindir",
				filepath.Join(root, "nowhere", "*", "bin") + " (no such directory)",
				"initdb on PATH (not found)",
				"set " + EnvBinDir,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.search.find(t.Context())
			if tc.wantErr != nil {
				require.ErrorIs(t, err, ErrNoBinaries)
				for _, want := range tc.wantErr {
					assert.Contains(t, err.Error(), want)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/tmp/tenantdrift-pg-1/data": "/tmp/tenantdrift-pg-1/data",
		"/tmp/a b":                   "'/tmp/a b'",
		"it's":                       `'it'\''s'`,
		"":                           "''",
	} {
		assert.Equal(t, want, shellQuote(in), in)
	}
}

// reachableTempDir returns a temporary directory that the postgres OS user
// can traverse, unlike t.TempDir, whose directories are private to the
// (possibly root) test process.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, os.RemoveAll(dir)) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "leftovers in %s", dir)
}

var _ error = (*StepError)(nil)

func TestStepErrorUnwraps(t *testing.T) {
	t.Parallel()
	inner := errors.New("exit status 1")
	err := &StepError{Step: "initdb", Output: "    boom", Err: inner}
	assert.ErrorIs(t, err, inner)
	assert.Equal(t, "initdb: exit status 1\n    boom", err.Error())
}
