// Package pgtest gives the tests of a package a real PostgreSQL server and
// each test its own database. It is for tests only: production code must not
// import it.
//
// A package that needs PostgreSQL calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Main uses the server named by $TENANTDRIFT_TEST_DSN if that is set, and
// otherwise starts a throwaway cluster (see package pgcluster) for the test
// binary. Tests then call NewDB or NewPool for a fresh database that is
// dropped when the test ends. Tests needing a server fail, never skip, when
// there is none.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantdrift/tenantdrift/internal/pgcluster"
)

// EnvDSN names the environment variable holding the connection string of
// an existing server for the tests to use instead of starting one. It must
// name a database on that server, as a user that may CREATE DATABASE; the
// server must be PostgreSQL 13 or later.
const EnvDSN = "TENANTDRIFT_TEST_DSN"

// setupTimeout bounds starting or reaching the server in Main.
const setupTimeout = 2 * time.Minute

// ServerInfo describes the server the tests run against.
type ServerInfo struct {
	Host string
	Port int
	// Cluster is the cluster Main started, or nil when the tests use the
	// server named by $TENANTDRIFT_TEST_DSN.
	Cluster *pgcluster.Cluster

	dsn func(database string) string
}

// DSN returns a connection string for the named database on the server, as
// the superuser of a started cluster or as the user of $TENANTDRIFT_TEST_DSN.
func (s ServerInfo) DSN(database string) string { return s.dsn(database) }

// server is what Main set up. Main writes it before any test runs; tests
// only read it. Package state is unavoidable here: testing.M offers no other
// way to hand TestMain's resources to the tests.
var server *state

type state struct {
	info  ServerInfo
	admin *pgxpool.Pool // connected to the database tests create others from
}

// Main runs the tests of m against a PostgreSQL server and exits the process
// with their result; call it from TestMain. When the server cannot be
// started or reached, Main prints one line saying why to stderr and exits 1.
//
// A started cluster is stopped and removed when the tests end, and also if
// the test binary dies (panic, -timeout, signal): a watchdog process removes
// it once the binary has gone.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	s, cleanup, err := setup(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: "+oneLine(err.Error()))
		return 1
	}
	server = s
	code := m.Run()
	if err := cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: "+oneLine(err.Error()))
		if code == 0 {
			code = 1
		}
	}
	return code
}

func setup(ctx context.Context) (*state, func() error, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return useServer(ctx, dsn)
	}
	return startCluster(ctx)
}

// useServer connects to the existing server named by dsn.
func useServer(ctx context.Context, dsn string) (*state, func() error, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the connection string, password and all.
		return nil, nil, fmt.Errorf("%s is not a valid PostgreSQL connection string", EnvDSN)
	}
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", EnvDSN, err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("connect to %s: %w", EnvDSN, err)
	}
	s := &state{
		info: ServerInfo{
			Host: cfg.ConnConfig.Host,
			Port: int(cfg.ConnConfig.Port),
			dsn:  func(database string) string { return withDatabase(dsn, database) },
		},
		admin: admin,
	}
	return s, func() error { admin.Close(); return nil }, nil
}

// withDatabase returns dsn, a URL or keyword/value connection string,
// changed to connect to database.
func withDatabase(dsn, database string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + database
			u.RawPath = ""
			return u.String()
		}
	}
	// In keyword/value form the last dbname wins.
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(database)
	return dsn + " dbname='" + quoted + "'"
}

// startCluster starts a throwaway cluster for this test binary.
func startCluster(ctx context.Context) (*state, func() error, error) {
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("start PostgreSQL for the tests (or set %s to use a running server): %w", EnvDSN, err)
	}
	watchdog, watchErr := startWatchdog(c)
	admin, err := pgxpool.New(ctx, c.DSN("postgres"))
	if err == nil {
		err = admin.Ping(ctx)
		if err != nil {
			admin.Close()
		}
	}
	if err != nil {
		err = errors.Join(fmt.Errorf("connect to test cluster: %w", err), c.Stop())
		if watchdog != nil {
			_ = watchdog.Close()
		}
		return nil, nil, err
	}
	s := &state{
		info: ServerInfo{
			Host:    c.Host(),
			Port:    c.Port(),
			Cluster: c,
			dsn:     c.DSN,
		},
		admin: admin,
	}
	cleanup := func() error {
		admin.Close()
		err := c.Stop()
		if watchdog != nil {
			// Closing its stdin tells the watchdog we are done; it finds the
			// cluster gone and exits.
			_ = watchdog.Close()
		}
		return err
	}
	if watchErr != nil {
		// Not fatal: the cluster is still stopped on a normal exit.
		fmt.Fprintln(os.Stderr, "pgtest: warning: "+oneLine(watchErr.Error()))
	}
	return s, cleanup, nil
}

// startWatchdog starts a shell that waits for this process to exit (its
// stdin, a pipe only we hold, reaches EOF) and then stops and removes the
// cluster if it is still there. That covers the exits Main cannot clean up
// after: a panicking test, go test -timeout, SIGINT, SIGKILL. The returned
// closer is the pipe's write end.
func startWatchdog(c *pgcluster.Cluster) (interface{ Close() error }, error) {
	script := "cat >/dev/null; if [ -d " + shellQuote(c.Dir()) + " ]; then " + c.StopCommand() + "; fi"
	cmd := exec.Command("/bin/sh", "-c", script)
	// Its own process group: a Ctrl-C aimed at go test must not kill it
	// before it has done its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start cleanup watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start cleanup watchdog: %w", err)
	}
	// Reap it in the background; its exit status does not matter.
	go func() { _ = cmd.Wait() }()
	return stdin, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Server returns the server the tests run against. It fails t if Main did
// not set one up.
func Server(t testing.TB) ServerInfo {
	t.Helper()
	return mustState(t).info
}

func mustState(t testing.TB) *state {
	t.Helper()
	if server == nil {
		t.Fatal("pgtest: no PostgreSQL server; call pgtest.Main(m) from this package's TestMain")
	}
	return server
}

// NewDB creates an empty database for t, named after the test with a random
// suffix, and returns a connection string for it. The database is dropped,
// with any remaining sessions, when t ends. NewDB fails t if the database
// cannot be created. It is safe to call from parallel tests.
func NewDB(t testing.TB) string {
	t.Helper()
	s := mustState(t)
	name, err := dbName(t.Name())
	if err != nil {
		t.Fatalf("pgtest: name database: %v", err)
	}
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.info.DSN(name)
}

// NewPool creates a database with NewDB and returns a pool connected to it,
// closed when t ends (before the database is dropped).
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := NewDB(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// maxIdentifier is PostgreSQL's identifier length limit in bytes.
const maxIdentifier = 63

// dbName turns a test name into a database name unique to this call:
// "t_" + the name lowercased, runs of other than [a-z0-9] turned into "_",
// cut to fit + "_" + 8 random hex digits.
func dbName(testName string) (string, error) {
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", err
	}
	const prefix = "t_"
	room := maxIdentifier - len(prefix) - 1 - 2*len(suffix)

	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= room {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	base := strings.TrimSuffix(b.String(), "_")
	return prefix + base + "_" + hex.EncodeToString(suffix), nil
}

// oneLine folds a multi-line error message into a single line.
func oneLine(s string) string {
	var parts []string
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, " | ")
}
