package checks_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
)

func TestProvisioningStuck(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	l.tenant(uuid(1), "done", "tenant_done", old)
	l.database(uuid(101), uuid(1), "done", "tenant_done", "active", old)
	l.tenant(uuid(2), "stuck", "tenant_stuck", 3*time.Hour)
	l.database(uuid(102), uuid(2), "stuck", "tenant_stuck", "provisioning", 3*time.Hour)
	l.tenant(uuid(3), "busy", "tenant_busy", 5*time.Minute)
	l.database(uuid(103), uuid(3), "busy", "tenant_busy", "provisioning", 5*time.Minute)
	l.tenant(uuid(4), "fallback", "tenant_fallback", old)
	l.database(uuid(104), uuid(4), "fallback", "tenant_fallback", "fallback", old)

	fs := l.mustRun(config.Default(), config.CheckProvisioningStuck)
	require.Len(t, fs, 1)
	assert.Equal(t, "stuck", fs[0].TenantSlug)
	assert.Equal(t, "provisioning", fs[0].Actual)
	assert.Equal(t, "warning", fs[0].Severity)
	assert.Contains(t, fs[0].Message, "3h0m0s")

	// Statuses and threshold are configurable.
	cfg := config.Default()
	cfg.Checks.ProvisioningStuck.Statuses = []string{"provisioning", "fallback"}
	cfg.Checks.ProvisioningStuck.Threshold = config.Duration(time.Minute)
	cfg.Checks.ProvisioningStuck.Severity = "critical"
	fs = l.mustRun(cfg, config.CheckProvisioningStuck)
	assert.Len(t, fs, 3)
	for _, f := range fs {
		assert.Equal(t, "critical", f.Severity)
	}
}
