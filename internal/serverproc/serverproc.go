// Package serverproc holds what starting a database server from the
// machine's own binaries needs, whatever the server: which OS user to run it
// as when tenantdrift runs as root, whether that user can reach its
// directory, and a free loopback port. pgcluster (PostgreSQL, for the demo
// and the tests) and mariadbtest (MariaDB, for the tests) share it.
package serverproc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Credential returns the credential to run a server's binaries with: nil
// (the current user) unless this process runs as root, in which case it is
// the OS user name. advice ends the error when that user does not exist.
func Credential(name, advice string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, and the server must not, but there is no OS user %q to run it as (%w); %s", name, err, advice)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q of OS user %s: %w", u.Uid, name, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q of OS user %s: %w", u.Gid, name, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// CheckSearchable reports an error if an ancestor of dir is not searchable
// by cred (the OS user name), which would make the server fail with a
// confusing message. The check is exact for children started with cred's
// uid and gid and no supplementary groups. advice ends the error.
func CheckSearchable(dir string, cred *syscall.Credential, name, advice string) error {
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
			return fmt.Errorf("directory %s is not searchable by OS user %s (uid %d), which runs the server; %s", p, name, cred.Uid, advice)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// FreePort returns a TCP port on host that was free a moment ago.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// RandomHex returns n random bytes, hex-encoded.
func RandomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Tail returns the last n non-blank lines of a server's output, indented,
// each cut at 500 bytes: enough to say why a start-up failed.
func Tail(out string, n int) string {
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
