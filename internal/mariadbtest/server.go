package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tenantdrift/tenantdrift/internal/serverproc"
)

const (
	// listenHost is the only address a server listens on.
	listenHost = "127.0.0.1"
	// readyTimeout bounds the wait for a started server to accept
	// connections.
	readyTimeout = 60 * time.Second
	// portAttempts bounds how often start tries a new port when the one it
	// picked was taken before the server could bind it.
	portAttempts = 1 + 3
	// maxSocketPath is the longest Unix socket path the portable sun_path
	// field holds (104 bytes on macOS, 108 on Linux, including the NUL).
	maxSocketPath = 103
	// outputLines is how many trailing lines of a failed step's output or
	// of error.log an error carries.
	outputLines = 20
)

// ErrNoBinaries is wrapped by the error start returns when it cannot find
// the MariaDB server binaries.
var ErrNoBinaries = errors.New("MariaDB server binaries not found")

// binDirs are searched, after PATH, for the server binaries.
func binDirs() []string { return []string{"/usr/sbin", "/usr/bin"} }

// binaries are the programs a server needs.
type binaries struct {
	server    string // mariadbd or mysqld
	installDB string // mariadb-install-db or mysql_install_db
}

// findBinaries looks for each program under its names in turn, on PATH
// (through lookPath) and then in dirs. The error wraps ErrNoBinaries, says
// what was searched and how to install the binaries.
func findBinaries(lookPath func(string) (string, error), dirs []string) (binaries, error) {
	find := func(names ...string) string {
		for _, name := range names {
			if p, err := lookPath(name); err == nil {
				return p
			}
			for _, dir := range dirs {
				p := filepath.Join(dir, name)
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
					return p
				}
			}
		}
		return ""
	}
	b := binaries{
		server:    find("mariadbd", "mysqld"),
		installDB: find("mariadb-install-db", "mysql_install_db"),
	}
	if b.server == "" || b.installDB == "" {
		return binaries{}, fmt.Errorf("%w (mariadbd or mysqld, and mariadb-install-db or mysql_install_db, on PATH or in %s); install mariadb-server (.ci/run does)",
			ErrNoBinaries, strings.Join(dirs, ", "))
	}
	return b, nil
}

// Server is a running throwaway MariaDB server, listening on 127.0.0.1 with
// a random root password. Its methods are safe for concurrent use.
type Server struct {
	dir      string
	port     int
	password string
	bins     binaries
	cred     *syscall.Credential

	proc   *os.Process
	exited chan struct{} // closed once the server process has exited
	admin  *sql.DB       // root over TCP
	// watchdog is the write end of the watchdog's stdin; nil if none.
	watchdog io.WriteCloser

	mu      sync.Mutex
	stopped bool
	stopErr error
}

// start creates a temporary directory under parent (empty: os.TempDir()),
// initialises a data directory in it, starts mariadbd on a free port and
// sets the root password. On error nothing is left running and the
// directory is removed.
func start(ctx context.Context, parent string) (*Server, error) {
	bins, err := findBinaries(exec.LookPath, binDirs())
	if err != nil {
		return nil, err
	}
	if err := checkMariaDB(ctx, bins.server); err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	password, err := randomHex(12)
	if err != nil {
		return nil, fmt.Errorf("generate root password: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "tenantdrift-mariadb-")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	s := &Server{dir: dir, password: password, bins: bins, cred: cred, exited: make(chan struct{})}
	// Started first, so that the directory goes even if this process dies
	// during the steps below.
	if s.watchdog, err = startWatchdog(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		if stopErr := s.stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("clean up after failed start: %w", stopErr))
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	if n := len(s.socket()); n > maxSocketPath {
		return fmt.Errorf("server directory %s is too long for a Unix socket path (%d > %d bytes); set TMPDIR to a shorter directory", s.dir, n, maxSocketPath)
	}
	if s.cred != nil {
		if err := checkSearchable(s.dir, s.cred); err != nil {
			return err
		}
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("hand server directory to OS user mysql: %w", err)
		}
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return fmt.Errorf("create server tmpdir: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(s.tmpDir(), int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("hand server tmpdir to OS user mysql: %w", err)
		}
	}
	if err := s.installDB(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("pick a free port: %w", err)
		}
		err = s.startServer(ctx, port)
		if err == nil {
			break
		}
		if attempt == portAttempts || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
	}
	return s.setRootPassword(ctx)
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) tmpDir() string  { return filepath.Join(s.dir, "tmp") }
func (s *Server) socket() string  { return filepath.Join(s.dir, "mysqld.sock") }
func (s *Server) logFile() string { return filepath.Join(s.dir, "error.log") }

// serverOptions are given to both mariadb-install-db (which passes them on
// to its bootstrap server) and mariadbd: a small throwaway server.
func (s *Server) serverOptions() []string {
	return []string{
		"--datadir=" + s.dataDir(),
		// Its own: servers sharing /tmp can clash over temporary file names.
		"--tmpdir=" + s.tmpDir(),
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=8M",
		// Durability off: nothing here outlives the tests.
		"--innodb-flush-log-at-trx-commit=0",
		// Synchronous I/O: no io_uring or libaio, which containers may
		// forbid and whose system-wide limits parallel servers share.
		"--innodb-use-native-aio=0",
	}
}

func (s *Server) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.dir
	cmd.Env = commandEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (s *Server) installDB(ctx context.Context) error {
	args := append([]string{
		"--no-defaults", // must come first
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
	}, s.serverOptions()...)
	out, err := s.command(ctx, s.bins.installDB, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(s.bins.installDB), err, errorLines(string(out)))
	}
	return nil
}

// startServer starts mariadbd on port and waits until root can connect
// over the socket. The server outlives ctx: only Stop ends it.
func (s *Server) startServer(ctx context.Context, port int) error {
	args := append([]string{
		"--no-defaults", // must come first
		"--port=" + strconv.Itoa(port),
		"--bind-address=" + listenHost,
		"--socket=" + s.socket(),
		"--pid-file=" + filepath.Join(s.dir, "mysqld.pid"),
		"--log-error=" + s.logFile(),
		"--skip-log-bin",
	}, s.serverOptions()...)
	// Each attempt gets a fresh log, so an error shows its own messages.
	if err := os.Remove(s.logFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old error.log: %w", err)
	}
	cmd := s.command(context.WithoutCancel(ctx), s.bins.server, args...)
	// Its own process group: a Ctrl-C aimed at go test leaves it to Stop
	// or the watchdog, which shut it down properly.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bins.server, err)
	}
	s.proc = cmd.Process
	exited := make(chan struct{})
	s.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	// The watchdog learns every server PID, to stop it if we cannot.
	if _, err := fmt.Fprintln(s.watchdog, cmd.Process.Pid); err != nil {
		return fmt.Errorf("tell the cleanup watchdog the server's pid: %w", err)
	}

	db, err := s.open("unix", s.socket(), "")
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited during startup\n%s", filepath.Base(s.bins.server), s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections within %s: %w\n%s", filepath.Base(s.bins.server), readyTimeout, ctx.Err(), s.logTail())
		case <-tick.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.PingContext(pctx)
		pcancel()
		if err == nil {
			s.port = port
			return nil
		}
	}
}

// setRootPassword leaves two root accounts, root@localhost (the socket)
// and root@127.0.0.1, both with the server's password, connecting over the
// socket; then it opens the admin pool over TCP. mariadb-install-db also
// makes root@<hostname>, which --skip-name-resolve ignores (so ALTER USER
// cannot reach it), and root@::1, where the server does not listen: they go
// straight from the grant table.
func (s *Server) setRootPassword(ctx context.Context) error {
	db, err := s.open("unix", s.socket(), "")
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	for _, stmt := range []string{
		"DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1')",
		"DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1')",
		"FLUSH PRIVILEGES",
		"ALTER USER 'root'@'localhost' IDENTIFIED BY ?, 'root'@'127.0.0.1' IDENTIFIED BY ?",
	} {
		var args []any
		if strings.Contains(stmt, "?") {
			args = []any{s.password, s.password}
		}
		if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("set root password: %w", err)
		}
	}
	if s.admin, err = s.open("tcp", net.JoinHostPort(listenHost, strconv.Itoa(s.port)), s.password); err != nil {
		return err
	}
	if err := s.admin.PingContext(ctx); err != nil {
		return fmt.Errorf("connect as root over TCP: %w", err)
	}
	return nil
}

// open returns a pool connecting as root. Parameters are interpolated by
// the driver, which escapes them for the server's SQL mode, so that
// statements such as CREATE USER can take them.
func (s *Server) open(network, addr, password string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.Net = network
	cfg.Addr = addr
	cfg.User = "root"
	cfg.Passwd = password
	cfg.InterpolateParams = true
	cfg.Timeout = 5 * time.Second
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure root connection: %w", err)
	}
	return sql.OpenDB(c), nil
}

// stop shuts the server down (SIGTERM, then SIGKILL after 30 s), closes the
// admin pool, removes the directory and releases the watchdog. It is
// idempotent: later calls return the first call's result.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	var errs []error
	if s.admin != nil {
		_ = s.admin.Close()
	}
	if s.proc != nil {
		if err := s.terminate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		// A server still running would recreate files; leave the directory
		// to the watchdog then.
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove server directory: %w", err))
		}
	}
	if s.watchdog != nil {
		// EOF tells the watchdog we are done; it finds the directory gone
		// and exits.
		_ = s.watchdog.Close()
	}
	s.stopErr = errors.Join(errs...)
	return s.stopErr
}

func (s *Server) terminate() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop mariadbd (pid %d): %w", s.proc.Pid, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
	}
	if err := s.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill mariadbd (pid %d): %w", s.proc.Pid, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("mariadbd (pid %d) still running after SIGKILL", s.proc.Pid)
	}
}

// startWatchdog starts a shell that reads server PIDs, one a line, from its
// stdin until EOF — when this process closes the pipe or dies (panic, go
// test -timeout, SIGINT, SIGKILL) — and then, if dir is still there, stops
// those servers and removes dir. It runs in its own process group, so that
// a Ctrl-C aimed at go test does not kill it before it has done its job.
// The returned writer is the pipe's write end.
func startWatchdog(dir string) (io.WriteCloser, error) {
	d := shellQuote(dir)
	script := `pids=; while read -r p; do pids="$pids $p"; done
if [ -d ` + d + ` ]; then
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	i=0
	for p in $pids; do
		while kill -0 "$p" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf ` + d + `
fi`
	cmd := exec.Command("/bin/sh", "-c", script)
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

// checkMariaDB makes sure server is MariaDB's: MySQL's mysqld is
// initialised differently and is not supported.
func checkMariaDB(ctx context.Context, server string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, server, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w", server, err)
	}
	if !strings.Contains(string(out), "MariaDB") {
		return fmt.Errorf("%s is not MariaDB (%s); install mariadb-server (.ci/run does)", server, strings.TrimSpace(string(out)))
	}
	return nil
}

func commandEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(key, "MYSQL") || strings.HasPrefix(key, "MARIADB") || strings.HasPrefix(key, "LC_") || key == "LANG" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// logTail returns the last lines of error.log, indented.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logFile())
	if err != nil {
		return "    (no error.log: " + err.Error() + ")"
	}
	return "    --- error.log ---\n" + tail(string(b), outputLines)
}

// errorLines returns the lines of out that report errors, indented, or
// its last lines if none does: mariadb-install-db ends a failure with
// boilerplate advice that would fill a tail.
func errorLines(out string) string {
	var errs []string
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "ERROR") {
			errs = append(errs, line)
		}
	}
	if len(errs) == 0 {
		return tail(out, outputLines)
	}
	return tail(strings.Join(errs, "\n"), outputLines)
}

// tail returns the last n non-blank lines of out, indented.
func tail(out string, n int) string { return serverproc.Tail(out, n) }

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// serverUser is the "mysql" OS user when running as root (the
// mariadb-server package creates it; mariadbd refuses root without --user).
func serverUser() (*syscall.Credential, error) {
	return serverproc.Credential("mysql", "install mariadb-server (.ci/run does) or run as a non-root user")
}

func checkSearchable(dir string, cred *syscall.Credential) error {
	return serverproc.CheckSearchable(dir, cred, "mysql", "set TMPDIR to a directory it can reach")
}

func freePort() (int, error) { return serverproc.FreePort(listenHost) }

func randomHex(n int) (string, error) { return serverproc.RandomHex(n) }
