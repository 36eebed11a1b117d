package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/demo"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/pgcluster"
	"github.com/tenantdrift/tenantdrift/internal/report"
)

// demoDatabase is the landlord database the demo creates.
const demoDatabase = "landlord"

// maxProvisioned is the largest demo whose tenant databases are created for
// real (and probed); larger demos audit the registry only.
const maxProvisioned = 300

func runDemo(ctx context.Context, r *runtime, args []string) int {
	var lf logFlags
	var keep, serve bool
	var listen string
	var tenants int
	var o auditOptions
	fs := r.newFlagSet("demo", "demo [--keep | --serve [--listen ADDR]] [--tenants N] [--format table|json|markdown]", &lf)
	fs.BoolVar(&keep, "keep", false, "leave the cluster running and print its DSN, to look around with psql")
	fs.BoolVar(&serve, "serve", false, "run the daemon (tenantdrift serve) against the demo until Ctrl-C, instead of one audit")
	fs.StringVar(&listen, "listen", "127.0.0.1"+config.DefaultListen, "with --serve: address for /metrics, /healthz and /readyz")
	fs.IntVar(&tenants, "tenants", 60, "number of tenants in the demo registry (at least 20)")
	fs.StringVar(&o.format, "format", report.FormatTable, "report format: table, json or markdown")
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	o.failOn = "never"
	if err := o.validate(); err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift demo: %v\n", err)
		return ExitError
	}
	if tenants < 20 || tenants > 1_000_000 {
		fmt.Fprintf(r.stderr, "tenantdrift demo: --tenants must be between 20 and 1000000, got %d\n", tenants)
		return ExitError
	}

	fmt.Fprintf(r.stderr, "Starting a throwaway PostgreSQL from this machine's binaries...\n")
	tmp, _ := r.env.LookupEnv("TMPDIR")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Logger: r.logger, Dir: tmp})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(r.stderr, "tenantdrift demo: interrupted; nothing left behind\n")
		} else {
			fmt.Fprintf(r.stderr, "tenantdrift demo: start PostgreSQL: %v\n", err)
		}
		return ExitError
	}
	stop := func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(r.stderr, "tenantdrift demo: remove cluster %s: %v\n", cluster.Dir(), err)
		}
	}
	appKey, err := r.loadDemo(ctx, cluster, tenants)
	if err != nil {
		stop()
		if ctx.Err() != nil {
			fmt.Fprintf(r.stderr, "tenantdrift demo: interrupted; cluster removed\n")
		} else {
			fmt.Fprintf(r.stderr, "tenantdrift demo: %v\n", err)
		}
		return ExitError
	}
	if !keep {
		defer stop()
	}

	cfg := config.Default()
	cfg.Landlord.DSN = config.Secret(cluster.DSN(demoDatabase))
	if serve {
		cfg.Schedule = "@every 30s"
		cfg.Laravel.AppKey = config.Secret(appKey)
		fmt.Fprintf(r.stderr, "Serving the demo: open http://%s/metrics (and /readyz); Ctrl-C stops it and removes the cluster.\n", listen)
		if keep {
			fmt.Fprintf(r.env.Stderr, "  psql %q\n", cluster.DSN(demoDatabase))
		}
		return r.serve(ctx, cfg, listen)
	}
	cfg.Laravel.AppKey = config.Secret(appKey)
	if tenants > maxProvisioned {
		// Thousands of real databases would take minutes: audit the registry only.
		off := false
		cfg.Checks.DBUnreachable.Enabled = &off
		cfg.Checks.DatabaseOrphan.Enabled = &off
	}
	rep, err := r.runAudit(ctx, cfg, mustBuild(cfg))
	if werr := r.writeReport(r.stdout, o.format, rep); werr != nil {
		err = errors.Join(err, werr)
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(r.stderr, "tenantdrift demo: interrupted\n")
		} else {
			fmt.Fprintf(r.stderr, "tenantdrift demo: %v\n", err)
		}
		return ExitError
	}
	if o.format == report.FormatTable {
		if worst, ok := rep.Worst(); ok {
			fmt.Fprintf(r.stdout, "\nWorst finding: %s %s for tenant %q.\n%s\n", worst.Severity, worst.Check, worst.TenantSlug, checks.Explain(worst.Check))
		}
		fmt.Fprintf(r.stdout, "\n(registry_orphan finds nothing here: the foreign key from tenant_databases to tenants forbids orphans. Left alone on purpose: a tenant created a minute ago, within the grace period, and a soft-deleted one.)\n")
	}
	if keep {
		// The demo cluster is throwaway and the user asked for its DSN:
		// write it past the redactor, to stderr so JSON output stays clean.
		fmt.Fprintf(r.env.Stderr, "\nThe demo cluster is still running (--keep).\n  psql %q\n  TENANTDRIFT_LANDLORD_DSN=%q tenantdrift audit\n  APP_KEY=%s (encrypts the demo's database_password values)\nStop and remove it with:\n  %s\n",
			cluster.DSN(demoDatabase), cluster.DSN(demoDatabase), appKey, cluster.StopCommand())
	}
	return ExitOK
}

// loadDemo creates the landlord database and loads the drifted registry.
// It returns the demo's APP_KEY in Laravel's .env form.
func (r *runtime) loadDemo(ctx context.Context, cluster *pgcluster.Cluster, tenants int) (string, error) {
	if err := cluster.CreateDatabase(ctx, demoDatabase); err != nil {
		return "", fmt.Errorf("create landlord database: %w", err)
	}
	key, retired := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate APP_KEY: %w", err)
	}
	if _, err := rand.Read(retired); err != nil {
		return "", fmt.Errorf("generate APP_KEY: %w", err)
	}
	enc, err := laravel.NewEncrypter("aes-256-cbc", key)
	if err != nil {
		return "", err
	}
	old, err := laravel.NewEncrypter("aes-256-cbc", retired)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, cluster.DSN(demoDatabase))
	if err != nil {
		return "", fmt.Errorf("connect to demo landlord: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sum, err := demo.Load(ctx, conn, demo.Options{
		Tenants: tenants, DriftRatio: 0.01, Extras: true, Now: r.env.Now(), Seed: uint64(time.Now().UnixNano()),
		Host: cluster.Host(), Port: cluster.Port(),
		Password: func(string) (string, error) {
			pw := make([]byte, 12)
			if _, err := rand.Read(pw); err != nil {
				return "", err
			}
			return enc.Encrypt([]byte(base64.RawURLEncoding.EncodeToString(pw)), true)
		},
	})
	if err != nil {
		return "", fmt.Errorf("load demo registry: %w", err)
	}
	drifted := 0
	for _, n := range sum.Drifted {
		drifted += n
	}
	fmt.Fprintf(r.stderr, "Loaded %d tenants (%d with planted registry drift), plus one created a minute ago and one soft-deleted, into database %q.\n",
		sum.Tenants, drifted, demoDatabase)
	if tenants <= maxProvisioned {
		admin, err := pgx.Connect(ctx, cluster.DSN("postgres"))
		if err != nil {
			return "", fmt.Errorf("connect to demo server: %w", err)
		}
		defer admin.Close(context.WithoutCancel(ctx))
		broken, err := demo.ProvisionDatabases(ctx, conn, admin, demo.Credentials{
			Decrypt: func(p string) (string, error) {
				b, err := enc.Decrypt(p, laravel.FormatAuto)
				return string(b), err
			},
			Encrypt:        func(s string) (string, error) { return enc.Encrypt([]byte(s), true) },
			EncryptRetired: func(s string) (string, error) { return old.Encrypt([]byte(s), true) },
		})
		if err != nil {
			return "", fmt.Errorf("create tenant databases: %w", err)
		}
		fmt.Fprintf(r.stderr, "Created the tenant databases and broke %d of them the way production does.\n", len(broken))
	} else {
		fmt.Fprintf(r.stderr, "More than %d tenants: tenant databases are not created, so db_unreachable and database_orphan are off.\n", maxProvisioned)
	}
	fmt.Fprintf(r.stderr, "Auditing...\n\n")
	return "base64:" + base64.StdEncoding.EncodeToString(key), nil
}

// mustBuild builds the default check set, which cannot fail.
func mustBuild(cfg *config.Config) []check.Instance {
	inst, err := checks.Build(cfg, nil)
	if err != nil {
		panic("default checks do not build: " + err.Error())
	}
	return inst
}
