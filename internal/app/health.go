package app

import (
	"fmt"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/state"
)

// Conditions that make tenantdrift degraded; a check that errors
// slack.degraded_after runs in a row is the condition checkCondition(name).
const (
	condLandlord   = "landlord"
	condStore      = "state_store"
	condLeadership = "leadership"
)

func checkCondition(name string) string { return "check " + name }

// observation is what one step of the daemon saw of one condition: err
// nil means the condition does not hold (any more). A check run counts
// towards its streak instead of failing at once.
type observation struct {
	cond     string
	err      error
	checkRun bool
}

// observeCheck is the observation of one run of check name.
func observeCheck(name string, err error) observation {
	return observation{cond: checkCondition(name), err: err, checkRun: true}
}

// healthEvent is what a change of health announces: nothing (Kind ""),
// state.KindDegraded with the Reason, or state.KindRecovered with how long
// tenantdrift was degraded.
type healthEvent struct {
	Kind   string
	Reason string
	After  time.Duration
}

// health tracks whether tenantdrift is degraded. It is pure (no I/O, no
// clock, no lock): the daemon feeds it observations under its own mutex
// and announces the events it returns.
//
// tenantdrift is degraded while any condition holds. The first condition
// to hold announces degraded with its reason; conditions that start to
// hold while already degraded are remembered but announce nothing (one
// alert per incident, however it evolves); when the last one ends, one
// recovered event says how long the incident lasted.
type health struct {
	degradedAfter int
	streaks       map[string]int    // consecutive errored runs per check condition
	failing       map[string]string // condition → reason, while it holds
	since         time.Time         // when the incident began; zero while healthy
}

func newHealth(degradedAfter int) *health {
	return &health{degradedAfter: max(degradedAfter, 1), streaks: map[string]int{}, failing: map[string]string{}}
}

// degraded reports whether any condition holds.
func (h *health) degraded() bool { return len(h.failing) > 0 }

// observe applies obs, in order, at now, and returns the event to
// announce, if any. A call whose observations end one condition and start
// another goes on with the same incident.
func (h *health) observe(now time.Time, obs ...observation) healthEvent {
	was := h.degraded()
	var first string // the reason of the first condition to start holding
	for _, o := range obs {
		if o.err == nil {
			delete(h.streaks, o.cond)
			delete(h.failing, o.cond)
			continue
		}
		reason := o.err.Error()
		if o.checkRun {
			h.streaks[o.cond]++
			n := h.streaks[o.cond]
			if n < h.degradedAfter {
				continue
			}
			reason = fmt.Sprintf("%s errored %d runs in a row: %v", o.cond, n, o.err)
		}
		if _, ok := h.failing[o.cond]; !ok && first == "" {
			first = reason
		}
		h.failing[o.cond] = reason
	}
	switch is := h.degraded(); {
	case !was && is:
		h.since = now
		return healthEvent{Kind: state.KindDegraded, Reason: first}
	case was && !is:
		after := now.Sub(h.since)
		h.since = time.Time{}
		return healthEvent{Kind: state.KindRecovered, After: after}
	}
	return healthEvent{}
}
