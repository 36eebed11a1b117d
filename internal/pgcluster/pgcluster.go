// Package pgcluster starts and stops throwaway PostgreSQL clusters built from
// the PostgreSQL server binaries installed on this machine. A cluster lives in
// its own temporary directory, listens on 127.0.0.1 on a free port, requires a
// password over TCP, and runs with durability switched off: it is meant for
// tests and demos, never for data that matters.
//
// When the calling process runs as root, the server binaries run as the
// "postgres" OS user, because PostgreSQL refuses to run as root.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/serverproc"
)

const (
	// superuser is the name of the cluster's superuser role.
	superuser = "postgres"
	// host is the only address a cluster listens on.
	host = "127.0.0.1"
	// portAttempts bounds how often Start tries a new port when the one it
	// picked was taken before the server could bind it.
	portAttempts = 1 + 3
	// maxSocketPath is the longest Unix socket path the portable sun_path
	// field holds (104 bytes on macOS, 108 on Linux, including the NUL).
	maxSocketPath = 103
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Dir is the parent of the cluster's temporary directory; empty means
	// os.TempDir().
	Dir string
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
	// Settings are extra postgresql.conf settings, which override the
	// package's tuning defaults. listen_addresses, port and
	// unix_socket_directories belong to the package and cannot be set.
	Settings map[string]string

	// pickPort replaces freePort in tests.
	pickPort func() (int, error)
}

// Cluster is a running throwaway PostgreSQL cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	dir      string
	binDir   string
	port     int
	password string
	run      runner
	logger   *slog.Logger

	mu      sync.Mutex
	stopped bool
	stopErr error
}

// Start creates a temporary directory under opts.Dir, initialises a cluster
// in it with initdb and starts the server with pg_ctl, returning when the
// server accepts connections. The superuser is "postgres" with a random
// password; Unix socket connections (in Dir) are trusted.
//
// Start finds the binaries through $TENANTDRIFT_PG_BINDIR, `pg_config
// --bindir`, the highest /usr/lib/postgresql/*/bin, or initdb on PATH, in that
// order; if none has them the error wraps ErrNoBinaries. A failed initdb or
// pg_ctl yields a *StepError carrying the tail of its output. On error,
// nothing is left running and the directory is removed.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pickPort := opts.pickPort
	if pickPort == nil {
		pickPort = freePort
	}
	if err := validateSettings(opts.Settings); err != nil {
		return nil, err
	}
	binDir, err := defaultBinSearch().find(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	password, err := randomHex(12)
	if err != nil {
		return nil, fmt.Errorf("generate superuser password: %w", err)
	}

	dir, err := os.MkdirTemp(opts.Dir, "tenantdrift-pg-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	// MkdirTemp may return a relative path; the server needs absolute ones.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c := &Cluster{
		dir:      dir,
		binDir:   binDir,
		password: password,
		run:      runner{binDir: binDir, workDir: dir, cred: cred},
		logger:   logger.With("dir", dir),
	}
	if err := c.start(ctx, opts.Settings, pickPort); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("clean up after failed start: %w", stopErr))
		}
		return nil, err
	}
	c.logger.Info("postgres cluster started", "port", c.port, "bin_dir", binDir,
		"duration", time.Since(begin).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) start(ctx context.Context, settings map[string]string, pickPort func() (int, error)) error {
	if n := len(c.dir) + len("/.s.PGSQL.65535"); n > maxSocketPath {
		return fmt.Errorf("cluster directory %s is too long for a Unix socket path (%d > %d bytes); use a shorter Options.Dir", c.dir, n, maxSocketPath)
	}
	if c.run.cred != nil {
		if err := checkSearchable(c.dir, c.run.cred); err != nil {
			return err
		}
		if err := os.Chown(c.dir, int(c.run.cred.Uid), int(c.run.cred.Gid)); err != nil {
			return fmt.Errorf("hand cluster directory to OS user postgres: %w", err)
		}
	}
	begin := time.Now()
	if err := c.initdb(ctx); err != nil {
		return err
	}
	c.logger.Debug("initdb done", "duration", time.Since(begin).Round(time.Millisecond))
	conf := filepath.Join(c.dataDir(), "postgresql.conf")
	base, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	for attempt := 1; ; attempt++ {
		port, err := pickPort()
		if err != nil {
			return fmt.Errorf("pick a free port: %w", err)
		}
		// Writing to the existing file keeps its owner.
		if err := os.WriteFile(conf, append(base, c.settingsBlock(port, settings)...), 0o600); err != nil {
			return fmt.Errorf("write postgresql.conf: %w", err)
		}
		err = c.pgCtlStart(ctx)
		if err == nil {
			c.port = port
			return nil
		}
		var stepErr *StepError
		if attempt == portAttempts || ctx.Err() != nil || !errors.As(err, &stepErr) || !portTaken(stepErr.Output) {
			return err
		}
		c.logger.Warn("postgres port taken, retrying with another", "port", port, "attempt", attempt)
	}
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "server.log") }

func (c *Cluster) initdb(ctx context.Context) error {
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	defer os.Remove(pwfile) //nolint:errcheck // best effort: the whole directory goes at Stop
	if cred := c.run.cred; cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("hand password file to OS user postgres: %w", err)
		}
	}
	cmd := c.run.command(ctx, "initdb",
		"--pgdata="+c.dataDir(),
		"--username="+superuser,
		"--pwfile="+pwfile,
		"--encoding=UTF8",
		"--locale=C",
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
		"--no-sync", // throwaway: skip fsyncing the new files
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return &StepError{Step: "initdb", Err: err, Output: tail(string(out), outputLines, c.password)}
	}
	return nil
}

// settingsBlock renders the settings appended to postgresql.conf.
func (c *Cluster) settingsBlock(port int, extra map[string]string) string {
	settings := map[string]string{
		// Throwaway cluster: trade durability for speed.
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"max_connections":    "200",
		"shared_buffers":     "128MB",
	}
	maps.Copy(settings, extra)
	settings["listen_addresses"] = host
	settings["port"] = strconv.Itoa(port)
	settings["unix_socket_directories"] = c.dir

	var b strings.Builder
	b.WriteString("\n# Added by tenantdrift pgcluster: throwaway cluster, durability off.\n")
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s = %s\n", name, quoteConfValue(settings[name]))
	}
	return b.String()
}

// validateSettings reports every invalid entry of settings at once.
func validateSettings(settings map[string]string) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		switch {
		case !validSettingName(name):
			errs = append(errs, fmt.Errorf("settings.%q: invalid setting name", name))
		case slices.Contains([]string{"listen_addresses", "port", "unix_socket_directories"}, strings.ToLower(name)):
			errs = append(errs, fmt.Errorf("settings.%s: managed by pgcluster, cannot be set", name))
		case strings.ContainsAny(settings[name], "\x00\r\n"):
			errs = append(errs, fmt.Errorf("settings.%s: value contains a line break or NUL", name))
		}
	}
	return errors.Join(errs...)
}

func validSettingName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// quoteConfValue quotes v as a postgresql.conf string literal, which is valid
// for settings of every type.
func quoteConfValue(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `''`)
	return "'" + v + "'"
}

func (c *Cluster) pgCtlStart(ctx context.Context) error {
	// pg_ctl appends to the log; start each attempt with a fresh one so that
	// the error shows this attempt's messages.
	if err := os.Remove(c.logFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old server.log: %w", err)
	}
	cmd := c.run.command(ctx, "pg_ctl", "start",
		"--pgdata="+c.dataDir(),
		"--wait", "--timeout=60",
		"--log="+c.logFile(),
	)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	return &StepError{Step: "pg_ctl start", Err: err, Output: c.outputWithLog(out)}
}

// outputWithLog combines a pg_ctl command's output with the tail of
// server.log, where the server explains itself.
func (c *Cluster) outputWithLog(out []byte) string {
	s := tail(string(out), 5, c.password)
	log, err := os.ReadFile(c.logFile())
	switch {
	case err != nil:
		s += "\n    (no server.log: " + err.Error() + ")"
	case len(log) > 0:
		s += "\n    --- server.log ---\n" + tail(string(log), outputLines, c.password)
	}
	return s
}

// portTaken reports whether server.log output says the port was in use.
func portTaken(output string) bool {
	return strings.Contains(output, "Address already in use") ||
		strings.Contains(output, "could not bind IPv4 address")
}

// DSN returns a URL connecting as the superuser over TCP, with password, to
// the named database.
func (c *Cluster) DSN(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, c.password),
		Host:     net.JoinHostPort(host, strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Host returns the address the server listens on, 127.0.0.1.
func (c *Cluster) Host() string { return host }

// Dir returns the cluster's temporary directory. It holds the data directory
// (data/), the server log (server.log) and the server's Unix socket.
func (c *Cluster) Dir() string { return c.dir }

// Password returns the superuser's password.
func (c *Cluster) Password() string { return c.password }

// BinDir returns the directory of the PostgreSQL binaries the cluster runs.
func (c *Cluster) BinDir() string { return c.binDir }

// Stop shuts the server down (fast shutdown, then immediate shutdown if that
// fails or takes over ~10 s, then SIGKILL) and removes the cluster's
// directory. It is idempotent: later calls return the first call's result.
// The error reports a server that could not be stopped or a directory that
// could not be removed.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return c.stopErr
	}
	c.stopped = true
	begin := time.Now()
	err := c.shutdown()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove cluster directory: %w", rmErr))
	}
	c.stopErr = err
	if err == nil {
		c.logger.Info("postgres cluster stopped", "duration", time.Since(begin).Round(time.Millisecond))
	}
	return err
}

// shutdown stops the server if it runs. It returns an error only when the
// server may still be running.
func (c *Cluster) shutdown() error {
	pid, ok := c.postmasterPID()
	if !ok {
		return nil
	}
	for _, mode := range []string{"fast", "immediate"} {
		err := c.pgCtlStop(mode)
		if err == nil {
			return nil
		}
		if !alive(pid) {
			return nil
		}
		c.logger.Warn("postgres shutdown failed, escalating", "mode", mode, "err", err)
	}
	// Killing the postmaster makes its children exit too.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill postmaster (pid %d): %w", pid, err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return nil
		}
	}
	return fmt.Errorf("postmaster (pid %d) still running after SIGKILL", pid)
}

func (c *Cluster) pgCtlStop(mode string) error {
	// pg_ctl gives up after 10 s; the context is a backstop in case it hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := c.run.command(ctx, "pg_ctl", "stop",
		"--pgdata="+c.dataDir(),
		"--mode="+mode,
		"--wait", "--timeout=10",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &StepError{Step: "pg_ctl stop -m " + mode, Err: err, Output: c.outputWithLog(out)}
	}
	return nil
}

// postmasterPID reads the server's PID from postmaster.pid, reporting false
// when the server is not running.
func (c *Cluster) postmasterPID() (int, bool) {
	b, err := os.ReadFile(filepath.Join(c.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, alive(pid)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// StopCommand returns a shell command line that stops the server and removes
// its directory, for a human to run after the process that started the
// cluster has gone (as `tenantdrift demo --keep` does). Run it as the user
// that started the cluster.
func (c *Cluster) StopCommand() string {
	stop := shellQuote(filepath.Join(c.binDir, "pg_ctl")) + " stop -D " + shellQuote(c.dataDir()) + " -m fast -w"
	if c.run.cred != nil {
		// pg_ctl refuses to run as root too.
		stop = "su postgres -s /bin/sh -c " + shellQuote(stop)
	}
	return stop + "; rm -rf " + shellQuote(c.dir)
}

// shellQuote quotes s for a POSIX shell unless it is plainly safe.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("/._-+=:,@%", r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func freePort() (int, error) { return serverproc.FreePort(host) }

func randomHex(n int) (string, error) { return serverproc.RandomHex(n) }
