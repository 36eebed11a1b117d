package repair

import (
	"fmt"

	"github.com/tenantdrift/tenantdrift/config"
)

// Policy is what Decide decides by: the configuration and the facts of one
// run.
type Policy struct {
	Config config.Repair
	// Apply is whether this is an apply (repair --apply, the daemon) rather
	// than a plan.
	Apply bool
	// Tenants is the number of active tenants; DriftTenants how many of them
	// have a finding of any check in this run.
	Tenants, DriftTenants int
	// Incomplete names the checks that did not complete in this run, with
	// why: actions fed by them are skipped.
	Incomplete map[string]string
}

// BreakerOpen reports whether so many tenants are in drift that nothing may
// be applied, and says why.
func (p Policy) BreakerOpen() (bool, string) {
	if p.Tenants <= 0 {
		if p.DriftTenants == 0 {
			return false, ""
		}
		// Drift against no (or an unknown number of) tenants cannot be
		// weighed: an emptied or unreadable registry is an outage.
		return true, fmt.Sprintf("circuit breaker open: %d tenants show drift but the registry counts none (or could not be counted); nothing is applied", p.DriftTenants)
	}
	share := float64(p.DriftTenants) / float64(p.Tenants)
	if share <= p.Config.BreakerRatio {
		return false, ""
	}
	return true, fmt.Sprintf("circuit breaker open: %d of %d tenants (%.0f%%) show drift, above repair.breaker_ratio %.0f%%; that looks like an outage or a bad config, so nothing is applied",
		p.DriftTenants, p.Tenants, 100*share, 100*p.Config.BreakerRatio)
}

// Decide sets the Status, Reason and Apply of each action, in order, and
// returns them. It is pure: the same actions and policy always give the
// same decisions.
//
//   - An action whose check did not complete, or whose tenant the allow
//     and deny lists exclude, is skipped.
//   - Without Apply, every other action is planned.
//   - With Apply, an action is planned (not written) when the kill switch
//     is off or its mode is plan; skipped when the breaker is open or
//     max_repairs_per_run actions were already cleared; otherwise cleared
//     to be written (Apply true, status planned until written).
func Decide(actions []Action, p Policy) []Action {
	open, why := p.BreakerOpen()
	cleared := 0
	for i := range actions {
		a := &actions[i]
		a.Apply = false
		a.Status, a.Reason = StatusPlanned, ""
		mode := p.Config.ModeOf(a.Check)
		switch {
		case p.Incomplete[a.Check] != "":
			a.Status, a.Reason = StatusSkipped, fmt.Sprintf("check %s did not complete in this run (%s): repairs need a complete observation", a.Check, p.Incomplete[a.Check])
		case !p.Config.Tenants.Allows(a.TenantID, a.TenantSlug):
			a.Status, a.Reason = StatusSkipped, "tenant excluded by repair.tenants"
		case !p.Apply:
			switch {
			case mode == config.ModeApply && p.Config.Enabled:
				a.Reason = "run with --apply to apply"
			case mode == config.ModeApply:
				a.Reason = "mode apply, but repair.enabled is false"
			default:
				a.Reason = "mode plan"
			}
		case !p.Config.Enabled:
			a.Reason = "repair.enabled is false: nothing is applied"
		case mode != config.ModeApply:
			a.Reason = "mode " + mode + ": reported only"
		case open:
			a.Status, a.Reason = StatusSkipped, why
		case cleared >= p.Config.MaxRepairsPerRun:
			a.Status, a.Reason = StatusSkipped, fmt.Sprintf("max_repairs_per_run (%d) reached: waits for the next run", p.Config.MaxRepairsPerRun)
		default:
			a.Apply = true
			cleared++
		}
	}
	return actions
}
