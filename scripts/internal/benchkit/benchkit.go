// Package benchkit holds what the benchmark scripts share: building
// tenantdrift, loading a registry with `tenantdrift demo --keep` in a child
// process, and reading the machine's load.
//
// The registry is loaded in its own process on purpose: on Linux a child's
// ru_maxrss starts at its parent's resident size (the child shares the
// parent's memory until exec), so a benchmark that measures a child's peak
// memory must stay small itself.
package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Build compiles ./cmd/tenantdrift (static, as the image does) into dir.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "tenantdrift")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tenantdrift")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %w\n%s", err, out)
	}
	return bin, nil
}

// Demo is a demo cluster left running by `tenantdrift demo --keep`.
type Demo struct {
	DSN  string // of the landlord database
	stop string // the shell line demo printed to stop and remove it
}

// LoadDemo runs `tenantdrift demo --keep` with tenants tenants (1% of them
// given each kind of drift) and returns the running cluster. Close it.
func LoadDemo(ctx context.Context, bin string, tenants int) (*Demo, error) {
	demo := exec.CommandContext(ctx, bin, "demo", "--keep", "--format", "json", "--tenants", strconv.Itoa(tenants))
	var stderr bytes.Buffer
	demo.Stdout, demo.Stderr = io.Discard, &stderr
	if err := demo.Run(); err != nil {
		return nil, fmt.Errorf("demo --keep: %w\n%s", err, stderr.String())
	}
	dsn, stop := ParseKeep(stderr.String())
	if dsn == "" || stop == "" {
		return nil, fmt.Errorf("demo --keep printed no DSN:\n%s", stderr.String())
	}
	return &Demo{DSN: dsn, stop: stop}, nil
}

// Close stops the cluster and removes it (best effort).
func (d *Demo) Close() {
	_ = exec.Command("sh", "-c", d.stop).Run()
}

// ParseKeep finds the DSN and the stop command in demo --keep's stderr.
func ParseKeep(out string) (dsn, stop string) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "psql ") {
			dsn = strings.Trim(strings.TrimPrefix(l, "psql "), `"`)
		}
		if strings.HasPrefix(l, "Stop and remove it with:") && i+1 < len(lines) {
			stop = strings.TrimSpace(lines[i+1])
		}
	}
	return dsn, stop
}

// Loadavg is the 1, 5 and 15 minute load averages, or "unknown".
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
