// Package check defines what a check is, what it finds, and how a set of
// checks is run once against the landlord.
//
// A check returns (findings, error): findings mean it ran and saw drift, an
// error means it could not run. The two are never collapsed.
package check

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// Finding is one piece of drift about one tenant (or one orphan row).
// Fields that do not apply are empty.
type Finding struct {
	Check        string `json:"check"`
	Severity     string `json:"severity"`
	TenantID     string `json:"tenant_id"`
	TenantSlug   string `json:"tenant_slug"`
	DatabaseName string `json:"database_name"`
	Field        string `json:"field"`
	Reason       string `json:"reason"`
	Expected     string `json:"expected"`
	Actual       string `json:"actual"`
	Message      string `json:"message"`
	Fingerprint  string `json:"fingerprint"`

	// Key distinguishes findings of one check about one tenant beyond
	// Field and Reason (an orphan's row id, say). It feeds the fingerprint.
	Key string `json:"-"`
}

// Env is what a check runs against.
type Env struct {
	DB       tenant.Querier
	Registry *tenant.Registry
	// Now is the audit's clock; checks compute cut-offs from it.
	Now time.Time
	// Landlord is the landlord's connection settings, for checks that
	// reach the servers it runs on; nil when unknown.
	Landlord *pgconn.Config
	// Progress, when set, hears how far a long check has come.
	Progress func(check string, done, total int)
	// Logger is for what a check notices but does not fail on; nil
	// discards.
	Logger *slog.Logger
}

// Log returns env's logger, or one that discards.
func (e Env) Log() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// Check is one configured check instance.
type Check interface {
	Run(ctx context.Context, env Env) ([]Finding, error)
}

// Statementer is a check that is one SQL statement over the registry; it
// lets tenantdrift print the exact SQL an audit runs.
type Statementer interface {
	Statement(now time.Time) (body string, args pgx.NamedArgs)
}

// Func adapts a function to Check.
type Func func(ctx context.Context, env Env) ([]Finding, error)

// Run calls f.
func (f Func) Run(ctx context.Context, env Env) ([]Finding, error) { return f(ctx, env) }

// Instance is a check with the settings it runs under.
type Instance struct {
	Name     string
	Severity string
	Timeout  time.Duration
	Check    Check
}

// Status of one check in one run.
const (
	StatusOK    = "ok"
	StatusDrift = "drift"
	StatusError = "error"
)

// Result is the outcome of one check in one run.
type Result struct {
	Name     string
	Status   string
	Findings []Finding
	Duration time.Duration
	Err      error
}

// Rank orders severities: critical 3, warning 2, info 1, anything else 0.
func Rank(severity string) int {
	switch severity {
	case config.SeverityCritical:
		return 3
	case config.SeverityWarning:
		return 2
	case config.SeverityInfo:
		return 1
	}
	return 0
}

// Fingerprint identifies the same drift across runs: the check, the tenant,
// the field or reason, and the key. It does not include the observed values,
// so a finding stays one finding while its values change.
func Fingerprint(f Finding) string {
	h := sha256.New()
	for _, s := range []string{f.Check, f.TenantID, f.Field, f.Reason, f.Key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// RunOne runs a single instance under its timeout, recovering a panic into
// an error, and stamps every finding with the check's name, severity and
// fingerprint.
func RunOne(ctx context.Context, inst Instance, env Env, logger *slog.Logger) (res Result) {
	start := time.Now()
	res.Name = inst.Name
	defer func() {
		if p := recover(); p != nil {
			// The caller logs the returned error once; the stack is for
			// debugging only.
			logger.Debug("check panic stack", "check", inst.Name, "stack", string(debug.Stack()))
			res.Findings = nil
			res.Err = fmt.Errorf("check %s panicked: %v", inst.Name, p)
		}
		res.Duration = time.Since(start)
		switch {
		case res.Err != nil:
			res.Status = StatusError
		case len(res.Findings) > 0:
			res.Status = StatusDrift
		default:
			res.Status = StatusOK
		}
	}()
	if inst.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, inst.Timeout)
		defer cancel()
	}
	findings, err := inst.Check.Run(ctx, env)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", inst.Timeout, err)
		}
		res.Err = err
		return res
	}
	for i := range findings {
		f := &findings[i]
		f.Check = inst.Name
		f.Severity = inst.Severity
		f.Fingerprint = Fingerprint(*f)
	}
	res.Findings = findings
	return res
}

// Sort orders findings by severity (most severe first), check (in the
// order of order, which lists check names; others after, by name), tenant
// slug, then tenant id, field and reason, so reports are stable.
func Sort(fs []Finding, order []string) {
	pos := func(name string) int {
		if i := slices.Index(order, name); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(Rank(b.Severity), Rank(a.Severity)),
			cmp.Compare(pos(a.Check), pos(b.Check)),
			strings.Compare(a.Check, b.Check),
			strings.Compare(a.TenantSlug, b.TenantSlug),
			strings.Compare(a.TenantID, b.TenantID),
			strings.Compare(a.Field, b.Field),
			strings.Compare(a.Reason, b.Reason),
			strings.Compare(a.Key, b.Key),
		)
	})
}
