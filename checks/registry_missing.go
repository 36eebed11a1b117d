package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// registryMissingSQL finds active tenants older than the grace period with
// no tenant database row: the incident this project exists for.
const registryMissingSQL = `
SELECT t.id, t.slug, t.database_name
FROM registry_tenants AS t
WHERE (t.created_at IS NULL OR t.created_at < @cutoff::timestamptz)
  AND NOT EXISTS (SELECT 1 FROM registry_databases AS d WHERE d.tenant_id = t.id)`

// RegistryMissing finds a tenant with no tenant_databases row.
type RegistryMissing struct {
	// GracePeriod spares tenants created less than this long ago.
	GracePeriod time.Duration
}

// Statement returns the check's SQL and arguments.
func (c RegistryMissing) Statement(now time.Time) (string, pgx.NamedArgs) {
	return registryMissingSQL, pgx.NamedArgs{"cutoff": cutoff(now, c.GracePeriod)}
}

// Run implements check.Check.
func (c RegistryMissing) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	body, args := c.Statement(env.Now)
	return collect(ctx, env, body, args, func(rows pgx.Rows) (check.Finding, error) {
		var id string
		var slug, db *string
		if err := rows.Scan(&id, &slug, &db); err != nil {
			return check.Finding{}, err
		}
		return check.Finding{
			TenantID: id, TenantSlug: deref(slug), DatabaseName: deref(db),
			Reason: "no_database_row",
			Message: fmt.Sprintf("Tenant %s has no tenant_databases row, so nothing can connect to its database and its password reset fails; re-run provisioning or insert the row.",
				name(deref(slug), id)),
		}, nil
	})
}
