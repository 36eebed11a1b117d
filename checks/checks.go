// Package checks holds tenantdrift's built-in check kinds, one file each.
//
// Every kind is one set-based SQL statement over the canonical registry
// relations of package tenant (registry_tenants, registry_tenants_all,
// registry_databases), never one query per tenant. Values reach SQL only as
// parameters; identifiers only through pgx.Identifier.
package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
)

// Build returns the enabled check instances of cfg in report order. When
// only is non-empty, just those checks are built, enabled or not; an unknown
// name is an error.
func Build(cfg *config.Config, only []string) ([]check.Instance, error) {
	c := &cfg.Checks
	kinds := map[string]check.Check{
		config.CheckRegistryMissing:   RegistryMissing{GracePeriod: cfg.Registry.GracePeriod.D()},
		config.CheckRegistryOrphan:    RegistryOrphan{},
		config.CheckRegistryDuplicate: RegistryDuplicate{},
		config.CheckFieldMismatch:     FieldMismatch{Fields: c.FieldMismatch.Fields, GracePeriod: cfg.Registry.GracePeriod.D()},
		config.CheckProvisioningStuck: ProvisioningStuck{Statuses: c.ProvisioningStuck.Statuses, Threshold: c.ProvisioningStuck.Threshold.D()},
	}
	want := map[string]bool{}
	for _, n := range only {
		if _, ok := kinds[n]; !ok {
			return nil, fmt.Errorf("unknown check %q (known: %v)", n, config.CheckNames())
		}
		want[n] = true
	}
	settings := c.ByName()
	var out []check.Instance
	for _, name := range config.CheckNames() {
		s := settings[name]
		if len(want) > 0 && !want[name] || len(want) == 0 && !s.IsEnabled() {
			continue
		}
		out = append(out, check.Instance{Name: name, Severity: s.Severity, Timeout: s.Timeout.D(), Check: kinds[name]})
	}
	return out, nil
}

// collect runs a composed statement and scans every row with scan.
func collect(ctx context.Context, env check.Env, body string, args pgx.NamedArgs, scan func(pgx.Rows) (check.Finding, error)) ([]check.Finding, error) {
	sql, all := env.Registry.Query(body, args)
	rows, err := env.DB.Query(ctx, sql, all)
	if err != nil {
		return nil, fmt.Errorf("query landlord: %w", err)
	}
	defer rows.Close()
	var out []check.Finding
	for rows.Next() {
		f, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read row: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query landlord: %w", err)
	}
	return out, nil
}

// cutoff is the newest creation time a row may have and still be judged.
func cutoff(now time.Time, age time.Duration) time.Time { return now.Add(-age) }

// name renders a tenant for a message: its slug, else its id.
func name(slug, id string) string {
	if slug != "" {
		return fmt.Sprintf("%q", slug)
	}
	if id != "" {
		return id
	}
	return "(no id)"
}

// orNull renders a possibly NULL value for a message.
func orNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
