package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// provisioningStuckSQL finds tenant database rows still in a provisioning
// status after the threshold.
const provisioningStuckSQL = `
SELECT d.id, d.tenant_id, coalesce(t.slug, d.slug) AS slug, d.database_name, d.status, d.created_at
FROM registry_databases AS d
LEFT JOIN registry_tenants_all AS t ON t.id = d.tenant_id
WHERE d.status = ANY (@statuses::text[])
  AND d.created_at < @cutoff::timestamptz`

// ProvisioningStuck finds a tenant database row left in a provisioning
// status longer than Threshold.
type ProvisioningStuck struct {
	Statuses  []string
	Threshold time.Duration
}

// Statement returns the check's SQL and arguments.
func (c ProvisioningStuck) Statement(now time.Time) (string, pgx.NamedArgs) {
	return provisioningStuckSQL, pgx.NamedArgs{"statuses": c.Statuses, "cutoff": cutoff(now, c.Threshold)}
}

// Run implements check.Check.
func (c ProvisioningStuck) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	body, args := c.Statement(env.Now)
	return collect(ctx, env, body, args, func(rows pgx.Rows) (check.Finding, error) {
		var rowID string
		var tenantID, slug, db, status *string
		var created time.Time
		if err := rows.Scan(&rowID, &tenantID, &slug, &db, &status, &created); err != nil {
			return check.Finding{}, err
		}
		age := env.Now.Sub(created).Truncate(time.Minute)
		return check.Finding{
			TenantID: deref(tenantID), TenantSlug: deref(slug), DatabaseName: deref(db),
			Reason: "stuck_in_" + deref(status), Actual: deref(status), Key: rowID,
			Message: fmt.Sprintf("The database of tenant %s has been %s for %s (limit %s), so the tenant cannot be used; finish or fail its provisioning job.",
				name(deref(slug), deref(tenantID)), orNull(status), age, c.Threshold),
		}, nil
	})
}
