package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvBinDir names the environment variable that, when set, is the directory
// holding the PostgreSQL server binaries (initdb, pg_ctl, postgres). It
// overrides every other way of finding them.
const EnvBinDir = "TENANTDRIFT_PG_BINDIR"

// ErrNoBinaries is wrapped by the error Start returns when it cannot find the
// PostgreSQL server binaries.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found")

// debianBinGlob matches the per-version binary directories of Debian and
// Ubuntu PostgreSQL packages.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// serverBinaries are the programs a bin directory must hold to be usable.
func serverBinaries() []string { return []string{"initdb", "pg_ctl", "postgres"} }

// binSearch finds the PostgreSQL server binaries. Its fields are the
// environment it looks at, so tests can replace them.
type binSearch struct {
	getenv   func(string) string
	lookPath func(string) (string, error)
	glob     string // pattern of versioned bin directories, highest version wins
}

func defaultBinSearch() binSearch {
	return binSearch{getenv: os.Getenv, lookPath: exec.LookPath, glob: debianBinGlob}
}

// find returns the directory holding initdb, pg_ctl and postgres. In order it
// tries $TENANTDRIFT_PG_BINDIR (and nothing else when that is set),
// `pg_config --bindir`, the highest version matching s.glob, and the
// directory of initdb on PATH. The error wraps ErrNoBinaries and lists what
// was searched.
func (s binSearch) find(ctx context.Context) (string, error) {
	if dir := s.getenv(EnvBinDir); dir != "" {
		if missing := missingBinaries(dir); len(missing) > 0 {
			return "", fmt.Errorf("%w: %s=%s lacks %s; point it at the directory containing initdb",
				ErrNoBinaries, EnvBinDir, dir, strings.Join(missing, ", "))
		}
		return dir, nil
	}

	var searched []string

	if pgConfig, err := s.lookPath("pg_config"); err != nil {
		searched = append(searched, "pg_config --bindir (pg_config not on PATH)")
	} else if dir, err := pgConfigBinDir(ctx, pgConfig); err != nil {
		searched = append(searched, fmt.Sprintf("%s --bindir (%v)", pgConfig, err))
	} else if missing := missingBinaries(dir); len(missing) > 0 {
		searched = append(searched, fmt.Sprintf("%s (from %s --bindir, lacks %s)", dir, pgConfig, strings.Join(missing, ", ")))
	} else {
		return dir, nil
	}

	dirs, _ := filepath.Glob(s.glob) // the only possible error is a bad pattern
	slices.SortFunc(dirs, func(a, b string) int {
		return slices.Compare(versionOf(b), versionOf(a)) // highest first
	})
	found := false
	for _, dir := range dirs {
		if len(missingBinaries(dir)) == 0 {
			return dir, nil
		}
		found = true
	}
	switch {
	case found:
		searched = append(searched, fmt.Sprintf("%s (none holds initdb, pg_ctl and postgres)", s.glob))
	default:
		searched = append(searched, fmt.Sprintf("%s (no such directory)", s.glob))
	}

	if initdb, err := s.lookPath("initdb"); err != nil {
		searched = append(searched, "initdb on PATH (not found)")
	} else {
		dir := filepath.Dir(initdb)
		missing := missingBinaries(dir)
		if len(missing) == 0 {
			return dir, nil
		}
		searched = append(searched, fmt.Sprintf("%s (initdb on PATH, lacks %s)", dir, strings.Join(missing, ", ")))
	}

	return "", fmt.Errorf("%w; searched %s; install the PostgreSQL server package or set %s to the directory containing initdb",
		ErrNoBinaries, strings.Join(searched, "; "), EnvBinDir)
}

// pgConfigBinDir runs `pg_config --bindir`.
func pgConfigBinDir(ctx context.Context, pgConfig string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, pgConfig, "--bindir")
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return "", err
	}
	dir := strings.TrimSpace(stdout.String())
	if dir == "" {
		return "", errors.New("empty output")
	}
	return dir, nil
}

// missingBinaries returns which server binaries dir lacks.
func missingBinaries(dir string) []string {
	var missing []string
	for _, name := range serverBinaries() {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

// versionOf extracts the version from a ".../<version>/bin" path as numeric
// components; a non-numeric version yields nil, which sorts lowest.
func versionOf(binDir string) []int {
	v := filepath.Base(filepath.Dir(binDir))
	var out []int
	for part := range strings.SplitSeq(v, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}
