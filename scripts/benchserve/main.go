// Command benchserve measures the daemon, `tenantdrift serve`, against a
// registry of -tenants tenants: its resident memory over -runs scheduled
// runs of every enabled check, the time to scrape its /metrics, and how long
// it takes to exit on SIGTERM. For context it also times one `tenantdrift
// audit` of the registry checks on the same registry, in the same run.
//
// It builds tenantdrift and loads the registry, with 1% of the tenants given
// each kind of drift, into a throwaway PostgreSQL (tenantdrift demo --keep).
// Above 300 tenants the demo creates no tenant databases, so the daemon runs
// with db_unreachable and database_orphan disabled and without APP_KEY (so
// credential_undecryptable is skipped too); the other checks run every
// -interval, recording history in the landlord's tenantdrift schema. The
// benchmark polls /metrics until every enabled check has completed -runs
// runs, reading the daemon's VmRSS and VmHWM from /proc at every poll and
// when each round (every check's run k) is complete, then
// times -scrapes sequential GETs of /metrics on one keep-alive connection,
// and last sends SIGTERM while a scheduled round of runs is in flight. It
// prints Markdown tables and a PASS or MISS line per target, and exits
// non-zero only when something fails (a check run that errors is a
// failure). Linux only: it reads /proc.
//
//	go run ./scripts/benchserve -tenants 100000 -runs 10
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tenantdrift/tenantdrift/scripts/internal/benchkit"
)

func main() {
	var o options
	flag.IntVar(&o.tenants, "tenants", 100_000, "tenants in the registry")
	flag.IntVar(&o.runs, "runs", 10, "completed runs of every enabled check to wait for")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "the daemon's schedule (@every)")
	flag.IntVar(&o.scrapes, "scrapes", 200, "timed sequential GETs of /metrics")
	disable := flag.String("disable", "", "comma-separated checks to disable as well (to see what costs memory)")
	flag.Parse()
	for name := range strings.SplitSeq(*disable, ",") {
		if name = strings.TrimSpace(name); name != "" {
			o.disable = append(o.disable, name)
		}
	}
	if o.runs < 2 || o.scrapes < 1 || o.interval < time.Second {
		fmt.Fprintln(os.Stderr, "benchserve: need -runs >= 2, -scrapes >= 1 and -interval >= 1s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchserve:", err)
		os.Exit(1)
	}
}

type options struct {
	tenants  int
	runs     int
	interval time.Duration
	scrapes  int
	disable  []string
}

// registryChecks are the checks of the one-shot baseline audit.
const registryChecks = "registry_missing,registry_orphan,registry_duplicate,field_mismatch,provisioning_stuck"

// serveChecks are the checks the daemon runs here, unless disabled:
// credential_undecryptable needs APP_KEY, and db_unreachable and
// database_orphan tenant databases, which the demo does not create at
// this size.
var serveChecks = []string{"registry_missing", "registry_orphan", "registry_duplicate", "field_mismatch", "provisioning_stuck", "credential_plaintext"}

// refCheck is the check whose runs the brief numbered the RSS samples by.
// The checks run concurrently and it is the quickest, so a reading when it
// completes falls mid-round, at a varying point of the others' runs; the
// figures judged are read when every check has completed run k, and its
// readings are printed beside them.
const refCheck = "registry_missing"

const (
	mib         = 1024.0 // KiB per MiB
	rssTarget   = 128    // MiB
	flatPct     = 10.0   // flat: growth from run 2 to the last run under this % of run 2
	scrapeLimit = 20 * time.Millisecond
	pollEvery   = 200 * time.Millisecond
	checkTO     = "10m" // per-check timeout: generous, so a slow run is never cut
)

// serveConfig is the daemon's: every check on one short schedule, the two that
// need tenant databases off (and any in disable), history in the landlord
// (state default).
func serveConfig(interval time.Duration, disable []string) []byte {
	b := fmt.Appendf(nil, "schedule: \"@every %s\"\nleader:\n  heartbeat: 1s\nchecks:\n", interval)
	for _, name := range []string{"registry_missing", "registry_orphan", "registry_duplicate", "field_mismatch",
		"provisioning_stuck", "credential_undecryptable", "credential_plaintext"} {
		if slices.Contains(disable, name) {
			b = fmt.Appendf(b, "  %s: {enabled: false}\n", name)
		} else {
			b = fmt.Appendf(b, "  %s: {timeout: %s}\n", name, checkTO)
		}
	}
	return append(b, "  db_unreachable: {enabled: false}\n  database_orphan: {enabled: false}\n"...)
}

func run(ctx context.Context, o options) error {
	loadStart := benchkit.Loadavg()
	tmp, err := os.MkdirTemp("", "benchserve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort cleanup of a temp dir
	bin, err := benchkit.Build(ctx, tmp)
	if err != nil {
		return err
	}
	// The daemon's peak is VmHWM, which exec resets; the baseline audit's
	// is ru_maxrss, hence the small parent (see benchkit).
	start := time.Now()
	demo, err := benchkit.LoadDemo(ctx, bin, o.tenants)
	if err != nil {
		return err
	}
	defer demo.Close()
	dsn := demo.DSN
	fmt.Printf("registry: %d tenants, 1%% of them with each kind of drift (demo loaded and audited it in %s)\n",
		o.tenants, time.Since(start).Round(time.Millisecond))
	fmt.Printf("load average at start: %s\n", loadStart)

	env := daemonEnv(dsn)

	// Baseline: one one-shot audit of the registry checks, before the
	// daemon starts, so nothing of ours competes with it.
	base, err := timed(ctx, env, bin, "audit", "--format", "json", "--check", registryChecks)
	if err != nil {
		return err
	}
	fmt.Printf("baseline audit (%s): %s wall, peak RSS %.1f MiB\n", registryChecks, base.wall.Round(time.Millisecond), float64(base.maxRSS)/mib)
	// And the daemon's own checks, one after the other, as audit runs them.
	own := slices.DeleteFunc(slices.Clone(serveChecks), func(n string) bool { return slices.Contains(o.disable, n) })
	var same *sample
	if strings.Join(own, ",") != registryChecks {
		s, err := timed(ctx, env, bin, "audit", "--format", "json", "--check", strings.Join(own, ","))
		if err != nil {
			return err
		}
		same = &s
		fmt.Printf("baseline audit (%s): %s wall, peak RSS %.1f MiB\n", strings.Join(own, ","), s.wall.Round(time.Millisecond), float64(s.maxRSS)/mib)
	}

	cfgPath := filepath.Join(tmp, "serve.yaml")
	if err := os.WriteFile(cfgPath, serveConfig(o.interval, o.disable), 0o600); err != nil {
		return err
	}
	d, err := startDaemon(ctx, bin, cfgPath, env, filepath.Join(tmp, "serve.log"))
	if err != nil {
		return err
	}
	defer d.kill()

	res, err := measure(ctx, o, d)
	if err != nil {
		return fmt.Errorf("%w\ndaemon stderr (tail):\n%s", err, d.tail(30))
	}
	res.base, res.same = base, same
	res.loadStart, res.loadEnd = loadStart, benchkit.Loadavg()
	res.print(o)
	return nil
}

// daemonEnv is this process's environment without APP_KEY, Laravel's
// previous keys or any TENANTDRIFT_ variable, plus the landlord DSN.
func daemonEnv(dsn string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "APP_KEY" || k == "APP_PREVIOUS_KEYS" || strings.HasPrefix(k, "TENANTDRIFT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "TENANTDRIFT_LANDLORD_DSN="+dsn)
}

// sample is one timed child process.
type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

// timed runs a command, discarding its output, and returns its wall time
// and peak resident memory. Exit code 2 (drift found) is success.
func timed(ctx context.Context, env []string, name string, args ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil && cmd.ProcessState.ExitCode() != 2 {
		return sample{}, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), args[0], err, stderr.String())
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rss int64
	if ru != nil {
		rss = ru.Maxrss
	}
	return sample{wall: wall, maxRSS: rss}, nil
}

// daemon is the running `tenantdrift serve`.
type daemon struct {
	cmd    *exec.Cmd
	url    string // of /metrics
	log    string // its stderr
	done   chan struct{}
	client *http.Client
}

func startDaemon(ctx context.Context, bin, cfgPath string, env []string, logPath string) (*daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() //nolint:errcheck // the child has its own descriptor
	// Not CommandContext: this process decides when and how it stops.
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--listen", addr, "--log-format", "text")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	d := &daemon{
		cmd: cmd, url: "http://" + addr + "/metrics", log: logPath, done: make(chan struct{}),
		// Compression is handled by hand (get), to see both sizes.
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}},
	}
	go func() { _ = cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.get(ctx); err == nil {
			return d, nil
		} else if time.Now().After(deadline) {
			d.kill()
			return nil, fmt.Errorf("serve did not answer on %s within 30s: %w\n%s", d.url, err, d.tail(30))
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("serve exited at start-up (%s):\n%s", d.cmd.ProcessState, d.tail(30))
		case <-ctx.Done():
			d.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill stops the daemon if it still runs: SIGTERM, then SIGKILL.
func (d *daemon) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the daemon's stderr.
func (d *daemon) tail(n int) string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// scrape is one GET of /metrics.
type scrape struct {
	at, end time.Time
	took    time.Duration // request sent to body read and decompressed
	gzipped int           // bytes on the wire (gzip when the server chose it)
	body    []byte        // decompressed
	reused  bool          // on a kept-alive connection
}

// get fetches /metrics as Prometheus does (Accept-Encoding: gzip) and reads
// and decompresses the whole body.
func (d *daemon) get(ctx context.Context) (scrape, error) {
	var s scrape
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { s.reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, d.url, nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	s.at = time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	s.gzipped, s.body = len(raw), raw
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return s, err
		}
		if s.body, err = io.ReadAll(zr); err != nil {
			return s, err
		}
	}
	s.end = time.Now()
	s.took = s.end.Sub(s.at)
	return s, nil
}

// counts is what the benchmark reads from /metrics, per check.
type counts struct {
	runs   map[string]map[string]float64 // check → outcome → runs
	durSum map[string]float64            // check → seconds of all runs
}

// parseMetrics reads tenantdrift_check_runs_total and the duration sums
// from the text exposition.
func parseMetrics(body []byte) counts {
	c := counts{runs: map[string]map[string]float64{}, durSum: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || (name != "tenantdrift_check_runs_total" && name != "tenantdrift_check_duration_seconds_sum") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		l := map[string]string{}
		for kv := range strings.SplitSeq(labels, ",") {
			k, val, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(val, `"`)
		}
		if name == "tenantdrift_check_duration_seconds_sum" {
			c.durSum[l["check"]] = v
			continue
		}
		if c.runs[l["check"]] == nil {
			c.runs[l["check"]] = map[string]float64{}
		}
		c.runs[l["check"]][l["outcome"]] = v
	}
	return c
}

func (c counts) completed(check string) int {
	return int(c.runs[check]["ok"] + c.runs[check]["drift"])
}

// span is when a check run was certainly executing: between the latest
// moment it can have started (the poll that saw it complete, minus its
// duration) and the last poll before it completed.
type span struct {
	check         string
	from, to      time.Time
	earliestStart time.Time // the earliest it can have started, with a margin for the registry read
}

// mem is one reading of /proc/<pid>/status.
type mem struct {
	rss, hwm int64 // KiB
}

func readMem(pid int) (mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, err
	}
	var m mem
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n
		case "VmHWM":
			m.hwm = n
		}
	}
	return m, nil
}

type result struct {
	checks      []string
	startup     mem     // at the first /metrics answer
	afterRound  []mem   // when every enabled check has completed run k (index k-1)
	afterRef    []mem   // when refCheck completed run k: mid-round, the others still running
	roundMax    []int64 // KiB: the largest VmRSS read after round k-1 was complete, up to and including round k's end
	peak        int64   // KiB: the largest VmHWM or VmRSS read, up to SIGTERM
	skipped     int
	meanDur     map[string]time.Duration
	idle        []scrape
	idleOverlap int // idle GETs that may have overlapped a run
	duringRun   []time.Duration
	gzipped     int
	body        int
	stopTook    time.Duration
	stopCode    int
	inFlight    int // runs still going at SIGTERM (from the daemon's log)
	wall        time.Duration
	base        sample  // audit of registryChecks
	same        *sample // audit of the daemon's checks, when they differ
	loadStart   string
	loadEnd     string
}

// measure drives the daemon through o.runs runs, the timed scrapes and
// SIGTERM.
func measure(ctx context.Context, o options, d *daemon) (*result, error) {
	pid := d.cmd.Process.Pid
	res := &result{meanDur: map[string]time.Duration{}}
	began := time.Now()
	first, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	if res.startup, err = readMem(pid); err != nil {
		return nil, err
	}
	prev := parseMetrics(first.body)
	for name := range prev.runs {
		res.checks = append(res.checks, name)
	}
	slices.Sort(res.checks)
	if !slices.Contains(res.checks, refCheck) {
		return nil, fmt.Errorf("/metrics has no %s runs series (checks: %v)", refCheck, res.checks)
	}
	fmt.Printf("daemon pid %d on %s, checks: %s; waiting for %d completed runs of each (schedule @every %s)\n",
		pid, strings.TrimSuffix(d.url, "/metrics"), strings.Join(res.checks, ", "), o.runs, o.interval)

	roundDone := func(c counts) int {
		n := math.MaxInt
		for _, name := range res.checks {
			n = min(n, c.completed(name))
		}
		return n
	}
	var spans []span
	var polls []scrape
	res.roundMax = make([]int64, o.runs)
	prevPoll := first.at
	// poll scrapes once, records the runs completed since the last poll,
	// and fails on an errored run or a daemon that has gone.
	poll := func() (counts, error) {
		if d.exited() {
			return counts{}, fmt.Errorf("serve exited (%s)", d.cmd.ProcessState)
		}
		s, err := d.get(ctx)
		if err != nil {
			return counts{}, err
		}
		c := parseMetrics(s.body)
		for _, name := range res.checks {
			if n := c.runs[name]["error"]; n > 0 {
				return counts{}, fmt.Errorf("check %s: %v errored run(s)", name, n)
			}
			if done := c.completed(name) - prev.completed(name); done > 0 {
				dur := time.Duration((c.durSum[name] - prev.durSum[name]) / float64(done) * float64(time.Second))
				spans = append(spans, span{check: name, from: s.at.Add(-dur), to: prevPoll,
					earliestStart: prevPoll.Add(-dur - time.Second)})
			}
		}
		prevPoll = s.at
		prev = c
		// VmHWM has been seen below an earlier VmRSS of the same
		// process (the kernel's counters are approximate and its high
		// water mark is updated lazily), so every poll's VmRSS counts
		// towards the peak too.
		m, err := readMem(pid)
		if err != nil {
			return counts{}, err
		}
		res.peak = max(res.peak, m.rss, m.hwm)
		if k := roundDone(c); k < o.runs { // round k+1 is going, or due
			res.roundMax[k] = max(res.roundMax[k], m.rss)
		}
		polls = append(polls, s)
		return c, nil
	}
	sleep := func(t time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(t):
			return nil
		}
	}

	deadline := time.Now().Add(time.Duration(o.runs+2)*o.interval*3 + 2*time.Minute)
	c := prev
	for roundDone(c) < o.runs {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d completed runs of every check after %s", roundDone(c), time.Since(began).Round(time.Second))
		}
		if err := sleep(pollEvery); err != nil {
			return nil, err
		}
		if c, err = poll(); err != nil {
			return nil, err
		}
		if k := c.completed(refCheck); k > len(res.afterRef) && len(res.afterRef) < o.runs {
			m, err := readMem(pid)
			if err != nil {
				return nil, err
			}
			res.peak = max(res.peak, m.rss, m.hwm)
			for len(res.afterRef) < min(k, o.runs) { // a poll can see two runs at once
				res.afterRef = append(res.afterRef, m)
			}
		}
		if k := roundDone(c); k > len(res.afterRound) && len(res.afterRound) < o.runs {
			m, err := readMem(pid)
			if err != nil {
				return nil, err
			}
			res.peak = max(res.peak, m.rss, m.hwm)
			for len(res.afterRound) < min(k, o.runs) {
				res.roundMax[len(res.afterRound)] = max(res.roundMax[len(res.afterRound)], m.rss)
				res.afterRound = append(res.afterRound, m)
			}
		}
	}
	res.wall = time.Since(began)
	for _, name := range res.checks {
		res.skipped += int(c.runs[name]["skipped"])
		res.meanDur[name] = time.Duration(c.durSum[name] / float64(c.completed(name)) * float64(time.Second))
	}
	// Scrapes during the polling phase that fell certainly inside a run.
	for _, p := range polls {
		if slices.ContainsFunc(spans, func(s span) bool { return !p.at.Before(s.from) && !p.end.After(s.to) }) {
			res.duringRun = append(res.duringRun, p.took)
		}
	}

	// The timed scrapes, a second after the last round completed (its
	// history is written after the metrics move).
	if err := sleep(time.Second); err != nil {
		return nil, err
	}
	for range o.scrapes {
		s, err := d.get(ctx)
		if err != nil {
			return nil, err
		}
		s.body = nil
		res.idle = append(res.idle, s)
	}
	last, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	res.gzipped, res.body = last.gzipped, len(last.body)

	// Watch the next round, to tell whether the timed scrapes overlapped
	// it and to find the schedule's next tick.
	mark := len(spans)
	want := roundDone(c) + 1
	for roundDone(c) < want {
		if time.Now().After(deadline) {
			return nil, errors.New("the round after the timed scrapes did not complete")
		}
		if err := sleep(pollEvery); err != nil {
			return nil, err
		}
		if c, err = poll(); err != nil {
			return nil, err
		}
	}
	next := spans[mark].earliestStart
	for _, s := range spans[mark:] {
		if s.earliestStart.Before(next) {
			next = s.earliestStart
		}
	}
	for _, s := range res.idle {
		if s.end.After(next) {
			res.idleOverlap++
		}
	}

	// SIGTERM a second after the following tick, while that round runs. The
	// tick is estimated from when the last round's runs started.
	tick := slices.MinFunc(spans[mark:], func(a, b span) int { return a.from.Compare(b.from) }).from.Add(o.interval)
	for time.Until(tick) < 0 {
		tick = tick.Add(o.interval)
	}
	if err := sleep(time.Until(tick) + time.Second); err != nil {
		return nil, err
	}
	m, err := readMem(pid)
	if err != nil {
		return nil, err
	}
	res.peak = max(res.peak, m.rss, m.hwm)
	sent := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return nil, err
	}
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		return nil, errors.New("serve still running 60s after SIGTERM")
	}
	res.stopTook = time.Since(sent)
	res.stopCode = d.cmd.ProcessState.ExitCode()
	res.inFlight = inFlight(d.tail(1000))
	return res, nil
}

// inFlight counts the runs that ended after the daemon logged that it was
// shutting down: those in flight at SIGTERM.
func inFlight(log string) int {
	_, after, ok := strings.Cut(log, `msg="shutting down"`)
	if !ok {
		return 0
	}
	return strings.Count(after, `msg="check finished"`) + strings.Count(after, `msg="check failed"`) +
		strings.Count(after, `msg="run abandoned`)
}

func (r *result) print(o options) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	mb := func(k int64) string { return fmt.Sprintf("%.1f MiB", float64(k)/mib) }
	idle := make([]time.Duration, len(r.idle))
	reused := 0
	for i, s := range r.idle {
		idle[i] = s.took
		if s.reused {
			reused++
		}
	}
	med, p95 := percentile(idle, 50), percentile(idle, 95)
	rss2, rssN := r.afterRound[1].rss, r.afterRound[o.runs-1].rss
	growth := rssN - rss2
	growthPct := 100 * float64(growth) / float64(rss2)
	// A reading at the end of a round depends on what the runtime has
	// returned to the kernel by then, so the round's largest reading is
	// compared too: flat means neither grew by flatPct or more.
	max2, maxN := r.roundMax[1], r.roundMax[o.runs-1]
	maxGrowth := maxN - max2
	maxGrowthPct := 100 * float64(maxGrowth) / float64(max2)
	flat := growthPct < flatPct && maxGrowthPct < flatPct
	slowest := slices.MaxFunc(r.checks, func(a, b string) int { return int(r.meanDur[a] - r.meanDur[b]) })

	fmt.Printf("\n%d runs of each of %d checks in %s (%d skipped runs: a tick found the previous run still going)\n",
		o.runs, len(r.checks), r.wall.Round(time.Second), r.skipped)
	fmt.Printf("mean run duration per check:")
	for _, name := range r.checks {
		fmt.Printf(" %s %s;", name, r.meanDur[name].Round(time.Millisecond))
	}
	fmt.Printf("\n\n| run k | VmRSS when every check has completed run k | VmHWM then | largest VmRSS read during round k | VmRSS when %s completed run k (mid-round) |\n|---|---|---|---|---|\n", refCheck)
	for k := range o.runs {
		fmt.Printf("| %d | %s | %s | %s | %s |\n", k+1, mb(r.afterRound[k].rss), mb(r.afterRound[k].hwm), mb(r.roundMax[k]), mb(r.afterRef[k].rss))
	}

	// One column per baseline audit: the five registry checks, and the
	// daemon's own checks when they differ.
	cols := []string{"one-shot audit, 5 registry checks"}
	bases := []sample{r.base}
	if r.same != nil {
		cols = append(cols, fmt.Sprintf("one-shot audit, the daemon's %d checks", len(r.checks)))
		bases = append(bases, *r.same)
	}
	row := func(what, ours string, base func(sample) string, target string) {
		fmt.Printf("| %s | %s |", what, ours)
		for _, b := range bases {
			if base != nil {
				fmt.Printf(" %s", base(b))
			}
			fmt.Printf(" |")
		}
		if target != "" {
			fmt.Printf(" %s", target)
		}
		fmt.Printf(" |\n")
	}
	fmt.Printf("\n| measurement | tenantdrift serve | %s | target |\n|---|---|%s---|\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	under := fmt.Sprintf("< %d MiB", rssTarget)
	row("resident memory at start-up (first /metrics answer)", mb(r.startup.rss), nil, "")
	row("VmRSS after run 2 (every check has completed 2 runs)", mb(rss2), nil, under)
	row(fmt.Sprintf("VmRSS after run %d (every check has completed %d runs)", o.runs, o.runs), mb(rssN), nil, under)
	row(fmt.Sprintf("growth, run 2 → run %d", o.runs), fmt.Sprintf("%+.1f MiB (%+.1f%%)", float64(growth)/mib, growthPct), nil,
		fmt.Sprintf("flat: < +%.0f%%", flatPct))
	row("largest VmRSS read during round 2", mb(max2), nil, "")
	row(fmt.Sprintf("largest VmRSS read during round %d", o.runs), mb(maxN), nil, "")
	row(fmt.Sprintf("growth of the largest, round 2 → round %d", o.runs), fmt.Sprintf("%+.1f MiB (%+.1f%%)", float64(maxGrowth)/mib, maxGrowthPct), nil,
		fmt.Sprintf("flat: < +%.0f%%", flatPct))
	row("peak RSS (serve: largest VmHWM or VmRSS read; audit: ru_maxrss)", mb(r.peak), func(b sample) string { return mb(b.maxRSS) }, under)
	row(fmt.Sprintf("time for one pass (serve: mean run of the slowest check, %s, all running concurrently; audit: wall, checks in sequence)", slowest),
		r.meanDur[slowest].Round(time.Millisecond).String(), func(b sample) string { return b.wall.Round(time.Millisecond).String() }, "")
	row(fmt.Sprintf("GET /metrics, %d sequential, keep-alive (%d reused): median", len(idle), reused), ms(med), nil, "< 20 ms")
	row("same: p95", ms(p95), nil, "< 20 ms")
	row("/metrics body", fmt.Sprintf("%.1f KiB (%.1f KiB gzip)", float64(r.body)/1024, float64(r.gzipped)/1024), nil, "")
	if len(r.duringRun) > 0 {
		row(fmt.Sprintf("GET /metrics while a check run was in progress: median (p95), %d polls", len(r.duringRun)),
			fmt.Sprintf("%s (%s)", ms(percentile(r.duringRun, 50)), ms(percentile(r.duringRun, 95))), nil, "")
	}
	row(fmt.Sprintf("SIGTERM to exit (%d runs in flight; exit code %d)", r.inFlight, r.stopCode), r.stopTook.Round(time.Millisecond).String(), nil,
		"≤ 10 s (shutdown_grace)")

	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Println()
	fmt.Printf("%s: resident memory under %d MiB (after run 2: %s; after run %d: %s; peak %s)\n",
		verdict(max(rss2, rssN, r.peak) < rssTarget*mib), rssTarget, mb(rss2), o.runs, mb(rssN), mb(r.peak))
	fmt.Printf("%s: flat from run 2 to run %d, i.e. neither the VmRSS after the run nor the largest VmRSS during it grew by %.0f%% of its run-2 value or more (%+.1f MiB, %+.1f%%; largest %+.1f MiB, %+.1f%%)\n",
		verdict(flat), o.runs, flatPct, float64(growth)/mib, growthPct, float64(maxGrowth)/mib, maxGrowthPct)
	fmt.Printf("%s: /metrics scrape under 20 ms (median %s, p95 %s, %d of %d GETs possibly overlapping a check run)\n",
		verdict(p95 < scrapeLimit), ms(med), ms(p95), r.idleOverlap, len(idle))
	fmt.Printf("%s: exit within the 10 s grace after SIGTERM (%s, exit code %d, %d runs in flight)\n",
		verdict(r.stopTook <= 10*time.Second && r.stopCode == 0), r.stopTook.Round(time.Millisecond), r.stopCode, r.inFlight)
	fmt.Printf("\nload average at start: %s; at end: %s\n", r.loadStart, r.loadEnd)
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
