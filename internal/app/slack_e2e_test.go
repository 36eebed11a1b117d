package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/app"
)

// TestAuditStormOfAThousand: 1,000 tenants lose their database rows at
// once. A cron audit posts one storm summary with the count, not 1,000
// messages; when they all come back, a bounded handful of requests says
// so, not a flood of replies.
func TestAuditStormOfAThousand(t *testing.T) {
	t.Parallel()
	const n = 1000
	dsn, pool := landlord(t)
	execSQL(t, pool, `INSERT INTO tenants (id, name, email, slug, database_name, created_at)
		SELECT gen_random_uuid(), 'Tenant ' || i, 't' || i || '@storm.test', 'storm-' || i, 'tenant_storm_' || i, now() - interval '1 day'
		FROM generate_series(1, $1) AS i`, n)
	slack := newFakeSlack(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state: {enabled: true}\n"+slack.config()), 0o600))
	env := map[string]string{"TENANTDRIFT_LANDLORD_DSN": dsn}
	audit := func() result {
		t.Helper()
		return run(t, env, "audit", "--config", cfg, "--check", "registry_missing", "--format", "json")
	}

	r := audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Equal(t, n, parse(t, r.stdout).Summary["findings"])
	reqs := slack.requests()
	require.Len(t, reqs, 1, "one storm summary, not one message per finding")
	assert.Equal(t, "chat.postMessage", reqs[0].Method)
	assert.Contains(t, reqs[0].Form.Get("text"), "Drift storm: 1000 new findings")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "registry_missing")
	assert.Contains(t, reqs[0].Form.Get("blocks"), "no_database_row")

	// The same storm again: nothing new to say.
	r = audit()
	require.Equal(t, app.ExitDrift, r.code, r.stderr)
	assert.Len(t, slack.requests(), 1)

	// Every row is back: one resolution, however many findings it covers.
	execSQL(t, pool, `INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, status, created_at)
		SELECT gen_random_uuid(), id, database_name, slug, 'u', 'x', 'active', now() FROM tenants`)
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	reqs = slack.requests()
	require.LessOrEqual(t, len(reqs), 3, "a bounded handful of requests, not a flood")
	require.Greater(t, len(reqs), 1, "the resolution is announced")
	for _, req := range reqs[1:] {
		assert.Equal(t, "chat.postMessage", req.Method)
		assert.Less(t, len(req.Form.Get("blocks")), 40_000, "a bounded message")
	}
	resolution := reqs[1].Form.Get("text") + reqs[1].Form.Get("blocks")
	assert.Contains(t, strings.ToLower(resolution), "resolved")
	assert.Contains(t, resolution, "1000")

	// And nothing more once it is quiet.
	r = audit()
	require.Equal(t, app.ExitOK, r.code, r.stderr)
	assert.Len(t, slack.requests(), len(reqs))
	assertNoTokenLeak(t, slack.requests(), r.stdout, r.stderr)
}
