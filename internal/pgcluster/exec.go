package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// serverUser returns the credential to run the PostgreSQL binaries with: nil
// (the current user) unless this process runs as root, in which case it is
// the "postgres" OS user.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root, but there is no OS user \"postgres\" to run it as (%w); create one (useradd --system postgres) or run as a non-root user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q of OS user postgres: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q of OS user postgres: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// checkSearchable reports an error if an ancestor of dir is not searchable by
// cred, which would make initdb fail with a confusing message. The check is
// exact for the children this package starts: they run with cred's uid and
// gid and no supplementary groups.
func checkSearchable(dir string, cred *syscall.Credential) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		var bit os.FileMode
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if fi.Mode().Perm()&bit == 0 {
			return fmt.Errorf("directory %s is not searchable by OS user postgres (uid %d), which runs the server; use a parent directory it can reach", p, cred.Uid)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// tail returns the last n non-blank lines of out, indented, with secret
// replaced.
func tail(out string, n int, secret string) string {
	if secret != "" {
		out = strings.ReplaceAll(out, secret, "[REDACTED]")
	}
	var lines []string
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if line == "" {
			continue
		}
		if len(line) > 500 {
			line = line[:500] + "…"
		}
		lines = append(lines, "    "+line)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
