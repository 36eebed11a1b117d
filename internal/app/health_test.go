package app

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tenantdrift/tenantdrift/internal/state"
)

func TestHealthTransitions(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	down := errors.New("connection refused")
	broken := errors.New("registry layout: relation \"tenant_databases\" does not exist")
	type step struct {
		obs  []observation
		want healthEvent
	}
	degraded := func(reason string) healthEvent { return healthEvent{Kind: state.KindDegraded, Reason: reason} }
	recovered := func(after time.Duration) healthEvent { return healthEvent{Kind: state.KindRecovered, After: after} }
	tests := []struct {
		name          string
		degradedAfter int
		steps         []step
	}{
		{"healthy stays quiet", 3, []step{
			{[]observation{{cond: condLandlord}, {cond: condStore}, observeCheck("a", nil)}, healthEvent{}},
			{[]observation{observeCheck("a", nil)}, healthEvent{}},
		}},
		{"store down then back: one alert, one recovery", 3, []step{
			{[]observation{{cond: condStore, err: down}}, degraded("connection refused")},
			{[]observation{{cond: condStore, err: down}}, healthEvent{}},
			{[]observation{{cond: condStore, err: down}}, healthEvent{}},
			{[]observation{{cond: condStore}}, recovered(3 * time.Minute)},
			{[]observation{{cond: condStore}}, healthEvent{}},
		}},
		{"a check degrades on its third errored run in a row", 3, []step{
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", broken)}, degraded(`check a errored 3 runs in a row: ` + broken.Error())},
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", nil)}, recovered(2 * time.Minute)},
		}},
		{"a success resets the streak", 3, []step{
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", nil)}, healthEvent{}},
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
		}},
		{"streaks are per check", 2, []step{
			{[]observation{observeCheck("a", broken)}, healthEvent{}},
			{[]observation{observeCheck("b", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", broken)}, degraded(`check a errored 2 runs in a row: ` + broken.Error())},
			{[]observation{observeCheck("b", broken)}, healthEvent{}},
			{[]observation{observeCheck("a", nil)}, healthEvent{}},
			{[]observation{observeCheck("b", nil)}, recovered(3 * time.Minute)},
		}},
		{"degraded_after 1 degrades at once", 1, []step{
			{[]observation{observeCheck("a", broken)}, degraded(`check a errored 1 runs in a row: ` + broken.Error())},
		}},
		{"another reason while degraded posts nothing; recovery waits for every condition", 3, []step{
			{[]observation{{cond: condLeadership, err: errors.New("leadership lost")}}, degraded("leadership lost")},
			{[]observation{{cond: condLandlord, err: down}, {cond: condStore, err: down}}, healthEvent{}},
			{[]observation{{cond: condLeadership}}, healthEvent{}},
			{[]observation{{cond: condLandlord}}, healthEvent{}},
			{[]observation{{cond: condStore}}, recovered(4 * time.Minute)},
		}},
		{"the first failing observation of a step gives the reason", 3, []step{
			{[]observation{{cond: condLandlord, err: down}, {cond: condStore, err: errors.New("store too")}}, degraded("connection refused")},
		}},
		{"ending one condition and starting another in one step is the same incident", 3, []step{
			{[]observation{{cond: condStore, err: down}}, degraded("connection refused")},
			{[]observation{{cond: condStore}, {cond: condLandlord, err: down}}, healthEvent{}},
			{[]observation{{cond: condLandlord}}, recovered(2 * time.Minute)},
		}},
		{"a second incident is announced again", 3, []step{
			{[]observation{{cond: condStore, err: down}}, degraded("connection refused")},
			{[]observation{{cond: condStore}}, recovered(time.Minute)},
			{[]observation{{cond: condLandlord, err: down}}, degraded("connection refused")},
			{[]observation{{cond: condLandlord}}, recovered(time.Minute)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHealth(tt.degradedAfter)
			for i, s := range tt.steps {
				got := h.observe(t0.Add(time.Duration(i)*time.Minute), s.obs...)
				assert.Equal(t, s.want, got, "step %d", i)
				switch got.Kind {
				case state.KindDegraded:
					assert.True(t, h.degraded(), "step %d", i)
				case state.KindRecovered:
					assert.False(t, h.degraded(), "step %d", i)
				}
			}
		})
	}
}
