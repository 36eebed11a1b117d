package checks_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
)

func TestRegistryDuplicate(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	// Without the unique constraint two rows may claim one database.
	l.exec(`ALTER TABLE tenant_databases DROP CONSTRAINT tenant_databases_database_name_unique`)
	l.tenant(uuid(1), "healthy", "tenant_healthy", old)
	l.database(uuid(101), uuid(1), "healthy", "tenant_healthy", "active", old)
	// Two rows for one tenant.
	l.tenant(uuid(2), "twice", "tenant_twice", old)
	l.database(uuid(102), uuid(2), "twice", "tenant_twice", "active", old)
	l.database(uuid(103), uuid(2), "twice-old", "tenant_twice_v1", "fallback", old)
	// Rows of two tenants claim one database.
	l.tenant(uuid(3), "alpha", "tenant_alpha", old)
	l.tenant(uuid(4), "beta", "tenant_beta", old)
	l.database(uuid(104), uuid(3), "alpha", "tenant_shared", "active", old)
	l.database(uuid(105), uuid(4), "beta", "tenant_shared", "active", old)
	// Two tenants name one database in the tenants table.
	l.tenant(uuid(5), "gamma", "tenant_gamma", old)
	l.tenant(uuid(6), "delta", "tenant_gamma", old)
	l.database(uuid(106), uuid(5), "gamma", "tenant_gamma", "active", old)
	l.database(uuid(107), uuid(6), "delta", "tenant_delta", "active", old)
	// NULL database names are not duplicates of each other.
	l.tenant(uuid(7), "null-a", nil, old)
	l.tenant(uuid(8), "null-b", nil, old)

	fs := l.mustRun(config.Default(), config.CheckRegistryDuplicate)
	check.Sort(fs, nil)
	got := map[string]string{}
	for _, f := range fs {
		got[f.TenantSlug+"/"+f.Reason] = f.Actual
		assert.Equal(t, "critical", f.Severity)
	}
	assert.Equal(t, map[string]string{
		"twice/" + checks.ReasonMultipleRows:       "2",
		"alpha/" + checks.ReasonDatabaseClaimed:    "beta",
		"beta/" + checks.ReasonDatabaseClaimed:     "alpha",
		"gamma/" + checks.ReasonTenantsShareDBName: "delta",
		"delta/" + checks.ReasonTenantsShareDBName: "gamma",
	}, got)
	require.Len(t, fs, 5)
}

func TestRegistryDuplicateManyClaimants(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	// A default copied into 40 tenants: each finding names five others.
	l.exec(`INSERT INTO tenants (id, name, email, slug, database_name, created_at)
		SELECT gen_random_uuid(), 'T' || i, i || '@x', 'tenant-' || lpad(i::text, 2, '0'), 'tenant_default', now()
		FROM generate_series(1, 40) AS i`)
	fs := l.mustRun(config.Default(), config.CheckRegistryDuplicate)
	require.Len(t, fs, 40)
	for _, f := range fs {
		assert.Equal(t, checks.ReasonTenantsShareDBName, f.Reason)
		assert.NotContains(t, f.Actual, f.TenantSlug+",", "a tenant does not list itself")
		assert.Contains(t, f.Actual, " and 34 more")
		assert.Len(t, strings.Split(strings.TrimSuffix(f.Actual, " and 34 more"), ", "), 5)
	}
}
