// Command benchprobe measures the db_unreachable check's tenant probe,
// probe.Prober, against pgbench -C and a sequential psql loop on the same
// throwaway PostgreSQL in the same run, and its wall time against silent
// listeners.
//
// It starts a cluster with pgcluster, creates 50 tenant databases owned by
// one password (SCRAM) login role and probes 1,000 targets spread over them;
// pgbench -C -S opens a new connection per transaction as the same role on
// one of those databases, and psql -c 'SELECT 1' probes the first 100
// targets one after the other. Then 100 targets point at listeners that
// accept and never answer. Each measurement is repeated -runs times,
// alternating, and the medians and ratios are printed as a Markdown table.
// CPU per connection is the client's user and system time (this process's,
// or pgbench's and psql's) and the server's: the postmaster's and its reaped
// backends', from /proc, so it is Linux only.
//
//	go run ./scripts/benchprobe -runs 5
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/pgcluster"
	"github.com/tenantdrift/tenantdrift/internal/probe"
	"github.com/tenantdrift/tenantdrift/scripts/internal/benchkit"
)

const (
	databases     = 50
	targets       = 1000
	psqlTargets   = 100 // the naive loop probes the first psqlTargets targets
	concurrency   = 16
	timeout       = 5 * time.Second
	pgbenchSecs   = 10
	silentCount   = 100
	silentConc    = 50
	silentTimeout = 2 * time.Second
	role          = "tenant_bench"
)

func main() {
	runs := flag.Int("runs", 5, "timed repetitions of each measurement")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *runs)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchprobe:", err)
		os.Exit(1)
	}
}

// bench is the throwaway cluster and the role the probes log in as.
type bench struct {
	cluster  *pgcluster.Cluster
	password string   // the role's; never printed
	env      []string // for psql and pgbench: no PG* from ours, PGPASSWORD set
}

func run(ctx context.Context, runs int) (err error) {
	if runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	fmt.Printf("load average at start: %s (%d CPUs)\n", benchkit.Loadavg(), runtime.NumCPU())

	start := time.Now()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"max_connections": "300"}})
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	defer func() {
		if stopErr := cluster.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop cluster: %w", stopErr))
		}
	}()
	password, err := randomHex(16)
	if err != nil {
		return fmt.Errorf("generate role password: %w", err)
	}
	b := &bench{cluster: cluster, password: password, env: clientEnv(password)}
	if err := b.setup(ctx); err != nil {
		return err
	}
	fmt.Printf("cluster: PostgreSQL from %s on %s:%d, %d databases, role %s (scram-sha-256), pgbench -i -s 1 on %s; set up in %s\n",
		cluster.BinDir(), cluster.Host(), cluster.Port(), databases, role, dbName(0), time.Since(start).Round(time.Millisecond))

	plain := b.targets("disable")
	// Warm up once: the server's caches and the binaries' pages.
	if _, err := b.ours(ctx, plain); err != nil {
		return err
	}
	if _, err := b.psqlLoop(ctx, plain[:10]); err != nil {
		return err
	}

	var ours, pgb, naive []sample
	var connMS []float64 // pgbench's average connection time
	for i := range runs {
		o, err := b.ours(ctx, plain)
		if err != nil {
			return err
		}
		g, avgConn, err := b.pgbench(ctx)
		if err != nil {
			return err
		}
		n, err := b.psqlLoop(ctx, plain[:psqlTargets])
		if err != nil {
			return err
		}
		ours, pgb, naive, connMS = append(ours, o), append(pgb, g), append(naive, n), append(connMS, avgConn)
		fmt.Fprintf(os.Stderr, "run %d/%d: ours %.0f probes/s, pgbench %.0f connections/s, psql loop %.1f probes/s\n", i+1, runs, o.rate, g.rate, n.rate)
	}
	prefer, err := b.ours(ctx, b.targets("prefer"))
	if err != nil {
		return fmt.Errorf("sslmode prefer: %w", err)
	}
	silentWall, silentPrefer, err := silentRuns(ctx, runs)
	if err != nil {
		return err
	}

	mOurs, mBench, mNaive, mSilent := median(ours).rate, median(pgb).rate, median(naive).rate, medianF(silentWall)
	fmt.Printf("\n| measurement | median | min | max | CPU per connection: client / server (medians) | runs |\n|---|---|---|---|---|---|\n")
	row := func(name, unit, format string, s []sample) {
		m := median(s)
		lo := slices.MinFunc(s, byRate).rate
		hi := slices.MaxFunc(s, byRate).rate
		fmt.Printf("| %s | "+format+" %s | "+format+" | "+format+" | %.2f ms / %.2f ms | %d |\n", name, m.rate, unit, lo, hi, m.clientMS, m.serverMS, len(s))
	}
	row(fmt.Sprintf("tenantdrift `Prober{Concurrency: %d, Timeout: %s}.Run`, %d targets over %d databases, sslmode=disable", concurrency, timeout, targets, databases),
		"probes/s", "%.0f", ours)
	row(fmt.Sprintf("`pgbench -C -S -c %d -j 2 -T %d -n`, one of the databases, same role (tps incl. reconnection; average connection time %.2f ms)", concurrency, pgbenchSecs, medianF(connMS)),
		"connections/s", "%.0f", pgb)
	row(fmt.Sprintf("sequential `psql -X -q -t -c 'SELECT 1'`, first %d targets, sslmode=disable", psqlTargets),
		"probes/s", "%.1f", naive)
	row(fmt.Sprintf("tenantdrift, same %d targets, sslmode=prefer (server has no TLS: falls back)", targets),
		"probes/s", "%.0f", []sample{prefer})
	fmt.Printf("| tenantdrift `Prober{Concurrency: %d, Timeout: %s}.Run`, %d silent listeners, sslmode=disable: wall time | %.2f s | %.2f | %.2f | | %d |\n",
		silentConc, silentTimeout, silentCount, mSilent, slices.Min(silentWall), slices.Max(silentWall), runs)
	fmt.Printf("| same, sslmode=prefer | %.2f s | | | | 1 |\n", silentPrefer)

	fmt.Printf("\nload average at end: %s (%d CPUs)\n\n", benchkit.Loadavg(), runtime.NumCPU())
	verdict("throughput vs pgbench", mOurs/mBench >= 0.7, "%.2fx (ours %.0f probes/s, pgbench %.0f connections/s; target >= 0.7x)", mOurs/mBench, mOurs, mBench)
	verdict("throughput vs psql loop", mOurs/mNaive >= 10, "%.1fx (ours %.0f probes/s, psql %.1f probes/s; target >= 10x)", mOurs/mNaive, mOurs, mNaive)
	verdict("silent listeners", mSilent <= 5, "%.2f s for %d targets, every reason timeout (target <= 5 s)", mSilent, silentCount)
	return nil
}

func verdict(name string, ok bool, format string, args ...any) {
	word := "MISS"
	if ok {
		word = "PASS"
	}
	fmt.Printf("%s %s: %s\n", word, name, fmt.Sprintf(format, args...))
}

// setup creates the login role, the tenant databases (owned by the role, so
// pgbench -i may create its tables) and pgbench's tables in the first one.
func (b *bench) setup(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.cluster.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect as superuser: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return fmt.Errorf("set password_encryption: %w", err)
	}
	// The server quotes the role and its password: CREATE ROLE takes no
	// parameters.
	var createRole string
	if err := conn.QueryRow(ctx, "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", role, b.password).Scan(&createRole); err != nil {
		return fmt.Errorf("quote create role: %w", err)
	}
	if _, err := conn.Exec(ctx, createRole); err != nil {
		return fmt.Errorf("create role %s: %w", role, err)
	}
	for i := range databases {
		sql := "CREATE DATABASE " + pgx.Identifier{dbName(i)}.Sanitize() + " OWNER " + pgx.Identifier{role}.Sanitize()
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create database %s: %w", dbName(i), err)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(b.cluster.BinDir(), "pgbench"), b.pgbenchConn("-i", "-s", "1", "-q")...)
	cmd.Env = b.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return nil
}

func dbName(i int) string { return fmt.Sprintf("tenant_bench_%02d", i) }

// targets are the benchmark's tenants: tenant i uses database i%databases.
func (b *bench) targets(sslmode string) []probe.Target {
	ts := make([]probe.Target, targets)
	for i := range ts {
		ts[i] = probe.Target{
			Host:     b.cluster.Host(),
			Port:     b.cluster.Port(),
			Database: dbName(i % databases),
			User:     role,
			Password: b.password,
			Driver:   probe.DriverPostgres,
			SSLMode:  sslmode,
		}
	}
	return ts
}

// sample is one timed measurement: its rate and the CPU time it cost per
// connection, in this process or the client processes and in the server.
type sample struct {
	rate               float64 // connections (probes) per second
	clientMS, serverMS float64 // CPU milliseconds per connection
}

// ours probes ts and returns probes per second; a probe that fails is an
// error, since the figure would not be a throughput.
func (b *bench) ours(ctx context.Context, ts []probe.Target) (sample, error) {
	p := &probe.Prober{Concurrency: concurrency, Timeout: timeout}
	srv0, self0 := b.serverCPU(), selfCPU()
	start := time.Now()
	res := p.Run(ctx, ts, nil)
	wall := time.Since(start)
	client, server := selfCPU()-self0, b.serverCPU()-srv0
	if err := expect(res, probe.OK); err != nil {
		return sample{}, fmt.Errorf("prober: %w", err)
	}
	return perConn(len(ts), wall, client, server), nil
}

func perConn(n int, wall, client, server time.Duration) sample {
	return sample{
		rate:     float64(n) / wall.Seconds(),
		clientMS: float64(client.Microseconds()) / 1000 / float64(n),
		serverMS: float64(server.Microseconds()) / 1000 / float64(n),
	}
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the postmaster's CPU time plus that of its reaped children
// (every backend, one per connection), from /proc; 0 when unreadable.
func (b *bench) serverCPU() time.Duration {
	pidFile, err := os.ReadFile(filepath.Join(b.cluster.Dir(), "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _, _ := strings.Cut(string(pidFile), "\n")
	stat, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(pid), "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name: state is field 3; utime, stime,
	// cutime and cstime are fields 14 to 17, in USER_HZ (100 on Linux).
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// expect reports the results whose reason is not want.
func expect(res []probe.Result, want probe.Reason) error {
	bad := 0
	var first probe.Result
	for _, r := range res {
		if r.Reason != want {
			if bad == 0 {
				first = r
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d probes gave a reason other than %q, first: reason %q sqlstate %q: %s",
			bad, len(res), want, first.Reason, first.SQLState, first.Detail)
	}
	return nil
}

// pgbench runs pgbench -C -S for pgbenchSecs seconds and returns its
// connections per second (tps including reconnection times: with -C every
// transaction opens a connection) and average connection time in ms.
func (b *bench) pgbench(ctx context.Context) (s sample, avgConnMS float64, err error) {
	args := b.pgbenchConn("-C", "-S", "-n", "-c", strconv.Itoa(concurrency), "-j", "2", "-T", strconv.Itoa(pgbenchSecs))
	cmd := exec.CommandContext(ctx, filepath.Join(b.cluster.BinDir(), "pgbench"), args...)
	cmd.Env = b.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	srv0 := b.serverCPU()
	if err := cmd.Run(); err != nil {
		return sample{}, 0, fmt.Errorf("pgbench: %w\n%s", err, stderr.String())
	}
	server := b.serverCPU() - srv0
	out, err := parsePgbench(stdout.String())
	if err != nil {
		return sample{}, 0, fmt.Errorf("pgbench: %w\n%s", err, stdout.String())
	}
	n := max(out.transactions, 1)
	client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	s = perConn(n, time.Second, client, server)
	s.rate = out.tps
	return s, out.avgConnMS, nil
}

// pgbenchConn prefixes args with the connection options for the first
// tenant database; the password and sslmode come from the environment.
func (b *bench) pgbenchConn(args ...string) []string {
	return append(args, "-h", b.cluster.Host(), "-p", strconv.Itoa(b.cluster.Port()), "-U", role, dbName(0))
}

// pgbenchOut is what benchprobe reads from pgbench's summary.
type pgbenchOut struct {
	tps          float64 // the "including" line when it prints two, as before PostgreSQL 14
	avgConnMS    float64 // 0 when it prints none
	transactions int
}

func parsePgbench(text string) (pgbenchOut, error) {
	var out pgbenchOut
	found := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "tps = "); ok {
			num, note, _ := strings.Cut(rest, " ")
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return out, fmt.Errorf("parse %q: %w", line, err)
			}
			if !found || strings.Contains(note, "including") {
				out.tps, found = v, true
			}
		}
		if rest, ok := strings.CutPrefix(line, "average connection time = "); ok {
			num, _, _ := strings.Cut(rest, " ")
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return out, fmt.Errorf("parse %q: %w", line, err)
			}
			out.avgConnMS = v
		}
		if rest, ok := strings.CutPrefix(line, "number of transactions actually processed: "); ok {
			num, _, _ := strings.Cut(rest, "/")
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil {
				return out, fmt.Errorf("parse %q: %w", line, err)
			}
			out.transactions = n
		}
		if rest, ok := strings.CutPrefix(line, "number of failed transactions: "); ok && !strings.HasPrefix(rest, "0 ") {
			return out, fmt.Errorf("failed transactions: %s", rest)
		}
	}
	if !found {
		return out, errors.New("no tps line")
	}
	return out, nil
}

// psqlLoop runs psql -c 'SELECT 1' once per target, one after the other,
// and returns probes per second.
func (b *bench) psqlLoop(ctx context.Context, ts []probe.Target) (sample, error) {
	psql := filepath.Join(b.cluster.BinDir(), "psql")
	var client time.Duration
	srv0 := b.serverCPU()
	start := time.Now()
	for _, t := range ts {
		info := conninfo("host", t.Host, "port", strconv.Itoa(t.Port), "dbname", t.Database, "user", t.User, "sslmode", t.SSLMode)
		cmd := exec.CommandContext(ctx, psql, "-X", "-q", "-t", "-c", "SELECT 1", info)
		cmd.Env = b.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return sample{}, fmt.Errorf("psql %s: %w: %s", t.Database, err, stderr.String())
		}
		if strings.TrimSpace(string(out)) != "1" {
			return sample{}, fmt.Errorf("psql %s: unexpected output %q", t.Database, out)
		}
		client += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	wall := time.Since(start)
	return perConn(len(ts), wall, client, b.serverCPU()-srv0), nil
}

// conninfo renders key/value pairs as a libpq connection string, quoting
// every value.
func conninfo(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		v := strings.ReplaceAll(kv[i+1], `\`, `\\`)
		v = strings.ReplaceAll(v, `'`, `\'`)
		parts = append(parts, kv[i]+"='"+v+"'")
	}
	return strings.Join(parts, " ")
}

// clientEnv is this process's environment without PG* variables (which
// could point psql and pgbench elsewhere), with the role's password,
// sslmode disable for pgbench, and C messages.
func clientEnv(password string) []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(key, "PG") || strings.HasPrefix(key, "LC_") || key == "LANG" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PGPASSWORD="+password, "PGSSLMODE=disable", "LC_ALL=C")
}

// silentRuns probes silentCount listeners that accept and never answer,
// runs times with sslmode disable and once with prefer, and returns the
// wall times in seconds. A reason other than timeout is an error.
func silentRuns(ctx context.Context, runs int) (walls []float64, prefer float64, err error) {
	s, err := listenSilent(silentCount)
	if err != nil {
		return nil, 0, err
	}
	defer s.close()
	once := func(sslmode string) (float64, error) {
		ts := make([]probe.Target, len(s.ls))
		for i, l := range s.ls {
			addr := l.Addr().(*net.TCPAddr)
			ts[i] = probe.Target{Host: addr.IP.String(), Port: addr.Port, Database: "silent", User: role,
				Password: "unused", Driver: probe.DriverPostgres, SSLMode: sslmode}
		}
		p := &probe.Prober{Concurrency: silentConc, Timeout: silentTimeout}
		start := time.Now()
		res := p.Run(ctx, ts, nil)
		wall := time.Since(start)
		if err := expect(res, probe.Timeout); err != nil {
			return 0, fmt.Errorf("silent listeners, sslmode %s: %w", sslmode, err)
		}
		return wall.Seconds(), nil
	}
	for range runs {
		w, err := once("disable")
		if err != nil {
			return nil, 0, err
		}
		walls = append(walls, w)
	}
	if prefer, err = once("prefer"); err != nil {
		return nil, 0, err
	}
	return walls, prefer, nil
}

// silent is a set of TCP listeners that accept connections and never
// write to them.
type silent struct {
	ls    []net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func listenSilent(n int) (*silent, error) {
	s := &silent{}
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listen: %w", err)
		}
		s.ls = append(s.ls, l)
		s.wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				s.mu.Lock()
				s.conns = append(s.conns, c)
				s.mu.Unlock()
			}
		})
	}
	return s, nil
}

// close stops the listeners, waits for their goroutines and closes the
// connections they accepted.
func (s *silent) close() {
	for _, l := range s.ls {
		l.Close() //nolint:errcheck // closing a listener we own; nothing to report
	}
	s.wg.Wait()
	for _, c := range s.conns {
		c.Close() //nolint:errcheck // the peer gave up long ago
	}
}

// median is the sample of median rate, with the median CPU costs.
func median(s []sample) sample {
	rates, client, server := make([]float64, len(s)), make([]float64, len(s)), make([]float64, len(s))
	for i, x := range s {
		rates[i], client[i], server[i] = x.rate, x.clientMS, x.serverMS
	}
	return sample{rate: medianF(rates), clientMS: medianF(client), serverMS: medianF(server)}
}

func byRate(a, b sample) int { return cmp.Compare(a.rate, b.rate) }

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
