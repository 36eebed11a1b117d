package checks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
)

func TestRegistryOrphan(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	// Layouts without the foreign key allow orphans.
	l.exec(`ALTER TABLE tenant_databases DROP CONSTRAINT tenant_databases_tenant_id_foreign`)
	l.tenant(uuid(1), "uml", "tenant_uml", old)
	l.database(uuid(101), uuid(1), "uml", "tenant_uml", "active", old)
	// Its tenant was hard-deleted.
	l.database(uuid(102), uuid(99), "ghost", "tenant_ghost", "active", old)
	// A soft-deleted tenant's row is not an orphan, and is left out.
	l.tenant(uuid(3), "gone", "tenant_gone", old)
	l.exec(`UPDATE tenants SET deleted_at = now() WHERE id = $1`, uuid(3))
	l.database(uuid(103), uuid(3), "gone", "tenant_gone", "active", old)

	fs := l.mustRun(config.Default(), config.CheckRegistryOrphan)
	require.Len(t, fs, 1)
	f := fs[0]
	assert.Equal(t, uuid(99), f.TenantID)
	assert.Equal(t, "ghost", f.TenantSlug)
	assert.Equal(t, "tenant_ghost", f.DatabaseName)
	assert.Equal(t, "warning", f.Severity)
	assert.Contains(t, f.Message, uuid(102))

	// Two orphans of one missing tenant are two findings with distinct fingerprints.
	l.database(uuid(104), uuid(99), "ghost-2", "tenant_ghost_2", "active", old)
	fs = l.mustRun(config.Default(), config.CheckRegistryOrphan)
	require.Len(t, fs, 2)
	assert.NotEqual(t, fs[0].Fingerprint, fs[1].Fingerprint)
}

func TestRegistryOrphanWithForeignKeyIsClean(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	l.tenant(uuid(1), "uml", "tenant_uml", old)
	l.database(uuid(101), uuid(1), "uml", "tenant_uml", "active", old)
	assert.Empty(t, l.mustRun(config.Default(), config.CheckRegistryOrphan))
}
