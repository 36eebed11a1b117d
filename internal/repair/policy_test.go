package repair_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/repair"
)

func actions(n int, check string) []repair.Action {
	out := make([]repair.Action, n)
	for i := range out {
		out[i] = repair.Action{Check: check, TenantID: "id" + string(rune('a'+i%26)), TenantSlug: "slug" + string(rune('a'+i%26))}
	}
	return out
}

func applyAll() config.Repair {
	c := config.Default().Repair
	c.Enabled = true
	c.Actions.RegistryMissing.Mode = config.ModeApply
	c.Actions.FieldMismatch.Mode = config.ModeApply
	c.Actions.CredentialPlaintext.Mode = config.ModeApply
	c.Actions.ProvisioningStuck.Mode = config.ModeApply
	return c
}

func TestDecide(t *testing.T) {
	killed := applyAll()
	killed.Enabled = false
	planOnly := applyAll()
	planOnly.Actions.FieldMismatch.Mode = config.ModePlan
	denied := applyAll()
	denied.Tenants.Deny = []string{"sluga"}
	allowed := applyAll()
	allowed.Tenants.Allow = []string{"idb"}
	capped := applyAll()
	capped.MaxRepairsPerRun = 2
	zero := applyAll()
	zero.MaxRepairsPerRun = 0

	cases := []struct {
		name       string
		policy     repair.Policy
		actions    []repair.Action
		wantStatus []string
		wantApply  int
		reason     string // contained in the first action's reason
	}{
		{name: "plan only shows what apply would do", policy: repair.Policy{Config: applyAll(), Tenants: 100, DriftTenants: 1},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"planned"}, reason: "run with --apply"},
		{name: "apply clears", policy: repair.Policy{Config: applyAll(), Apply: true, Tenants: 100, DriftTenants: 2},
			actions: actions(2, config.CheckCredentialPlaintext), wantStatus: []string{"planned", "planned"}, wantApply: 2},
		{name: "kill switch", policy: repair.Policy{Config: killed, Apply: true, Tenants: 100, DriftTenants: 1},
			actions: actions(1, config.CheckRegistryMissing), wantStatus: []string{"planned"}, reason: "repair.enabled is false"},
		{name: "kill switch in plan", policy: repair.Policy{Config: killed, Tenants: 100, DriftTenants: 1},
			actions: actions(1, config.CheckRegistryMissing), wantStatus: []string{"planned"}, reason: "repair.enabled is false"},
		{name: "mode plan", policy: repair.Policy{Config: planOnly, Apply: true, Tenants: 100, DriftTenants: 1},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"planned"}, reason: "mode plan"},
		{name: "deny wins", policy: repair.Policy{Config: denied, Apply: true, Tenants: 100, DriftTenants: 2},
			actions: actions(2, config.CheckFieldMismatch), wantStatus: []string{"skipped", "planned"}, wantApply: 1, reason: "repair.tenants"},
		{name: "allow list", policy: repair.Policy{Config: allowed, Apply: true, Tenants: 100, DriftTenants: 2},
			actions: actions(2, config.CheckFieldMismatch), wantStatus: []string{"skipped", "planned"}, wantApply: 1},
		{name: "cap", policy: repair.Policy{Config: capped, Apply: true, Tenants: 100, DriftTenants: 4},
			actions: actions(4, config.CheckCredentialPlaintext), wantStatus: []string{"planned", "planned", "skipped", "skipped"}, wantApply: 2},
		{name: "cap zero applies nothing", policy: repair.Policy{Config: zero, Apply: true, Tenants: 100, DriftTenants: 1},
			actions: actions(1, config.CheckCredentialPlaintext), wantStatus: []string{"skipped"}, reason: "max_repairs_per_run (0)"},
		{name: "breaker at the ratio stays closed", policy: repair.Policy{Config: applyAll(), Apply: true, Tenants: 10, DriftTenants: 2},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"planned"}, wantApply: 1},
		{name: "breaker above the ratio opens", policy: repair.Policy{Config: applyAll(), Apply: true, Tenants: 10, DriftTenants: 3},
			actions: actions(2, config.CheckFieldMismatch), wantStatus: []string{"skipped", "skipped"}, reason: "circuit breaker open: 3 of 10 tenants (30%)"},
		{name: "breaker does not hide a plan", policy: repair.Policy{Config: applyAll(), Tenants: 10, DriftTenants: 9},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"planned"}},
		{name: "incomplete check", policy: repair.Policy{Config: applyAll(), Apply: true, Tenants: 100, DriftTenants: 1,
			Incomplete: map[string]string{config.CheckFieldMismatch: "timed out"}},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"skipped"}, reason: "did not complete in this run (timed out)"},
		{name: "no tenants counted opens the breaker", policy: repair.Policy{Config: applyAll(), Apply: true, Tenants: -1, DriftTenants: 5000},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"skipped"}, reason: "the registry counts none (or could not be counted)"},
		{name: "an empty registry opens the breaker", policy: repair.Policy{Config: applyAll(), Apply: true, Tenants: 0, DriftTenants: 1},
			actions: actions(1, config.CheckFieldMismatch), wantStatus: []string{"skipped"}, reason: "circuit breaker open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := repair.Decide(tc.actions, tc.policy)
			applied := 0
			for i, a := range got {
				assert.Equal(t, tc.wantStatus[i], a.Status, "action %d: %s", i, a.Reason)
				if a.Apply {
					applied++
				}
			}
			assert.Equal(t, tc.wantApply, applied)
			if tc.reason != "" {
				assert.Contains(t, got[0].Reason, tc.reason)
			}
			// Pure: deciding again gives the same answer.
			again := repair.Decide(got, tc.policy)
			assert.Equal(t, got, again)
		})
	}
}
