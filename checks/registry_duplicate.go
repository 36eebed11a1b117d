package checks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// Reasons of registry_duplicate.
const (
	ReasonMultipleRows       = "multiple_rows"
	ReasonDatabaseClaimed    = "database_claimed_by_other_tenant"
	ReasonTenantsShareDBName = "tenants_share_database_name"
)

// registryDuplicateSQL finds, in one statement:
//   - a tenant with more than one tenant database row;
//   - a database name claimed by tenant database rows of different tenants;
//   - a database name two tenants both claim in the tenants table.
//
// Each row is one finding about one tenant, with the number of claimants
// and the first few of their names (a shared default name can have
// thousands of claimants; the list stays short).
const registryDuplicateSQL = `
WITH claimed_rows AS (
    SELECT d.database_name, count(DISTINCT d.tenant_id) AS n,
           (array_agg(DISTINCT coalesce(t.slug, d.tenant_id)))[1:@claimant_names] AS names
    FROM registry_databases AS d
    LEFT JOIN registry_tenants_all AS t ON t.id = d.tenant_id
    WHERE coalesce(d.database_name, '') <> ''
    GROUP BY d.database_name
    HAVING count(DISTINCT d.tenant_id) > 1
), claimed_tenants AS (
    SELECT database_name, count(*) AS n,
           (array_agg(coalesce(slug, id) ORDER BY coalesce(slug, id)))[1:@claimant_names] AS names
    FROM registry_tenants
    WHERE coalesce(database_name, '') <> ''
    GROUP BY database_name
    HAVING count(*) > 1
)
SELECT 'multiple_rows' AS reason, t.id AS tenant_id, t.slug, t.database_name, count(*) AS claimants,
       (array_agg(coalesce(d.database_name, 'NULL') ORDER BY d.database_name))[1:@claimant_names] AS names
FROM registry_tenants AS t
JOIN registry_databases AS d ON d.tenant_id = t.id
GROUP BY t.id, t.slug, t.database_name
HAVING count(*) > 1
UNION ALL
SELECT DISTINCT 'database_claimed_by_other_tenant', d.tenant_id, coalesce(t.slug, d.slug), d.database_name, c.n, c.names
FROM registry_databases AS d
JOIN claimed_rows AS c USING (database_name)
LEFT JOIN registry_tenants_all AS t ON t.id = d.tenant_id
UNION ALL
SELECT 'tenants_share_database_name', t.id, t.slug, t.database_name, c.n, c.names
FROM registry_tenants AS t
JOIN claimed_tenants AS c USING (database_name)`

// claimantNames is how many claimants a finding names.
const claimantNames = 5

// RegistryDuplicate finds a tenant with several tenant database rows, and
// a database claimed by more than one tenant.
type RegistryDuplicate struct{}

// Statement returns the check's SQL and arguments.
func (RegistryDuplicate) Statement(time.Time) (string, pgx.NamedArgs) {
	// One more name than shown, so a finding can leave itself out.
	return registryDuplicateSQL, pgx.NamedArgs{"claimant_names": claimantNames + 1}
}

// Run implements check.Check.
func (RegistryDuplicate) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	body, args := RegistryDuplicate{}.Statement(env.Now)
	return collect(ctx, env, body, args, func(rows pgx.Rows) (check.Finding, error) {
		var reason string
		var id, slug, db *string
		var n int64
		var names []string
		if err := rows.Scan(&reason, &id, &slug, &db, &n, &names); err != nil {
			return check.Finding{}, err
		}
		f := check.Finding{TenantID: deref(id), TenantSlug: deref(slug), DatabaseName: deref(db), Reason: reason}
		who := name(f.TenantSlug, f.TenantID)
		switch reason {
		case ReasonMultipleRows:
			f.Expected, f.Actual = "1", fmt.Sprint(n)
			f.Message = fmt.Sprintf("Tenant %s has %d tenant_databases rows (%s), so the app may connect to either; keep the right one and archive the rest.",
				who, n, listNames(names, "", n))
		case ReasonDatabaseClaimed:
			f.Actual = listNames(names, self(f), n-1)
			f.Message = fmt.Sprintf("Database %s of tenant %s is also claimed by tenant_databases rows of %s, so one tenant can read another's data; give each tenant its own database.",
				orNull(db), who, f.Actual)
		case ReasonTenantsShareDBName:
			f.Actual = listNames(names, self(f), n-1)
			f.Message = fmt.Sprintf("Tenants %s and %s both name database %s in the tenants table; correct tenants.database_name of the wrong one.",
				who, f.Actual, orNull(db))
		}
		return f, nil
	})
}

// self is how a finding's own tenant appears among claimant names.
func self(f check.Finding) string {
	if f.TenantSlug != "" {
		return f.TenantSlug
	}
	return f.TenantID
}

// listNames joins up to claimantNames names other than skip, adding
// "and N more" when total exceeds what is shown.
func listNames(names []string, skip string, total int64) string {
	shown := make([]string, 0, claimantNames)
	for _, n := range names {
		if n != skip && len(shown) < claimantNames {
			shown = append(shown, n)
		}
	}
	out := strings.Join(shown, ", ")
	if rest := total - int64(len(shown)); rest > 0 {
		out += fmt.Sprintf(" and %d more", rest)
	}
	return out
}
