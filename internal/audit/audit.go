// Package audit runs a set of checks once against the landlord and gathers
// what they found into a Report: the unit the audit command prints and the
// daemon records.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// Report is the outcome of one audit.
type Report struct {
	StartedAt  time.Time
	FinishedAt time.Time
	// Tenants is the number of active tenants, -1 when it could not be counted.
	Tenants  int
	Results  []check.Result
	Findings []check.Finding // every check's findings, sorted
}

// Complete reports whether every check ran.
func (r *Report) Complete() bool {
	if r.Tenants < 0 {
		return false
	}
	for _, res := range r.Results {
		if res.Status == check.StatusError {
			return false
		}
	}
	return true
}

// Errored returns the results of checks that could not run.
func (r *Report) Errored() []check.Result {
	var out []check.Result
	for _, res := range r.Results {
		if res.Status == check.StatusError {
			out = append(out, res)
		}
	}
	return out
}

// CountSeverity returns how many findings have the severity.
func (r *Report) CountSeverity(sev string) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

// Worst returns the most severe finding, and false when there is none.
func (r *Report) Worst() (check.Finding, bool) {
	if len(r.Findings) == 0 {
		return check.Finding{}, false
	}
	return r.Findings[0], true
}

// Run counts the tenants and runs every instance in order, each under its
// own deadline. One check failing does not stop the others. It never
// returns an error: failures are in the report's results.
// env carries the database, the registry and the optional landlord
// settings and progress hook; Run sets its clock.
func Run(ctx context.Context, env check.Env, instances []check.Instance, now func() time.Time, logger *slog.Logger) *Report {
	rep := &Report{StartedAt: now()}
	env.Now = rep.StartedAt
	if env.Logger == nil {
		env.Logger = logger
	}
	n, err := env.Registry.Count(ctx, env.DB)
	if err != nil {
		logger.Warn("cannot count tenants", "err", err)
		n = -1
	}
	rep.Tenants = n
	for _, inst := range instances {
		res := check.RunOne(ctx, inst, env, logger)
		if res.Err != nil {
			logger.Error("check failed", "check", inst.Name, "err", res.Err)
		} else {
			logger.Debug("check finished", "check", inst.Name, "findings", len(res.Findings), "duration", res.Duration)
		}
		rep.Findings = append(rep.Findings, res.Findings...)
		rep.Results = append(rep.Results, res)
	}
	order := make([]string, len(instances))
	for i, inst := range instances {
		order[i] = inst.Name
	}
	check.Sort(rep.Findings, order)
	rep.FinishedAt = now()
	return rep
}

// Failed builds the report of an audit that could not start (the landlord
// is unreachable or its layout is wrong): every instance errored with err.
func Failed(start, end time.Time, instances []check.Instance, err error) *Report {
	rep := &Report{StartedAt: start, FinishedAt: end, Tenants: -1}
	for _, inst := range instances {
		rep.Results = append(rep.Results, check.Result{Name: inst.Name, Status: check.StatusError, Err: err})
	}
	return rep
}
