package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/audit"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/landlord"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/leader"
	"github.com/tenantdrift/tenantdrift/internal/probe"
	"github.com/tenantdrift/tenantdrift/internal/repair"
	"github.com/tenantdrift/tenantdrift/internal/state"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

func runRepair(ctx context.Context, r *runtime, args []string) int {
	var lf logFlags
	var file, format string
	var apply, noNotify bool
	fs := r.newFlagSet("repair", "repair [--config FILE] [--apply] [--format table|json] [--no-notify]", &lf)
	fs.StringVar(&file, "config", "", "config file (env TENANTDRIFT_CONFIG)")
	fs.BoolVar(&apply, "apply", false, "apply what the policy allows (repair.enabled and mode apply); without it, only print the plan")
	fs.StringVar(&format, "format", repair.FormatTable, "output format: table or json")
	fs.BoolVar(&noNotify, "no-notify", false, "do not announce applied or failed repairs in Slack, even when Slack is configured")
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	if format != repair.FormatTable && format != repair.FormatJSON {
		fmt.Fprintf(r.stderr, "tenantdrift repair: invalid --format %q (use table or json)\n", format)
		return ExitError
	}
	cfg, ok := r.loadConfig("repair", file, true)
	if !ok {
		return ExitError
	}
	rep, err := r.repairOnce(ctx, cfg, apply, !noNotify)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift repair: %v\n", err)
		if rep == nil {
			return ExitError
		}
	}
	var buf bytes.Buffer
	if werr := repair.Write(&buf, format, rep); werr != nil {
		fmt.Fprintf(r.stderr, "tenantdrift repair: write report: %v\n", werr)
		return ExitError
	}
	if _, werr := r.stdout.Write(buf.Bytes()); werr != nil {
		return ExitError
	}
	n := rep.Counts()
	switch {
	case err != nil || n[repair.StatusFailed] > 0:
		return ExitError
	case n[repair.StatusPlanned]+n[repair.StatusSkipped]+n[repair.StatusConflict] > 0:
		return ExitDrift
	}
	return ExitOK
}

// repairOnce observes the registry with every enabled check, then plans
// and (with apply) applies the repairs. A non-nil report with an error
// means the run was partial: the report shows what it did.
func (r *runtime) repairOnce(ctx context.Context, cfg *config.Config, apply, announce bool) (*repair.Report, error) {
	if cfg.Registry.Preset != config.PresetLaravel {
		return nil, fmt.Errorf("repair writes the laravel preset's tables only; registry.preset is %s", cfg.Registry.Preset)
	}
	if apply && cfg.State.DSN != "" {
		return nil, errors.New("repair --apply commits each repair together with its audit-log row, so the state store must live in the landlord database: unset state.dsn")
	}
	instances, err := checks.Build(cfg, nil)
	if err != nil {
		return nil, err
	}
	pool, err := landlord.Connect(ctx, cfg.Landlord, cfg.Registry.TimeZone)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	reg, err := tenant.Resolve(ctx, pool, cfg.Registry, fieldsFor(cfg, instances))
	if err != nil {
		return nil, fmt.Errorf("registry layout: %w", err)
	}
	var store *state.Store
	if apply {
		// Only the leader repairs: a serve that leads repairs after its
		// own runs, and two appliers would each spend their own cap.
		release, err := leadFor(ctx, pool)
		if err != nil {
			return nil, err
		}
		defer release()
		if store, err = state.Open(ctx, pool, cfg.State.Schema, r.env.Now); err != nil {
			return nil, fmt.Errorf("open the state store for the repair audit log: %w", err)
		}
	}
	landlordCfg := pool.Config().ConnConfig.Config
	env := check.Env{DB: pool, Registry: reg, Landlord: &landlordCfg, Logger: r.logger}
	run := func(ctx context.Context, names []string) *audit.Report {
		var only []check.Instance
		for _, in := range instances {
			if len(names) == 0 || slices.Contains(names, in.Name) {
				only = append(only, in)
			}
		}
		return audit.Run(ctx, env, only, r.env.Now, r.logger)
	}
	observed := run(ctx, nil)
	if observed.Tenants < 0 {
		return nil, errors.New("the registry could not be counted: no repair without a complete observation")
	}
	e := r.newRepairEngine(cfg, pool, reg, store, "tenantdrift repair --apply")
	rep, err := e.run(ctx, observed.Results, observed.Tenants, apply, nil, func(ctx context.Context, names []string) ([]check.Result, error) {
		return run(ctx, names).Results, nil
	})
	// What was written is announced even when its verification failed.
	if apply && announce && rep != nil {
		if n := r.newNotifier(cfg); n != nil {
			aerr := n.announceRepairs(ctx, store, rep)
			if aerr == nil {
				aerr = n.deliver(ctx, store, r.env.Now)
			}
			if aerr != nil {
				err = errors.Join(err, fmt.Errorf("announce repairs: %w", aerr))
			}
		}
	}
	if err != nil {
		return rep, err
	}
	var incomplete []string
	for _, res := range observed.Results {
		if res.Err != nil && cfg.Repair.ModeOf(res.Name) != config.ModeOff {
			incomplete = append(incomplete, res.Name)
		}
	}
	if len(incomplete) > 0 {
		return rep, fmt.Errorf("checks %v did not complete, so their drift was not planned", incomplete)
	}
	return rep, nil
}

// repairEngine plans, decides, applies and verifies repairs; the repair
// command and the daemon share it.
type repairEngine struct {
	cfg     *config.Config
	planner *repair.Planner
	applier *repair.Applier
	store   *state.Store
	r       *runtime
	err     error // building the planner failed
}

func (r *runtime) newRepairEngine(cfg *config.Config, pool *pgxpool.Pool, reg *tenant.Registry, store *state.Store, by string) *repairEngine {
	e := &repairEngine{cfg: cfg, store: store, r: r}
	layout, ok := reg.Layout()
	if !ok {
		e.err = fmt.Errorf("repair writes the laravel preset's tables only; registry.preset is %s", cfg.Registry.Preset)
		return e
	}
	enc, format, err := checks.Encrypter(cfg)
	if err != nil {
		e.err = err
		return e
	}
	host, _ := os.Hostname()
	e.planner = &repair.Planner{
		DB: pool, Layout: layout, Config: cfg.Repair, Encrypter: enc, Serialize: format != laravel.FormatRaw, Format: format,
		LandlordHost: pool.Config().ConnConfig.Host, SSLMode: cfg.Checks.DBUnreachable.SSLMode,
		ProvisioningStatuses: cfg.Checks.ProvisioningStuck.Statuses,
		ProvisioningCutoff:   r.env.Now().Add(-cfg.Checks.ProvisioningStuck.Threshold.D()),
	}
	e.applier = &repair.Applier{
		DB: pool, Store: store,
		Prober:    &probe.Prober{Concurrency: 1, Timeout: cfg.Checks.DBUnreachable.ProbeTimeout.D()},
		AppliedBy: fmt.Sprintf("%s on %s (pid %d)", by, host, os.Getpid()),
		Logger:    r.logger.With("component", "repair"),
	}
	return e
}

// run plans repairs for the findings of results (one observation of
// tenants tenants) of the checks in only (every check when nil); the other
// findings count towards the breaker only. With apply, it applies what the
// policy clears, runs the affected checks again through rerun and marks
// repairs whose drift persists as failed.
func (e *repairEngine) run(ctx context.Context, results []check.Result, tenants int, apply bool, only []string,
	rerun func(ctx context.Context, names []string) ([]check.Result, error)) (*repair.Report, error) {
	if e.err != nil {
		return nil, e.err
	}
	var findings []check.Finding
	incomplete := map[string]string{}
	drift := map[string]bool{}
	for _, res := range results {
		if res.Err != nil {
			incomplete[res.Name] = landlord.Describe(res.Err).Error()
			continue
		}
		for _, f := range res.Findings {
			if only == nil || slices.Contains(only, res.Name) {
				findings = append(findings, f)
			}
			if f.TenantID != "" {
				drift[f.TenantID] = true
			}
		}
	}
	actions, un, err := e.planner.Plan(ctx, findings)
	if err != nil {
		return nil, err
	}
	pol := repair.Policy{Config: e.cfg.Repair, Apply: apply, Tenants: tenants, DriftTenants: len(drift), Incomplete: incomplete}
	actions = repair.Decide(actions, pol)
	rep := &repair.Report{Applying: apply, Actions: actions, Unrepairable: un}
	if open, why := pol.BreakerOpen(); open && apply && e.cfg.Repair.Enabled {
		rep.Breaker = why
		e.r.logger.Error("repair circuit breaker open: nothing applied", "drift_tenants", len(drift), "tenants", tenants)
	}
	if !apply || !slices.ContainsFunc(actions, func(a repair.Action) bool { return a.Apply }) {
		return rep, nil
	}
	rep.Actions = e.applier.Apply(ctx, actions)

	var again []string
	for _, a := range rep.Actions {
		if a.Status == repair.StatusApplied && !slices.Contains(again, a.Check) {
			again = append(again, a.Check)
		}
	}
	if len(again) == 0 {
		return rep, nil
	}
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	after, err := rerun(vctx, again)
	if err != nil {
		return rep, fmt.Errorf("verify repairs: %w", err)
	}
	remaining := map[string]bool{}
	for _, res := range after {
		if res.Err != nil {
			return rep, fmt.Errorf("verify repairs: check %s: %w", res.Name, res.Err)
		}
		for _, f := range res.Findings {
			remaining[f.Fingerprint] = true
		}
	}
	repair.Verify(vctx, e.store, rep.Actions, remaining, e.r.logger.With("component", "repair"))
	return rep, nil
}

// leadFor takes the daemon's leader lock (package leader) on a connection
// of its own for as long as a repair --apply runs, or says who holds it.
func leadFor(ctx context.Context, pool *pgxpool.Pool) (release func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the leader lock: %w", err)
	}
	got, err := leader.TryLock(ctx, conn)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("take the leader lock: %w", err)
	}
	if !got {
		conn.Release()
		return nil, errors.New("a tenantdrift serve holds the leader lock: only the leader repairs, and it does after each run when repair.enabled and a mode says apply; run `repair` without --apply to see the plan, or stop the daemon first")
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", leader.Key)
		conn.Release()
	}, nil
}
