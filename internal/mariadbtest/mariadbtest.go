// Package mariadbtest gives tests a real MariaDB server, started from the
// MariaDB binaries installed on this machine (package mariadb-server). It is
// for tests only: production code must not import it.
//
// A test calls Start for the server; the first call in a test binary starts
// it, later calls return the same one. The server lives in its own temporary
// directory, listens on 127.0.0.1 on a free port, has a random root
// password, and runs with durability off. It is stopped and its directory
// removed when the test binary exits, however it exits (panic, go test
// -timeout, SIGINT, SIGKILL): a watchdog process does that once the binary
// has gone. A TestMain may call Stop after m.Run to do it sooner; nothing
// else is needed.
//
// When this process runs as root, the server runs as the "mysql" OS user.
// Tests needing MariaDB fail, never skip, when the binaries are missing.
package mariadbtest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// setupTimeout bounds starting the server.
const setupTimeout = 2 * time.Minute

// shared is the test binary's server, started by the first Start. Package
// state is unavoidable here: the server is shared by tests that know
// nothing of each other.
var shared struct {
	mu      sync.Mutex
	started bool
	server  *Server
	err     error
}

// Start returns the test binary's MariaDB server, starting it on the first
// call. It fails t with one line saying why when the server cannot be
// started — for example "MariaDB server binaries not found ...; install
// mariadb-server (.ci/run does)" — and fails every later caller the same
// way without trying again. It is safe to call from parallel tests.
func Start(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		begin := time.Now()
		shared.server, shared.err = start(ctx, "")
		cancel()
		if shared.err == nil {
			t.Logf("mariadbtest: MariaDB started on port %d in %s", shared.server.port, time.Since(begin).Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		t.Fatal("mariadbtest: " + oneLine(shared.err.Error()))
	}
	if shared.server.isStopped() {
		t.Fatal("mariadbtest: the server was stopped by Stop; call Stop only after m.Run")
	}
	return shared.server
}

// Stop stops the server Start started, if any, and removes its directory.
// It is optional (the watchdog does it when the test binary exits) and meant
// for TestMain, after m.Run. The error reports a server that could not be
// stopped or a directory that could not be removed.
func Stop() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.server == nil {
		return nil
	}
	return shared.server.stop()
}

func (s *Server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Addr returns the address the server listens on: 127.0.0.1 and its port.
func (s *Server) Addr() (host string, port int) { return listenHost, s.port }

// RootPassword returns the password of the server's root accounts.
func (s *Server) RootPassword() string { return s.password }

// Dir returns the server's temporary directory. It holds the data
// directory (data/), the server log (error.log) and the socket.
func (s *Server) Dir() string { return s.dir }

// Exec runs one statement as root, failing t if it fails. Each ? in query
// is replaced by the matching arg, escaped as a string literal by the
// driver, so that it may stand where the server takes no placeholder:
//
//	s.Exec(t, "CREATE USER ?@'%' IDENTIFIED BY ?", name, password)
//
// Quote identifiers with QuoteIdent.
func (s *Server) Exec(t testing.TB, query string, args ...any) {
	t.Helper()
	// t.Context is already canceled when cleanups run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, query, args...); err != nil {
		t.Fatalf("mariadbtest: %s: %v", query, err)
	}
}

// CreateDatabase creates the named database and drops it when t ends.
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	s.Exec(t, "CREATE DATABASE "+QuoteIdent(name))
	t.Cleanup(func() { s.Exec(t, "DROP DATABASE IF EXISTS "+QuoteIdent(name)) })
}

// CreateUser creates user name@'%' (any host) with password and no
// privileges, and drops it when t ends. The password is used verbatim.
// Connections the user still has keep running after the drop.
func (s *Server) CreateUser(t testing.TB, name, password string) {
	t.Helper()
	s.Exec(t, "CREATE USER ?@'%' IDENTIFIED BY ?", name, password)
	t.Cleanup(func() { s.Exec(t, "DROP USER IF EXISTS ?@'%'", name) })
}

// QuoteIdent quotes name as a MariaDB identifier.
func QuoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
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
