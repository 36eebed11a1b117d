package checks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
)

func TestDatabaseOrphan(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	l := newLandlord(t)
	x := suffix(t)
	claimedRow := "tenant_claimed_" + x
	claimedTenant := "tenant_only_in_tenants_" + x
	leftover := "tenant_leftover_" + x
	ignored := "tenant_ignored_" + x
	other := "analytics_" + x
	for _, n := range []string{claimedRow, claimedTenant, leftover, ignored, other} {
		s.database(n)
	}
	l.row(1, "claimed", s.host, s.port, claimedRow, "u", "p", "pgsql", nil)
	// The incident's "Tenant database already exists": a tenant without a
	// database row still claims its database through tenants.database_name.
	l.tenant(uuid(2), "incident", claimedTenant, old)

	cfg := config.Default()
	cfg.Checks.DatabaseOrphan.Pattern = "tenant_%" + x
	cfg.Checks.DatabaseOrphan.Ignore = []string{ignored}
	fs, err := l.runEnv(cfg, config.CheckDatabaseOrphan)
	require.NoError(t, err)
	require.Len(t, fs, 1, "%+v", fs)
	f := fs[0]
	assert.Equal(t, leftover, f.DatabaseName)
	assert.Equal(t, "unclaimed", f.Reason)
	assert.Equal(t, "warning", f.Severity)
	assert.Contains(t, f.Actual, "127.0.0.1:")

	// A configured server that cannot be listed makes the run an error naming it.
	cfg.Checks.DatabaseOrphan.Servers = []config.Server{{Host: "127.0.0.1", Port: closedPort(t), Username: "x", Password: "secret-pw-123"}}
	_, err = l.runEnv(cfg, config.CheckDatabaseOrphan)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot list databases on 127.0.0.1:")
	assert.NotContains(t, err.Error(), "secret-pw-123")
}
