// Command benchaudit measures a full `tenantdrift audit` of the registry
// checks against psql running the same SQL (from `audit --print-sql`) on the
// same database, in the same run, and tenantdrift's peak memory.
//
// It builds tenantdrift, loads a registry of -tenants tenants with 1% of
// them given each kind of drift into a throwaway PostgreSQL (tenantdrift
// demo --keep), then alternates the two commands -runs times and prints
// medians and the ratio.
//
//	go run ./scripts/benchaudit -tenants 100000 -runs 7
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/tenantdrift/tenantdrift/scripts/internal/benchkit"
)

func main() {
	tenants := flag.Int("tenants", 100_000, "tenants in the registry")
	runs := flag.Int("runs", 7, "timed runs of each command")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *tenants, 0.01, *runs)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchaudit:", err)
		os.Exit(1)
	}
}

// registryChecks are the checks timed: the registry's own, which are SQL.
const registryChecks = "registry_missing,registry_orphan,registry_duplicate,field_mismatch,provisioning_stuck"

type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

func run(ctx context.Context, tenants int, drift float64, runs int) error {
	tmp, err := os.MkdirTemp("", "benchaudit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort cleanup of a temp dir
	bin, err := benchkit.Build(ctx, tmp)
	if err != nil {
		return err
	}
	start := time.Now()
	demo, err := benchkit.LoadDemo(ctx, bin, tenants)
	if err != nil {
		return err
	}
	defer demo.Close()
	dsn := demo.DSN
	fmt.Printf("registry: %d tenants, %.0f%% of them with each kind of drift (demo loaded and audited it in %s)\n",
		tenants, drift*100, time.Since(start).Round(time.Millisecond))
	psqlBin, err := exec.LookPath("psql")
	if err != nil {
		psqlBin = filepath.Join(pgBinDir(), "psql")
	}

	env := append(os.Environ(), "TENANTDRIFT_LANDLORD_DSN="+dsn)
	script := filepath.Join(tmp, "audit.sql")
	printSQL := exec.CommandContext(ctx, bin, "audit", "--print-sql", "--check", registryChecks)
	printSQL.Env = env
	sql, err := printSQL.Output()
	if err != nil {
		return fmt.Errorf("audit --print-sql: %w", err)
	}
	if err := os.WriteFile(script, sql, 0o644); err != nil {
		return err
	}
	psql := psqlBin

	ours := func() (sample, error) {
		return timed(ctx, env, []int{0, 2}, bin, "audit", "--format", "json", "--check", registryChecks)
	}
	raw := func() (sample, error) {
		return timed(ctx, env, []int{0}, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", script, dsn)
	}
	// Warm the cache once each, then alternate.
	if _, err := ours(); err != nil {
		return err
	}
	if _, err := raw(); err != nil {
		return err
	}
	var a, b []sample
	for range runs {
		s, err := ours()
		if err != nil {
			return err
		}
		a = append(a, s)
		s, err = raw()
		if err != nil {
			return err
		}
		b = append(b, s)
	}
	ma, mb := median(a), median(b)
	fmt.Printf("\n| command | median wall | min | max | peak RSS (median) |\n|---|---|---|---|---|\n")
	fmt.Printf("| tenantdrift audit --format json | %s | %s | %s | %.1f MiB |\n", ma.wall.Round(time.Millisecond), minW(a), maxW(a), float64(ma.maxRSS)/1024)
	fmt.Printf("| psql -f (same SQL, same database) | %s | %s | %s | %.1f MiB |\n", mb.wall.Round(time.Millisecond), minW(b), maxW(b), float64(mb.maxRSS)/1024)
	fmt.Printf("\nratio tenantdrift/psql (medians): %.2fx (target <= 1.5x); tenantdrift peak RSS %.1f MiB (target < 100 MiB); runs: %d each\n",
		float64(ma.wall)/float64(mb.wall), float64(ma.maxRSS)/1024, runs)
	return nil
}

// timed runs a command, discarding its output, and returns its wall time
// and peak resident memory. Exit codes in ok are success.
func timed(ctx context.Context, env []string, ok []int, name string, args ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := cmd.ProcessState.ExitCode()
	if err != nil && !slices.Contains(ok, code) {
		return sample{}, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, stderr.String())
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rss int64
	if ru != nil {
		rss = ru.Maxrss
	}
	return sample{wall: wall, maxRSS: rss}, nil
}

func median(s []sample) sample {
	w := make([]sample, len(s))
	copy(w, s)
	slices.SortFunc(w, func(a, b sample) int { return int(a.wall - b.wall) })
	m := w[len(w)/2]
	r := make([]int64, len(s))
	for i, x := range s {
		r[i] = x.maxRSS
	}
	slices.Sort(r)
	m.maxRSS = r[len(r)/2]
	return m
}

func minW(s []sample) time.Duration {
	return slices.MinFunc(s, func(a, b sample) int { return int(a.wall - b.wall) }).wall.Round(time.Millisecond)
}

func maxW(s []sample) time.Duration {
	return slices.MaxFunc(s, func(a, b sample) int { return int(a.wall - b.wall) }).wall.Round(time.Millisecond)
}

// pgBinDir is the newest /usr/lib/postgresql/*/bin, for psql off PATH.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Sort(dirs)
	if len(dirs) == 0 {
		return ""
	}
	return dirs[len(dirs)-1]
}
