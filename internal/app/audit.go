package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/audit"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/landlord"
	"github.com/tenantdrift/tenantdrift/internal/report"
	"github.com/tenantdrift/tenantdrift/internal/schedule"
	"github.com/tenantdrift/tenantdrift/internal/state"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// auditOptions are the flags of audit (and demo).
type auditOptions struct {
	only     []string
	format   string
	failOn   string
	printSQL bool
	noState  bool
	noNotify bool
}

func (o *auditOptions) validate() error {
	switch o.format {
	case report.FormatTable, report.FormatJSON, report.FormatMarkdown:
	default:
		return fmt.Errorf("invalid --format %q (use table, json or markdown)", o.format)
	}
	switch o.failOn {
	case config.SeverityCritical, config.SeverityWarning, config.SeverityInfo, "never":
	default:
		return fmt.Errorf("invalid --fail-on %q (use info, warning, critical or never)", o.failOn)
	}
	return nil
}

func runAudit(ctx context.Context, r *runtime, args []string) int {
	var lf logFlags
	var o auditOptions
	var file string
	var only stringList
	fs := r.newFlagSet("audit", "audit [--config FILE] [--check NAME]... [--format table|json|markdown] [--fail-on info|warning|critical|never] [--print-sql]", &lf)
	fs.StringVar(&file, "config", "", "config file (env TENANTDRIFT_CONFIG); without one, defaults apply and TENANTDRIFT_LANDLORD_DSN names the landlord")
	fs.Var(&only, "check", "run only this check (repeatable, or comma-separated)")
	fs.StringVar(&o.format, "format", report.FormatTable, "report format: table, json or markdown")
	fs.StringVar(&o.failOn, "fail-on", config.SeverityWarning, "exit 2 when a finding is at least this severe: info, warning, critical or never")
	fs.BoolVar(&o.noState, "no-state", false, "do not record this run in the state store, even when one is configured")
	fs.BoolVar(&o.noNotify, "no-notify", false, "do not post Slack alerts for this run, even when Slack and the state store are configured")
	fs.BoolVar(&o.printSQL, "print-sql", false, "print the audit's SQL as a psql script instead of running it (to confirm findings by hand)")
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	o.only = only
	if err := o.validate(); err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: %v\n", err)
		return ExitError
	}
	cfg, ok := r.loadConfig("audit", file, true)
	if !ok {
		return ExitError
	}
	return r.audit(ctx, cfg, o)
}

// loadConfig loads and validates the configuration, printing every problem.
func (r *runtime) loadConfig(cmd, file string, requireLandlord bool) (*config.Config, bool) {
	cfg, err := config.Load(config.Options{File: file, LookupEnv: r.env.LookupEnv, RequireLandlord: requireLandlord,
		ValidateSchedule: func(s string) error { _, err := schedule.Parse(s); return err }})
	if cfg != nil {
		r.rememberSecrets(cfg)
	}
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				fmt.Fprintf(r.stderr, "tenantdrift %s: %s\n", cmd, p.Error())
			}
		} else {
			fmt.Fprintf(r.stderr, "tenantdrift %s: %v\n", cmd, err)
		}
		return nil, false
	}
	return cfg, true
}

// audit runs the checks once against the configured landlord, prints the
// report to stdout and returns the exit code of the audit contract.
func (r *runtime) audit(ctx context.Context, cfg *config.Config, o auditOptions) int {
	instances, err := checks.Build(cfg, o.only)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: %v\n", err)
		return ExitError
	}
	if !cfg.Laravel.HasKey() && len(o.only) == 0 {
		r.logger.Warn("no APP_KEY configured: stored passwords cannot be decrypted, so credential_undecryptable and db_unreachable are skipped; set laravel.app_key or APP_KEY")
	}
	if o.printSQL {
		return r.printSQL(ctx, cfg, instances)
	}
	if cfg.Slack.Enabled() && !o.noNotify && !cfg.State.Configured() {
		r.logger.Warn("slack is configured but audit posts alerts only when it records history: enable the state store")
	}
	rep, err := r.runAudit(ctx, cfg, instances)
	if err == nil || rep.Tenants >= 0 {
		if cfg.State.Configured() && !o.noState {
			var n *notifier
			if !o.noNotify {
				n = r.newNotifier(cfg)
			}
			if serr := r.recordAudit(ctx, cfg, rep, n); serr != nil {
				fmt.Fprintf(r.stderr, "tenantdrift audit: record history: %v\n", serr)
				err = errors.Join(err, serr)
			}
		}
	}
	if werr := r.writeReport(r.stdout, o.format, rep); werr != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: write report: %v\n", werr)
		return ExitError
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: %v\n", err)
		return ExitError
	}
	return exitCode(rep, o.failOn)
}

// runAudit connects, resolves the layout and runs the instances. When the
// audit cannot start, it returns a report in which every check errored,
// and the reason.
func (r *runtime) runAudit(ctx context.Context, cfg *config.Config, instances []check.Instance) (*audit.Report, error) {
	start := r.env.Now()
	pool, err := landlord.Connect(ctx, cfg.Landlord, cfg.Registry.TimeZone)
	if err != nil {
		return audit.Failed(start, r.env.Now(), instances, err), err
	}
	defer pool.Close()
	reg, err := tenant.Resolve(ctx, pool, cfg.Registry, fieldsFor(cfg, instances))
	if err != nil {
		err = fmt.Errorf("registry layout: %w", err)
		return audit.Failed(start, r.env.Now(), instances, err), err
	}
	landlordCfg := pool.Config().ConnConfig.Config
	env := check.Env{DB: pool, Registry: reg, Landlord: &landlordCfg, Progress: r.progress()}
	rep := audit.Run(ctx, env, instances, r.env.Now, r.logger)
	r.endProgress()
	if !rep.Complete() {
		n := len(rep.Errored())
		if rep.Tenants < 0 {
			return rep, errors.New("the audit did not complete: the registry could not be counted")
		}
		return rep, fmt.Errorf("the audit did not complete: %d of %d checks failed", n, len(rep.Results))
	}
	return rep, nil
}

// recordAudit records every check's run in the state store, in one
// transaction, so a cron container keeps history across runs. Errored
// checks resolve nothing. With a notifier, the runs' alerts go into the
// outbox with them, planned together (one storm for the whole audit), and
// the outbox is drained before returning: what an earlier audit announced
// is not announced again.
func (r *runtime) recordAudit(ctx context.Context, cfg *config.Config, rep *audit.Report, n *notifier) error {
	sc := cfg.Landlord
	if cfg.State.DSN != "" {
		sc.DSN = cfg.State.DSN
	}
	pool, err := landlord.Connect(ctx, sc, "UTC")
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := state.Open(ctx, pool, cfg.State.Schema, r.env.Now)
	if err != nil {
		return err
	}
	names := make([]string, len(rep.Results))
	for i, res := range rep.Results {
		names[i] = res.Name
	}
	if _, err := store.RecordRunsWithOutbox(ctx, rep.Results, rep.StartedAt, rep.FinishedAt, n.planRuns(names, rep.FinishedAt)); err != nil {
		return err
	}
	if n == nil {
		return nil
	}
	return n.deliver(ctx, store, r.env.Now)
}

// printSQL connects, resolves the layout and prints the psql script.
func (r *runtime) printSQL(ctx context.Context, cfg *config.Config, instances []check.Instance) int {
	pool, err := landlord.Connect(ctx, cfg.Landlord, cfg.Registry.TimeZone)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: %v\n", err)
		return ExitError
	}
	defer pool.Close()
	reg, err := tenant.Resolve(ctx, pool, cfg.Registry, fieldsFor(cfg, instances))
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: registry layout: %v\n", err)
		return ExitError
	}
	if err := writeSQLScript(ctx, r.stdout, reg, instances, r.env.Now(), cfg.Registry.TimeZone); err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift audit: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// rememberSecrets teaches the redactor every secret of the configuration.
func (r *runtime) rememberSecrets(cfg *config.Config) {
	r.redactor.AddDSN(cfg.Landlord.DSN.Reveal())
	r.redactor.Add(cfg.Laravel.AppKey.Reveal(), strings.TrimPrefix(cfg.Laravel.AppKey.Reveal(), "base64:"))
	for _, k := range strings.Split(cfg.Laravel.PreviousKeys.Reveal(), ",") {
		k = strings.TrimSpace(k)
		r.redactor.Add(k, strings.TrimPrefix(k, "base64:"))
	}
	r.redactor.AddDSN(cfg.State.DSN.Reveal())
	r.redactor.Add(cfg.Slack.Token.Reveal(), cfg.Slack.WebhookURL.Reveal())
	r.redactor.Add(cfg.Repair.Actions.RegistryMissing.Password.Reveal())
	for _, s := range cfg.Checks.DatabaseOrphan.Servers {
		r.redactor.Add(s.Password.Reveal())
	}
}

// fieldsFor returns the fields field_mismatch compares, if it runs.
func fieldsFor(cfg *config.Config, instances []check.Instance) []string {
	for _, in := range instances {
		if in.Name == config.CheckFieldMismatch {
			return cfg.Checks.FieldMismatch.Fields
		}
	}
	return nil
}

// writeReport renders into a buffer first, so the redactor sees the report
// whole and a failed render writes nothing half-done.
func (r *runtime) writeReport(w io.Writer, format string, rep *audit.Report) error {
	var buf bytes.Buffer
	if err := report.Write(&buf, format, rep, report.Tool{Name: "tenantdrift", Version: r.env.Version}); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// exitCode maps a report to the audit contract: 1 incomplete, 2 a finding
// at or above failOn, else 0.
func exitCode(rep *audit.Report, failOn string) int {
	if !rep.Complete() {
		return ExitError
	}
	if failOn == "never" {
		return ExitOK
	}
	threshold := check.Rank(failOn)
	for _, f := range rep.Findings {
		if check.Rank(f.Severity) >= threshold {
			return ExitDrift
		}
	}
	return ExitOK
}

func runValidate(_ context.Context, r *runtime, args []string) int {
	var lf logFlags
	var file string
	fs := r.newFlagSet("validate", "validate [--config FILE]", &lf)
	fs.StringVar(&file, "config", "", "config file (env TENANTDRIFT_CONFIG)")
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	cfg, ok := r.loadConfig("validate", file, false)
	if !ok {
		return ExitError
	}
	src := cfg.File()
	if src == "" {
		src = "defaults (no config file)"
	}
	fmt.Fprintf(r.stdout, "%s: valid\n", src)
	if cfg.Landlord.DSN == "" {
		fmt.Fprintf(r.stdout, "note: no landlord DSN is set; audit will need %s or landlord.dsn\n", config.EnvLandlordDSN)
	}
	return ExitOK
}
