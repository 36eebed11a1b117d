package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// registryOrphanSQL finds tenant database rows whose tenant_id matches no
// tenant at all (soft-deleted tenants still count as tenants here).
const registryOrphanSQL = `
SELECT d.id, d.tenant_id, d.slug, d.database_name
FROM registry_databases AS d
WHERE d.tenant_id IS NULL
   OR NOT EXISTS (SELECT 1 FROM registry_tenants_all AS t WHERE t.id = d.tenant_id)`

// RegistryOrphan finds a tenant_databases row that belongs to no tenant,
// which layouts without the foreign key allow.
type RegistryOrphan struct{}

// Statement returns the check's SQL and arguments.
func (RegistryOrphan) Statement(time.Time) (string, pgx.NamedArgs) { return registryOrphanSQL, nil }

// Run implements check.Check.
func (RegistryOrphan) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	return collect(ctx, env, registryOrphanSQL, nil, func(rows pgx.Rows) (check.Finding, error) {
		var rowID string
		var tenantID, slug, db *string
		if err := rows.Scan(&rowID, &tenantID, &slug, &db); err != nil {
			return check.Finding{}, err
		}
		return check.Finding{
			TenantID: deref(tenantID), TenantSlug: deref(slug), DatabaseName: deref(db),
			Reason: "no_tenant", Key: rowID,
			Message: fmt.Sprintf("tenant_databases row %s (database %s) points at tenant_id %s, which does not exist; find its owner or archive the row and its database.",
				rowID, orNull(db), orNull(tenantID)),
		}, nil
	})
}
