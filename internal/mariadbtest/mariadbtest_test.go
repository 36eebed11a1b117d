package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connect opens a pool to the server as user, failing t if it cannot ping.
func connect(t *testing.T, s *Server, user, password, database string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	h, p := s.Addr()
	cfg.Addr = net.JoinHostPort(h, strconv.Itoa(p))
	cfg.User = user
	cfg.Passwd = password
	cfg.DBName = database
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(t.Context()))
	return db
}

func TestStart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	assert.Same(t, s, Start(t), "one server per test binary")
	h, p := s.Addr()
	assert.Equal(t, "127.0.0.1", h)
	assert.NotZero(t, p)
	assert.Len(t, s.RootPassword(), 24)

	db := connect(t, s, "root", s.RootPassword(), "")
	var version string
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT VERSION()").Scan(&version))
	assert.Contains(t, version, "MariaDB")

	// Every root account has the password: none is left open.
	var open int
	require.NoError(t, db.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND authentication_string = ''").Scan(&open))
	assert.Zero(t, open)
}

func TestCreateDatabaseAndUser(t *testing.T) {
	t.Parallel()
	s := Start(t)
	const name = "harness_tenant"
	password := `it's "quoted" \ and ?`
	t.Run("inner", func(t *testing.T) {
		s.CreateDatabase(t, name)
		s.CreateUser(t, name, password)
		s.Exec(t, "GRANT ALL ON "+QuoteIdent(name)+".* TO ?@'%'", name)

		db := connect(t, s, name, password, name)
		var current string
		require.NoError(t, db.QueryRowContext(t.Context(), "SELECT DATABASE()").Scan(&current))
		assert.Equal(t, name, current)
		require.NoError(t, db.Close())
	})

	// Both are gone once the test that made them has ended.
	db := connect(t, s, "root", s.RootPassword(), "")
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n))
	assert.Zero(t, n, "database outlived its test")
	require.NoError(t, db.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM mysql.user WHERE User = ?", name).Scan(&n))
	assert.Zero(t, n, "user outlived its test")
}

func TestQuoteIdent(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "`plain`", QuoteIdent("plain"))
	assert.Equal(t, "`a``b`", QuoteIdent("a`b"))
}

// A server of its own, stopped by stop, leaves no process or directory.
func TestStop(t *testing.T) {
	t.Parallel()
	s := startOwn(t)
	require.NoError(t, s.stop())
	assertGone(t, s)
	require.NoError(t, s.stop(), "stop is idempotent")
}

// When the process that started a server dies without stopping it, its
// watchdog stops the server and removes the directory. Closing the pipe is
// what the kernel does when the process dies.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	s := startOwn(t)
	require.NoError(t, s.watchdog.Close())
	require.Eventually(t, func() bool {
		_, err := os.Stat(s.dir)
		return errors.Is(err, os.ErrNotExist)
	}, 40*time.Second, 50*time.Millisecond, "watchdog did not remove %s", s.dir)
	assertGone(t, s)
}

func startOwn(t *testing.T) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	s, err := start(ctx, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.stop() })
	return s
}

func assertGone(t *testing.T, s *Server) {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("mariadbd (pid %d) still running", s.proc.Pid)
	}
	_, err := os.Stat(s.dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "server directory left behind")
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }

	_, err := findBinaries(notFound, []string{t.TempDir()})
	require.ErrorIs(t, err, ErrNoBinaries)
	assert.Contains(t, err.Error(), "install mariadb-server (.ci/run does)")

	onPath := func(name string) (string, error) {
		if name == "mysqld" || name == "mariadb-install-db" {
			return "/opt/bin/" + name, nil
		}
		return "", exec.ErrNotFound
	}
	got, err := findBinaries(onPath, nil)
	require.NoError(t, err)
	assert.Equal(t, binaries{server: "/opt/bin/mysqld", installDB: "/opt/bin/mariadb-install-db"}, got)

	dir := t.TempDir()
	for _, name := range []string{"mariadbd", "mysql_install_db"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mariadb-install-db"), nil, 0o644)) // not executable
	got, err = findBinaries(notFound, []string{t.TempDir(), dir})
	require.NoError(t, err)
	assert.Equal(t, binaries{server: filepath.Join(dir, "mariadbd"), installDB: filepath.Join(dir, "mysql_install_db")}, got)
}
