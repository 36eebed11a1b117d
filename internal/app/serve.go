package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
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
	"github.com/tenantdrift/tenantdrift/internal/notify"
	"github.com/tenantdrift/tenantdrift/internal/repair"
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
	repairs   *repair.Metrics
	// repairNews keeps a repair that keeps failing, or a breaker that
	// stays open, from being announced every run.
	repairNews repairNews
	intervals  map[string]time.Duration
	started    time.Time

	storeMu  sync.Mutex // held while opening the store: I/O, so apart from mu
	store    *state.Store
	storeErr error

	mu       sync.Mutex
	tenants  int
	findings map[string][]check.Finding // last completed run's findings per check

	// lostLead is set when this replica loses leadership and cleared when
	// it leads again or sees another replica lead (runCheck).
	lostLead atomic.Bool

	healthMu   sync.Mutex // guards health and unrecorded; never held across I/O
	healthIO   sync.Mutex // held by the one goroutine recording or posting health messages
	health     *health
	unrecorded []healthPost // health messages the store has not taken yet, oldest first
}

// healthPost is a degraded or recovered message the state store could not
// take when it was due: posted straight to Slack (outcome "sent" or
// "uncertain"), or not yet posted (outcome ""), in which case it goes
// through the outbox once the store answers.
type healthPost struct {
	item    state.OutboxItem
	at      time.Time
	outcome string
	ts      string
	reason  string
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
	// The background loops watch ctx; they are waited for (below) before
	// the deferred close closes the pools they use.
	var bg sync.WaitGroup
	bg.Go(func() { d.followHistory(ctx) })
	if d.notifier != nil {
		bg.Go(func() { d.deliverLoop(ctx) })
	}
	if cfg.IsRunOnStart() {
		bg.Go(func() { d.runOnStart(ctx, sched) })
	}

	<-ctx.Done()
	grace := cfg.Server.ShutdownGrace.D()
	deadline := time.Now().Add(grace)
	r.logger.Info("shutting down", "grace", grace)
	bgDone := make(chan struct{})
	go func() { bg.Wait(); close(bgDone) }()
	code := ExitOK
	if err := sched.Stop(grace); err != nil {
		r.logger.Error("checks still running at shutdown", "err", err)
		code = ExitError
	}
	// Within the same grace as the checks: they stopped side by side.
	if !waitUntil(bgDone, deadline) {
		r.logger.Error("background tasks still running at shutdown", "grace", grace)
		code = ExitError
	}
	stopElect()
	<-electDone
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = srv.Shutdown(shutCtx) // in-flight scrapes finish or are cut at the grace
	return code
}

// waitUntil waits for done to close until deadline and reports whether
// it did.
func waitUntil(done <-chan struct{}, deadline time.Time) bool {
	select {
	case <-done:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
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
	rm, err := repair.NewMetrics(reg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// The Slack metrics exist without Slack too (at zero), so the
	// alert rules and dashboards see the same series everywhere.
	nm, err := notify.NewMetrics(reg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	d := &daemon{
		r: r, cfg: cfg, instances: instances, landlord: pool, stateDB: stateDB, metrics: m, registry: reg, repairs: rm,
		intervals: map[string]time.Duration{}, started: r.env.Now(), findings: map[string][]check.Finding{},
		notifier: r.newNotifier(cfg), health: newHealth(cfg.Slack.DegradedAfter),
	}
	if d.notifier != nil {
		d.notifier.metrics = nm
	}
	lockCfg := stateDB.Config().ConnConfig.Copy()
	d.elector = leader.New(leader.Options{
		Connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, lockCfg) },
		Heartbeat: cfg.Leader.Heartbeat.D(),
		Logger:    r.logger,
		OnChange: func(leading bool) {
			m.SetLeader(leading)
			if !leading {
				d.lostLead.Store(true)
			}
		},
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
// export, then health (degraded or recovered) and Slack delivery.
func (d *daemon) runCheck(ctx context.Context, inst check.Instance) {
	term, ok := d.elector.Leading()
	if !ok {
		// A follower does nothing; but a replica that cannot even reach
		// the database to contend for the lock could not run the check,
		// and says so in its metrics.
		lerr := d.elector.LastError()
		if lerr != nil {
			d.metrics.ObserveRun(check.Result{Name: inst.Name, Status: check.StatusError,
				Err: fmt.Errorf("landlord unreachable: %w", landlord.Describe(lerr))}, d.r.env.Now())
		}
		// A replica that cannot reach the database is degraded, whether it
		// led before (leadership lost) or never did (nothing runs at all
		// when no replica can); reaching it while another replica holds
		// the lock is a normal handover.
		obs := []observation{{cond: condLandlord}}
		if lerr != nil && !d.lostLead.Load() {
			obs[0].err = fmt.Errorf("cannot reach the database to run the checks: %w", landlord.Describe(lerr))
		}
		if d.lostLead.Load() {
			lead := observation{cond: condLeadership}
			if lerr != nil {
				lead.err = fmt.Errorf("leadership lost: cannot reach the database: %w", landlord.Describe(lerr))
			} else {
				d.lostLead.Store(false)
			}
			obs = append(obs, lead)
		}
		d.updateHealth(ctx, obs...)
		return
	}
	d.lostLead.Store(false)
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
	if res.Err == nil {
		res = d.repair(ctx, inst, res)
		finished = d.r.env.Now()
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

	// Health: a run that errored because the landlord is down says
	// nothing about the check itself.
	obs := []observation{{cond: condLeadership}}
	if res.Err != nil {
		if err := d.pingLandlord(ctx); err != nil {
			obs = append(obs, observation{cond: condLandlord, err: err})
		} else {
			obs = append(obs, observation{cond: condLandlord}, observeCheck(inst.Name, res.Err))
		}
	} else {
		obs = append(obs, observation{cond: condLandlord}, observeCheck(inst.Name, nil))
	}

	store, err := d.openStore(ctx)
	if err != nil {
		logger.Error("state store unavailable: run not recorded", "err", err)
		d.updateHealth(ctx, append(obs, observation{cond: condStore, err: storeDown(err)})...)
		return
	}
	if _, err := store.RecordRunWithOutbox(context.WithoutCancel(ctx), res, started, finished, d.notifier.plan(inst.Name, finished)); err != nil {
		logger.Error("record run", "err", err)
		d.updateHealth(ctx, append(obs, observation{cond: condStore, err: storeDown(err)})...)
		return
	}
	d.updateHealth(ctx, append(obs, observation{cond: condStore})...)
	d.deliver(ctx, store)
}

// repair applies what the repair policy allows to the drift a completed
// run of inst found, and returns the result to record: that of the
// verification run when repairs were written, so a repaired finding is
// never announced. The breaker counts every check's latest findings.
func (d *daemon) repair(ctx context.Context, inst check.Instance, res check.Result) check.Result {
	if !d.cfg.Repair.Enabled || d.cfg.Repair.ModeOf(inst.Name) != config.ModeApply || len(res.Findings) == 0 {
		return res
	}
	logger := d.r.logger.With("check", inst.Name, "component", "repair")
	store, err := d.openStore(ctx)
	if err != nil {
		logger.Error("state store unavailable: no repairs without an audit log", "err", err)
		return res
	}
	reg, err := tenant.Resolve(ctx, d.landlord, d.cfg.Registry, fieldsFor(d.cfg, d.instances))
	if err != nil {
		logger.Error("registry layout", "err", landlord.Describe(err))
		return res
	}
	d.mu.Lock()
	tenants := d.tenants
	d.mu.Unlock()
	if tenants < 0 {
		logger.Warn("registry not counted in this run: no repairs without a complete observation")
		return res
	}
	// The breaker weighs every check's drift: this run's, and the other
	// checks' open findings in the shared history (complete after a
	// restart or a handover, unlike this replica's memory).
	open, err := store.OpenFindings(ctx)
	if err != nil {
		logger.Error("read open findings: no repairs without the breaker's input", "err", err)
		return res
	}
	results := []check.Result{res}
	others := map[string][]check.Finding{}
	for _, f := range open {
		if f.Check != inst.Name {
			others[f.Check] = append(others[f.Check], f.Finding)
		}
	}
	for name, fs := range others {
		results = append(results, check.Result{Name: name, Findings: fs})
	}
	e := d.r.newRepairEngine(d.cfg, d.landlord, reg, store, "tenantdrift serve")
	var after *check.Result
	rep, err := e.run(ctx, results, tenants, true, []string{inst.Name}, func(ctx context.Context, _ []string) ([]check.Result, error) {
		again := d.execute(ctx, inst)
		after = &again
		return []check.Result{again}, nil
	})
	d.repairs.Observe(rep)
	if err != nil {
		logger.Error("repair", "err", err)
	}
	if err := d.notifier.announceRepairs(ctx, store, d.repairNews.filter(inst.Name, rep)); err != nil {
		logger.Error("announce repairs", "err", err)
	}
	if rep != nil {
		n := rep.Counts()
		logger.Info("repair run finished", "applied", n[repair.StatusApplied], "skipped", n[repair.StatusSkipped],
			"conflict", n[repair.StatusConflict], "failed", n[repair.StatusFailed], "planned", n[repair.StatusPlanned])
	}
	if after != nil && after.Err == nil {
		return *after
	}
	return res
}

// pingLandlord returns why the landlord does not answer, or nil.
func (d *daemon) pingLandlord(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.landlord.Ping(ctx); err != nil {
		return fmt.Errorf("landlord unreachable: %w", landlord.Describe(err))
	}
	return nil
}

func storeDown(err error) error {
	return fmt.Errorf("state store unreachable: %w", landlord.Describe(err))
}

// updateHealth feeds obs to the health tracker and announces a change, one
// "degraded" message when the first condition starts to hold and one
// "recovered" message when the last one ends: through the outbox when the
// state store takes it, else straight to Slack (best effort), recorded in
// the outbox once the store answers again. A message that could not be
// posted either way waits in memory and goes through the outbox later, so
// a recovery is not lost while the process lives.
func (d *daemon) updateHealth(ctx context.Context, obs ...observation) {
	d.healthMu.Lock()
	ev := d.health.observe(d.r.env.Now(), obs...)
	d.metrics.SetDegraded(d.health.degraded())
	switch ev.Kind {
	case state.KindDegraded:
		reason := d.r.redactor.String(ev.Reason)
		d.r.logger.Error("tenantdrift degraded", "reason", reason)
		d.unrecorded = append(d.unrecorded, healthPost{at: d.r.env.Now(),
			item: state.OutboxItem{Kind: state.KindDegraded, Payload: notify.Payload{Reason: reason}}})
	case state.KindRecovered:
		d.r.logger.Info("tenantdrift recovered", "after", ev.After.Round(time.Second))
		d.unrecorded = append(d.unrecorded, healthPost{at: d.r.env.Now(),
			item: state.OutboxItem{Kind: state.KindRecovered, Payload: notify.Payload{AfterSeconds: max(int64(ev.After.Seconds()), 1)}}})
	}
	if d.notifier == nil {
		d.unrecorded = nil
	}
	waiting := len(d.unrecorded) > 0
	d.healthMu.Unlock()
	if !waiting {
		return
	}
	// One goroutine at a time talks to the store and Slack about health,
	// outside healthMu, so that a slow Slack never holds up the other
	// checks' runs; the others leave their messages to it, or to the next
	// update.
	if !d.healthIO.TryLock() {
		return
	}
	defer d.healthIO.Unlock()
	d.flushHealth(ctx)
}

// flushHealth moves the waiting health messages into the store's outbox,
// in order (posted ones as finished rows, the others as pending items),
// and delivers; when the store cannot take them, it posts them straight
// to Slack and keeps them for later. The caller holds d.healthIO: only it
// removes messages, from the front, while others may append.
func (d *daemon) flushHealth(ctx context.Context) {
	d.healthMu.Lock()
	pending := slices.Clone(d.unrecorded)
	d.healthMu.Unlock()

	store, err := d.openStore(ctx)
	if err == nil {
		recorded := 0
		for _, p := range pending {
			if p.outcome == "" {
				err = store.Enqueue(ctx, p.item)
			} else {
				err = store.RecordDelivered(ctx, p.item, p.at, p.outcome, p.ts, p.reason)
			}
			if err != nil {
				break
			}
			recorded++
		}
		d.healthMu.Lock()
		d.unrecorded = d.unrecorded[recorded:]
		d.healthMu.Unlock()
		if err == nil {
			d.deliver(ctx, store)
			return
		}
		pending = pending[recorded:]
	}
	d.r.logger.Warn("state store cannot take tenantdrift's health messages: posting them directly", "err", err)
	for i, p := range pending {
		if p.outcome != "" {
			continue
		}
		outcome, ts, reason := d.notifier.postDirect(ctx, p.item)
		if outcome != directSent {
			d.r.logger.Error("post health message to slack", "kind", p.item.Kind, "outcome", outcome, "err", reason)
		}
		d.healthMu.Lock()
		q := &d.unrecorded[i]
		q.outcome, q.ts, q.reason = outcome, ts, reason
		d.healthMu.Unlock()
	}
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
