package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/landlord"
	"github.com/tenantdrift/tenantdrift/internal/leader"
	"github.com/tenantdrift/tenantdrift/internal/metrics"
	"github.com/tenantdrift/tenantdrift/internal/schedule"
	"github.com/tenantdrift/tenantdrift/internal/state"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// registryChecks are the checks whose findings make a registry entry
// incomplete or inconsistent, for tenantdrift_registry_coverage_ratio.
var registryChecks = []string{config.CheckRegistryMissing, config.CheckRegistryDuplicate, config.CheckFieldMismatch, config.CheckProvisioningStuck}

func runServe(ctx context.Context, r *runtime, args []string) int {
	var lf logFlags
	var file, listen string
	fs := r.newFlagSet("serve", "serve [--config FILE] [--listen ADDR]", &lf)
	fs.StringVar(&file, "config", "", "config file (env TENANTDRIFT_CONFIG)")
	fs.StringVar(&listen, "listen", "", "address for /metrics, /healthz and /readyz (env TENANTDRIFT_LISTEN, server.listen; default "+config.DefaultListen+")")
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	cfg, ok := r.loadConfig("serve", file, true)
	if !ok {
		return ExitError
	}
	if listen == "" {
		listen, _ = r.env.LookupEnv("TENANTDRIFT_LISTEN")
	}
	if listen == "" {
		listen = cfg.Server.Listen
	}
	return r.serve(ctx, cfg, listen)
}

// daemon is serve's state: everything built once, in one place.
type daemon struct {
	r         *runtime
	cfg       *config.Config
	instances []check.Instance
	landlord  *pgxpool.Pool
	stateDB   *pgxpool.Pool
	metrics   *metrics.Metrics
	registry  *prometheus.Registry
	elector   *leader.Elector
	notifier  *notifier // nil without Slack
	intervals map[string]time.Duration
	started   time.Time

	storeMu  sync.Mutex // held while opening the store: I/O, so apart from mu
	store    *state.Store
	storeErr error

	mu       sync.Mutex
	tenants  int
	findings map[string][]check.Finding // last completed run's findings per check
}

// serve runs the daemon until ctx ends, then shuts down within the grace.
func (r *runtime) serve(ctx context.Context, cfg *config.Config, listen string) int {
	instances, err := checks.Build(cfg, nil)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift serve: %v\n", err)
		return ExitError
	}
	d, err := r.newDaemon(cfg, instances)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift serve: %v\n", err)
		return ExitError
	}
	defer d.close()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift serve: listen on %s: %v\n", listen, err)
		return ExitError
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // returns ErrServerClosed on Shutdown
	r.logger.Info("serving", "addr", ln.Addr().String(), "checks", len(instances))

	sched := schedule.New(schedule.Options{
		Logger: r.logger,
		OnSkip: d.skipped,
		// The scheduler logs a panic once; count it as an errored run.
		OnPanic: func(name string, v any) {
			d.metrics.ObserveRun(check.Result{Name: name, Status: check.StatusError, Err: fmt.Errorf("panicked: %v", v)}, r.env.Now())
		},
	})
	for _, inst := range instances {
		spec, err := schedule.Parse(cfg.ScheduleOf(inst.Name))
		if err != nil { // validated at load; kept for safety
			fmt.Fprintf(r.stderr, "tenantdrift serve: checks.%s.schedule: %v\n", inst.Name, err)
			return ExitError
		}
		d.intervals[inst.Name] = spec.Interval()
		if err := sched.Add(schedule.Job{Name: inst.Name, Schedule: spec, Timeout: inst.Timeout, Run: func(ctx context.Context) { d.runCheck(ctx, inst) }}); err != nil {
			fmt.Fprintf(r.stderr, "tenantdrift serve: %v\n", err)
			return ExitError
		}
	}
	sched.Add(schedule.Job{Name: "maintenance", Schedule: mustParse("@every 1h"), Timeout: time.Minute, Run: d.maintain}) //nolint:errcheck // a fixed, valid job

	electCtx, stopElect := context.WithCancel(ctx)
	electDone := make(chan struct{})
	go func() { defer close(electDone); d.elector.Run(electCtx) }()
	sched.Start(ctx)
	go d.followHistory(ctx)
	if d.notifier != nil {
		go d.deliverLoop(ctx)
	}
	if cfg.IsRunOnStart() {
		go d.runOnStart(ctx, sched)
	}

	<-ctx.Done()
	grace := cfg.Server.ShutdownGrace.D()
	r.logger.Info("shutting down", "grace", grace)
	code := ExitOK
	if err := sched.Stop(grace); err != nil {
		r.logger.Error("checks still running at shutdown", "err", err)
		code = ExitError
	}
	stopElect()
	<-electDone
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = srv.Shutdown(shutCtx) // in-flight scrapes finish or are cut at the grace
	return code
}

func mustParse(spec string) schedule.Schedule {
	s, err := schedule.Parse(spec)
	if err != nil {
		panic(err)
	}
	return s
}

func (r *runtime) newDaemon(cfg *config.Config, instances []check.Instance) (*daemon, error) {
	pool, err := landlord.Pool(cfg.Landlord, cfg.Registry.TimeZone)
	if err != nil {
		return nil, err
	}
	stateDB := pool
	if cfg.State.DSN != "" {
		sc := config.Landlord{DSN: cfg.State.DSN, ConnectTimeout: cfg.Landlord.ConnectTimeout, StatementTimeout: cfg.Landlord.StatementTimeout}
		if stateDB, err = landlord.Pool(sc, "UTC"); err != nil {
			pool.Close()
			return nil, fmt.Errorf("state.dsn: %w", err)
		}
	}
	names := make([]string, len(instances))
	for i, inst := range instances {
		names[i] = inst.Name
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Checks: names, Version: r.env.Version, PerTenant: cfg.Metrics.PerTenant, PerTenantCap: cfg.Metrics.PerTenantCap})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	d := &daemon{
		r: r, cfg: cfg, instances: instances, landlord: pool, stateDB: stateDB, metrics: m, registry: reg,
		intervals: map[string]time.Duration{}, started: r.env.Now(), findings: map[string][]check.Finding{},
		notifier: r.newNotifier(cfg),
	}
	lockCfg := stateDB.Config().ConnConfig.Copy()
	d.elector = leader.New(leader.Options{
		Connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, lockCfg) },
		Heartbeat: cfg.Leader.Heartbeat.D(),
		Logger:    r.logger,
		OnChange:  m.SetLeader,
	})
	return d, nil
}

func (d *daemon) close() {
	if d.stateDB != d.landlord {
		d.stateDB.Close()
	}
	d.landlord.Close()
}

// runOnStart runs every check once as soon as this replica leads.
func (d *daemon) runOnStart(ctx context.Context, sched *schedule.Scheduler) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !d.elector.IsLeader() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	for _, inst := range d.instances {
		sched.RunNow(inst.Name)
	}
}

// followHistory keeps a follower's findings gauges and timestamps on the
// shared history, so a scrape of any replica shows the drift.
func (d *daemon) followHistory(ctx context.Context) {
	t := time.NewTicker(d.cfg.Leader.Heartbeat.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.elector.IsLeader() {
			continue
		}
		store, err := d.openStore(ctx)
		if err != nil {
			continue
		}
		open, err := store.OpenFindings(ctx)
		if err != nil {
			continue
		}
		runs, err := store.LastRuns(ctx)
		if err != nil {
			continue
		}
		success, err := store.LastSuccess(ctx)
		if err != nil {
			continue
		}
		// Reading took time: if this replica became the leader meanwhile,
		// its own runs are fresher than what was read.
		if d.elector.IsLeader() {
			continue
		}
		byCheck := map[string][]check.Finding{}
		for _, f := range open {
			byCheck[f.Check] = append(byCheck[f.Check], f.Finding)
		}
		for _, inst := range d.instances {
			d.metrics.ShowHistory(inst.Name, byCheck[inst.Name], runs[inst.Name].FinishedAt, success[inst.Name])
		}
		d.r.logger.Debug("follower metrics refreshed from history", "open_findings", len(open))
	}
}

// openStore opens (and migrates) the state store the first time it can.
func (d *daemon) openStore(ctx context.Context) (*state.Store, error) {
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	if d.store != nil {
		return d.store, nil
	}
	s, err := state.Open(ctx, d.stateDB, d.cfg.State.Schema, d.r.env.Now)
	d.storeErr = err
	if err != nil {
		return nil, err
	}
	d.store = s
	return s, nil
}

// runCheck is one scheduled run: only the leader runs, and its run stops
// the moment leadership is lost. The flow is synchronous: run, record,
// export.
func (d *daemon) runCheck(ctx context.Context, inst check.Instance) {
	term, ok := d.elector.Leading()
	if !ok {
		// A follower does nothing; but a replica that cannot even reach
		// the database to contend for the lock could not run the check,
		// and says so in its metrics.
		if err := d.elector.LastError(); err != nil {
			d.metrics.ObserveRun(check.Result{Name: inst.Name, Status: check.StatusError,
				Err: fmt.Errorf("landlord unreachable: %w", landlord.Describe(err))}, d.r.env.Now())
		}
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(term, cancel)
	defer stop()

	logger := d.r.logger.With("check", inst.Name)
	started := d.r.env.Now()
	res := d.execute(ctx, inst)
	finished := d.r.env.Now()
	if term.Err() != nil {
		logger.Warn("run abandoned: leadership lost")
		return
	}
	d.metrics.ObserveRun(res, finished)
	if res.Err != nil {
		logger.Error("check failed", "err", res.Err)
	} else {
		logger.Info("check finished", "findings", len(res.Findings), "duration", res.Duration)
	}
	d.mu.Lock()
	if res.Err == nil {
		d.findings[inst.Name] = res.Findings
	}
	var all []check.Finding
	for _, fs := range d.findings {
		all = append(all, fs...)
	}
	tenants := d.tenants
	d.mu.Unlock()
	if tenants >= 0 {
		d.metrics.SetRegistry(tenants, metrics.Coverage(tenants, all, registryChecks))
	}
	store, err := d.openStore(ctx)
	if err != nil {
		logger.Error("state store unavailable: run not recorded", "err", err)
		return
	}
	if _, err := store.RecordRunWithOutbox(context.WithoutCancel(ctx), res, started, finished, d.notifier.plan(inst.Name, finished)); err != nil {
		logger.Error("record run", "err", err)
		return
	}
	d.deliver(ctx, store)
}

// deliverLoop drains the Slack outbox every slackDeliveryInterval while
// this replica leads: retries, and items a previous leader left behind.
func (d *daemon) deliverLoop(ctx context.Context) {
	t := time.NewTicker(slackDeliveryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.elector.IsLeader() {
			continue
		}
		store, err := d.openStore(ctx)
		if err != nil {
			continue
		}
		d.deliver(ctx, store)
	}
}

// deliver drains the Slack outbox, if Slack is configured.
func (d *daemon) deliver(ctx context.Context, store *state.Store) {
	if d.notifier == nil {
		return
	}
	if err := d.notifier.deliver(ctx, store, d.r.env.Now); err != nil {
		d.r.logger.Error("deliver slack notifications", "err", err)
	}
}

// execute resolves the registry (so layout and landlord changes are picked
// up) and runs one check.
func (d *daemon) execute(ctx context.Context, inst check.Instance) check.Result {
	reg, err := tenant.Resolve(ctx, d.landlord, d.cfg.Registry, fieldsFor(d.cfg, d.instances))
	if err != nil {
		return check.Result{Name: inst.Name, Status: check.StatusError, Err: fmt.Errorf("registry layout: %w", landlord.Describe(err))}
	}
	n, err := reg.Count(ctx, d.landlord)
	d.mu.Lock()
	if err != nil {
		d.tenants = -1
	} else {
		d.tenants = n
	}
	d.mu.Unlock()
	lc := d.landlord.Config().ConnConfig.Config
	env := check.Env{DB: d.landlord, Registry: reg, Now: d.r.env.Now(), Landlord: &lc, Logger: d.r.logger}
	return check.RunOne(ctx, inst, env, d.r.logger)
}

func (d *daemon) skipped(name string) {
	d.metrics.ObserveSkipped(name)
	d.r.logger.Warn("run skipped: the previous run is still going", "check", name)
	if store, err := d.openStore(context.Background()); err == nil {
		if err := store.RecordSkipped(context.Background(), name, d.r.env.Now()); err != nil {
			d.r.logger.Error("record skipped run", "check", name, "err", err)
		}
	}
}

// maintain prunes old history (leader only).
func (d *daemon) maintain(ctx context.Context) {
	if !d.elector.IsLeader() {
		return
	}
	store, err := d.openStore(ctx)
	if err != nil {
		return
	}
	f, r, err := store.Prune(ctx, d.cfg.State.Retention.D())
	if err != nil {
		d.r.logger.Error("prune history", "err", err)
		return
	}
	d.r.logger.Info("pruned history", "findings", f, "runs", r)
}

func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ok: alive, %d goroutines\n", goruntime.NumGoroutine())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if reason := d.notReady(req.Context()); reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", reason)
			return
		}
		role := "follower"
		if d.elector.IsLeader() {
			role = "leader"
		}
		fmt.Fprintf(w, "ready: %s, every check succeeded within twice its interval\n", role)
	})
	return mux
}

// notReady says why the replica is not ready, or "": the state store must
// answer, and no check's last success (in the shared history) may be older
// than twice its interval, unless start-up is still within that interval.
func (d *daemon) notReady(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	store, err := d.openStore(ctx)
	if err != nil {
		return "state store unreachable: " + landlord.Describe(err).Error()
	}
	if err := store.Ping(ctx); err != nil {
		return "state store unreachable: " + landlord.Describe(err).Error()
	}
	last, err := store.LastSuccess(ctx)
	if err != nil {
		return "state store unreachable: " + landlord.Describe(err).Error()
	}
	now := d.r.env.Now()
	for _, inst := range d.instances {
		iv := d.intervals[inst.Name]
		if iv <= 0 {
			continue
		}
		t, ok := last[inst.Name]
		if !ok {
			if now.Sub(d.started) > 2*iv {
				return fmt.Sprintf("check %s has not succeeded since start-up %s ago", inst.Name, now.Sub(d.started).Round(time.Second))
			}
			continue
		}
		if age := now.Sub(t); age > 2*iv && now.Sub(d.started) > iv {
			return fmt.Sprintf("check %s last succeeded %s ago (interval %s)", inst.Name, age.Round(time.Second), iv)
		}
	}
	return ""
}
