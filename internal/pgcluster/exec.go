package pgcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/serverproc"
)

// outputLines is how many trailing lines of a failed command's output (or of
// server.log) a StepError carries.
const outputLines = 20

// StepError reports that one step of starting or stopping a cluster failed.
type StepError struct {
	// Step names what failed, such as "initdb" or "pg_ctl start".
	Step string
	// Output holds the last lines of the step's output and, for steps that
	// run the server, of server.log. The superuser password is redacted.
	Output string
	Err    error
}

func (e *StepError) Error() string {
	if e.Output == "" {
		return e.Step + ": " + e.Err.Error()
	}
	return e.Step + ": " + e.Err.Error() + "\n" + e.Output
}

func (e *StepError) Unwrap() error { return e.Err }

// runner runs the PostgreSQL binaries of one cluster.
type runner struct {
	binDir  string
	workDir string
	// cred, when set, is the OS user the binaries run as: PostgreSQL refuses
	// to run as root, so a root process runs them as "postgres".
	cred *syscall.Credential
}

// command prepares binary name of the bin directory to run with args. The
// child runs in the cluster directory (the caller's working directory may be
// unreadable to the postgres user) with PG* variables removed from its
// environment so that they cannot redirect it to another cluster.
func (r runner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.binDir, name), args...)
	cmd.Dir = r.workDir
	cmd.Env = commandEnv(os.Environ())
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func commandEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(key, "PG") || strings.HasPrefix(key, "LC_") || key == "LANG" {
			continue
		}
		env = append(env, kv)
	}
	// English messages from initdb and pg_ctl, whatever the user's locale.
	return append(env, "LC_ALL=C")
}

// tail returns the last n non-blank lines of out, indented, with secret
// replaced.
func tail(out string, n int, secret string) string {
	if secret != "" {
		out = strings.ReplaceAll(out, secret, "[REDACTED]")
	}
	return serverproc.Tail(out, n)
}

// serverUser returns the credential to run the PostgreSQL binaries with:
// the "postgres" OS user when running as root (PostgreSQL refuses root).
func serverUser() (*syscall.Credential, error) {
	return serverproc.Credential("postgres", "create one (useradd --system postgres) or run as a non-root user")
}

func checkSearchable(dir string, cred *syscall.Credential) error {
	return serverproc.CheckSearchable(dir, cred, "postgres", "use a parent directory it can reach")
}
