package checks_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
)

func TestRegistryMissing(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	// Healthy tenant.
	l.tenant(uuid(1), "uml", "tenant_uml", old)
	l.database(uuid(101), uuid(1), "uml", "tenant_uml", "active", old)
	// The incident: a tenant with no tenant_databases row.
	l.tenant(uuid(2), "test1", "tenant_test1", old)
	// Within the grace period: provisioning is still writing the second row.
	l.tenant(uuid(3), "brand-new", "tenant_brand_new", 2*time.Minute)
	// Soft-deleted: left out.
	l.tenant(uuid(4), "gone", "tenant_gone", old)
	l.exec(`UPDATE tenants SET deleted_at = $1 WHERE id = $2`, now.Add(-time.Hour), uuid(4))
	// Excluded status (configured below): left out.
	l.tenant(uuid(5), "suspended-one", "tenant_suspended_one", old)
	l.exec(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, uuid(5))
	// NULL created_at and database_name: old enough to judge, reported.
	l.exec(`INSERT INTO tenants (id, name, email, slug) VALUES ($1, 'x', 'x@example.test', 'no-dates')`, uuid(6))

	cfg := config.Default()
	cfg.Registry.ExcludedStatuses = []string{"suspended"}
	fs := l.mustRun(cfg, config.CheckRegistryMissing)
	require.Len(t, fs, 2)
	bySlug := map[string]string{}
	for _, f := range fs {
		bySlug[f.TenantSlug] = f.TenantID
		assert.Equal(t, "critical", f.Severity)
		assert.Equal(t, config.CheckRegistryMissing, f.Check)
		assert.Contains(t, f.Message, "password reset fails")
		assert.Len(t, f.Fingerprint, 16)
	}
	assert.Equal(t, uuid(2), bySlug["test1"])
	assert.Equal(t, uuid(6), bySlug["no-dates"])

	// Once the row exists the finding is gone.
	l.database(uuid(102), uuid(2), "test1", "tenant_test1", "active", time.Minute)
	fs = l.mustRun(cfg, config.CheckRegistryMissing)
	require.Len(t, fs, 1)
	assert.Equal(t, "no-dates", fs[0].TenantSlug)

	// A zero grace period reports the brand-new tenant too.
	cfg.Registry.GracePeriod = 0
	fs = l.mustRun(cfg, config.CheckRegistryMissing)
	assert.Len(t, fs, 2)
}

func TestRegistryMissingFingerprintStable(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	l.tenant(uuid(2), "test1", "tenant_test1", old)
	cfg := config.Default()
	a := l.mustRun(cfg, config.CheckRegistryMissing)
	// A value that is not part of the identity changes between runs.
	l.exec(`UPDATE tenants SET database_name = 'tenant_renamed' WHERE id = $1`, uuid(2))
	b := l.mustRun(cfg, config.CheckRegistryMissing)
	require.Len(t, a, 1)
	require.Len(t, b, 1)
	assert.Equal(t, a[0].Fingerprint, b[0].Fingerprint)
}
