package checks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// FieldMismatch finds a field copied into both tables whose two copies
// differ; NULL against a value is a difference, NULL against NULL is not.
// A tenant with several database rows is in drift on a field only when no
// row agrees (registry_duplicate reports the extra rows).
// It reports one finding per tenant and field, expected being the tenants
// side. Tenants younger than the grace period are spared.
type FieldMismatch struct {
	Fields      []string
	GracePeriod time.Duration
}

// Statement returns the check's SQL and arguments: the compared fields
// become rows of a LATERAL VALUES list, so every field is checked in one
// pass over the join. Field names are sanitized identifiers; their labels
// are parameters.
func (c FieldMismatch) Statement(now time.Time) (string, pgx.NamedArgs) {
	args := pgx.NamedArgs{"cutoff": cutoff(now, c.GracePeriod)}
	vals := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		label := fmt.Sprintf("field_%d", i)
		args[label] = f
		id := pgx.Identifier{f}.Sanitize()
		vals[i] = fmt.Sprintf("(@%s::text, t.%s, d.%s)", label, id, id)
	}
	return `
SELECT t.id, min(t.slug) AS slug, min(t.database_name) AS database_name, f.field, min(f.expected) AS expected, min(f.actual) AS actual
FROM registry_tenants AS t
JOIN registry_databases AS d ON d.tenant_id = t.id
CROSS JOIN LATERAL (VALUES ` + strings.Join(vals, ", ") + `) AS f(field, expected, actual)
WHERE t.created_at IS NULL OR t.created_at < @cutoff::timestamptz
GROUP BY t.id, f.field
HAVING bool_and(f.expected IS DISTINCT FROM f.actual)`, args
}

// Run implements check.Check.
func (c FieldMismatch) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	if len(c.Fields) == 0 {
		return nil, nil
	}
	body, args := c.Statement(env.Now)
	return collect(ctx, env, body, args, func(rows pgx.Rows) (check.Finding, error) {
		var id, field string
		var slug, db, expected, actual *string
		if err := rows.Scan(&id, &slug, &db, &field, &expected, &actual); err != nil {
			return check.Finding{}, err
		}
		return check.Finding{
			TenantID: id, TenantSlug: deref(slug), DatabaseName: deref(db),
			Field: field, Expected: deref(expected), Actual: deref(actual),
			Message: fmt.Sprintf("Tenant %s has %s %s in tenants but %s in tenant_databases; code reading either table sees a different tenant, so copy the right value to the other table.",
				name(deref(slug), id), field, orNull(expected), orNull(actual)),
		}, nil
	})
}
