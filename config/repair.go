package config

import (
	"fmt"
	"slices"
	"strings"
)

// Repair modes of an action.
const (
	// ModeOff: the action is never planned.
	ModeOff = "off"
	// ModePlan: the action is reported, nothing is written (default).
	ModePlan = "plan"
	// ModeApply: the action is written when repair.enabled is true.
	ModeApply = "apply"
)

// Repair configures auto-repair: which drift tenantdrift may fix, and the
// guards around it. Nothing is written unless Enabled is true and the
// action's mode is apply.
type Repair struct {
	// Enabled is the global kill switch (default false): while false,
	// repair plans but never applies, whatever the actions say.
	Enabled bool `yaml:"enabled"`
	// MaxRepairsPerRun caps the actions applied in one run (default 10);
	// the rest wait for the next run.
	MaxRepairsPerRun int `yaml:"max_repairs_per_run"`
	// BreakerRatio: when more than this share of tenants shows drift in
	// one run, nothing is applied (default 0.2): that is an outage or a
	// bad config, not drift.
	BreakerRatio float64 `yaml:"breaker_ratio"`
	// Tenants limits repairs to some tenants, by slug or id.
	Tenants TenantFilter `yaml:"tenants"`
	// Actions are the repair actions and their settings.
	Actions RepairActions `yaml:"actions"`
}

// TenantFilter is an allow and a deny list of tenant slugs or ids. An
// empty allow list allows every tenant; deny wins over allow.
type TenantFilter struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Allows reports whether a tenant with this id and slug may be repaired.
func (f TenantFilter) Allows(id, slug string) bool {
	in := func(list []string) bool {
		return slices.ContainsFunc(list, func(s string) bool { return s != "" && (s == id || s == slug) })
	}
	if in(f.Deny) {
		return false
	}
	return len(f.Allow) == 0 || in(f.Allow)
}

// RepairActions holds each action's settings. Orphans, duplicates and
// unreachable databases have no action: they need a human.
type RepairActions struct {
	RegistryMissing     RegistryMissingRepair   `yaml:"registry_missing"`
	FieldMismatch       FieldMismatchRepair     `yaml:"field_mismatch"`
	CredentialPlaintext ModeOnly                `yaml:"credential_plaintext"`
	ProvisioningStuck   ProvisioningStuckRepair `yaml:"provisioning_stuck"`
}

// ModeOnly is an action whose only setting is its mode.
type ModeOnly struct {
	Mode string `yaml:"mode"`
}

// RegistryMissingRepair inserts the missing tenant_databases row of a
// tenant, after probing its database with exactly these credentials.
type RegistryMissingRepair struct {
	Mode string `yaml:"mode"`
	// Host of the tenant database; empty means the landlord's host.
	Host string `yaml:"host"`
	// Port of the tenant database (default 5432).
	Port int `yaml:"port"`
	// Driver is written to database_driver (default pgsql).
	Driver string `yaml:"driver"`
	// Username is a template: {{slug}}, {{id}} and {{database_name}} are
	// the tenant's (default {{slug}}_user).
	Username string `yaml:"username"`
	// Password is the tenant database's password; write it as ${ENV} or
	// use password_file, never in clear. It is stored with encrypt().
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Status is written to the row's status column (default active).
	Status string `yaml:"status"`
}

// FieldMismatchRepair copies a mismatched field from its source of truth.
type FieldMismatchRepair struct {
	Mode string `yaml:"mode"`
	// SourceOfTruth maps a field to the table holding the right value:
	// tenants or tenant_databases. A field not listed is never repaired.
	SourceOfTruth map[string]string `yaml:"source_of_truth"`
}

// ProvisioningStuckRepair sets the status of a row stuck in provisioning.
type ProvisioningStuckRepair struct {
	Mode string `yaml:"mode"`
	// SetStatus is the status written (default failed).
	SetStatus string `yaml:"set_status"`
}

// Sources of truth of field_mismatch repairs.
const (
	SourceTenants   = "tenants"
	SourceDatabases = "tenant_databases"
)

// ModeOf returns the configured mode of the action repairing check name,
// or ModeOff for a check no action repairs.
func (r Repair) ModeOf(name string) string {
	switch name {
	case CheckRegistryMissing:
		return r.Actions.RegistryMissing.Mode
	case CheckFieldMismatch:
		return r.Actions.FieldMismatch.Mode
	case CheckCredentialPlaintext:
		return r.Actions.CredentialPlaintext.Mode
	case CheckProvisioningStuck:
		return r.Actions.ProvisioningStuck.Mode
	}
	return ModeOff
}

// RepairableChecks lists the checks an action can repair.
func RepairableChecks() []string {
	return []string{CheckRegistryMissing, CheckFieldMismatch, CheckCredentialPlaintext, CheckProvisioningStuck}
}

func validMode(m string) bool { return m == ModeOff || m == ModePlan || m == ModeApply }

func (c *Config) validateRepair() []Problem {
	var out []Problem
	add := func(path, format string, args ...any) { out = append(out, c.problem(path, format, args...)) }
	r := c.Repair
	if r.MaxRepairsPerRun < 0 {
		add("repair.max_repairs_per_run", "must not be negative, got %d", r.MaxRepairsPerRun)
	}
	if r.BreakerRatio <= 0 || r.BreakerRatio > 1 {
		add("repair.breaker_ratio", "must be a share of tenants above 0 and at most 1 (e.g. 0.2), got %v", r.BreakerRatio)
	}
	applies := false
	for _, name := range RepairableChecks() {
		m := r.ModeOf(name)
		if !validMode(m) {
			add("repair.actions."+name+".mode", "unknown mode %q (use off, plan or apply)", m)
		}
		applies = applies || m == ModeApply
	}
	if r.Enabled && c.Registry.Preset != PresetLaravel {
		add("repair.enabled", "repair writes the laravel preset's tables only; registry.preset is %s", c.Registry.Preset)
	}
	if r.Enabled && applies && c.State.DSN != "" {
		add("repair.enabled", "repairs commit together with their audit-log row, so the state store must live in the landlord database: unset state.dsn (or state.dsn_file)")
	}
	rm := r.Actions.RegistryMissing
	p := "repair.actions.registry_missing."
	if rm.Port < 1 || rm.Port > 65535 {
		add(p+"port", "must be a TCP port (1-65535), got %d", rm.Port)
	}
	if strings.TrimSpace(rm.Driver) == "" {
		add(p+"driver", "must not be empty (pgsql or mysql)")
	}
	if strings.TrimSpace(rm.Username) == "" {
		add(p+"username", "must not be empty (a template such as \"{{slug}}_user\")")
	} else if bad := unknownPlaceholder(rm.Username); bad != "" {
		add(p+"username", "unknown placeholder %s (use {{slug}}, {{id}} or {{database_name}})", bad)
	}
	if strings.TrimSpace(rm.Status) == "" {
		add(p+"status", "must not be empty")
	}
	if rm.Mode == ModeApply && rm.Password == "" {
		add(p+"password", "mode apply needs the tenant databases' password: set password (as ${ENV}) or password_file")
	}
	if rm.Mode == ModeApply && !c.Laravel.HasKey() {
		add(p+"mode", "mode apply needs an APP_KEY to encrypt the password: set laravel.app_key or APP_KEY")
	}
	if c.Repair.Actions.CredentialPlaintext.Mode == ModeApply && !c.Laravel.HasKey() {
		add("repair.actions.credential_plaintext.mode", "mode apply needs an APP_KEY to encrypt passwords: set laravel.app_key or APP_KEY")
	}
	fm := r.Actions.FieldMismatch
	fields := make([]string, 0, len(fm.SourceOfTruth))
	for f := range fm.SourceOfTruth {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		fp := "repair.actions.field_mismatch.source_of_truth." + f
		switch src := fm.SourceOfTruth[f]; {
		case !identRE.MatchString(f):
			add(fp, "%q is not a column name", f)
		case src != SourceTenants && src != SourceDatabases:
			add(fp, "unknown source of truth %q (use %s or %s)", src, SourceTenants, SourceDatabases)
		case !slices.Contains(c.Checks.FieldMismatch.Fields, f):
			add(fp, "field %q is not compared by checks.field_mismatch.fields, so it never mismatches", f)
		}
	}
	if fm.Mode == ModeApply && len(fm.SourceOfTruth) == 0 {
		add("repair.actions.field_mismatch.source_of_truth", "mode apply needs the source of truth of each field to repair (tenants or tenant_databases)")
	}
	if strings.TrimSpace(r.Actions.ProvisioningStuck.SetStatus) == "" {
		add("repair.actions.provisioning_stuck.set_status", "must not be empty (e.g. failed)")
	} else if slices.Contains(c.Checks.ProvisioningStuck.Statuses, r.Actions.ProvisioningStuck.SetStatus) {
		add("repair.actions.provisioning_stuck.set_status", "%q is itself a provisioning status (checks.provisioning_stuck.statuses): the repair would change nothing", r.Actions.ProvisioningStuck.SetStatus)
	}
	return out
}

// unknownPlaceholder returns the first {{…}} in tmpl that is not one of
// slug, id and database_name, or "".
func unknownPlaceholder(tmpl string) string {
	for rest := tmpl; ; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return ""
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return rest[i:]
		}
		name := rest[i+2 : i+j]
		switch strings.TrimSpace(name) {
		case "slug", "id", "database_name":
		default:
			return fmt.Sprintf("{{%s}}", name)
		}
		rest = rest[i+j+2:]
	}
}

// ExpandTenant fills a template's {{slug}}, {{id}} and {{database_name}}.
func ExpandTenant(tmpl, id, slug, databaseName string) string {
	return strings.NewReplacer("{{slug}}", slug, "{{id}}", id, "{{database_name}}", databaseName,
		"{{ slug }}", slug, "{{ id }}", id, "{{ database_name }}", databaseName).Replace(tmpl)
}
