package state_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// notifiedAt returns the notified_at of the finding fp; nil when unset.
func notifiedAt(t testing.TB, pool *pgxpool.Pool, fp string) *time.Time {
	t.Helper()
	var at *time.Time
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT notified_at FROM tenantdrift.findings WHERE fingerprint = $1`, fp).Scan(&at))
	if at != nil {
		utc := at.UTC()
		at = &utc
	}
	return at
}

func TestNotifiedAt(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	a := finding("registry_missing", "t1", "", "critical")
	b := finding("registry_missing", "t2", "", "critical")
	i := finding("registry_missing", "t3", "", "info")
	res := result("registry_missing", a, b, i)
	record(t, s, res, 1) // recorded without Slack

	// An announcement that fails to enqueue marks nothing.
	_, err := s.RecordRunWithOutbox(t.Context(), res, at(2), at(2), func(state.Transitions) []state.OutboxItem {
		return []state.OutboxItem{
			{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: "k", Fingerprints: fps(a)},
			{Kind: "bogus"},
		}
	})
	require.Error(t, err)
	assert.Nil(t, notifiedAt(t, pool, a.Fingerprint), "rolled back with the run")

	// a in a message, b in a storm; i held back by min_severity.
	_, err = s.RecordRunWithOutbox(t.Context(), res, at(3), at(3), func(tr state.Transitions) []state.OutboxItem {
		require.Len(t, tr.StillOpen, 3)
		for _, f := range tr.StillOpen {
			assert.Nil(t, f.NotifiedAt, f.TenantSlug)
		}
		return []state.OutboxItem{
			{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: "k", Fingerprints: fps(a)},
			{Kind: state.KindStorm, Fingerprints: fps(b)},
		}
	})
	require.NoError(t, err)
	assert.Equal(t, new(at(3)), notifiedAt(t, pool, a.Fingerprint))
	assert.Equal(t, new(at(3)), notifiedAt(t, pool, b.Fingerprint))
	assert.Nil(t, notifiedAt(t, pool, i.Fingerprint), "held back: not announced")

	// Later runs see it; announcing again keeps the first announcement.
	tr, err := s.RecordRunWithOutbox(t.Context(), res, at(4), at(4), func(tr state.Transitions) []state.OutboxItem {
		return []state.OutboxItem{{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: "k4", Fingerprints: fps(a)}}
	})
	require.NoError(t, err)
	got := map[string]*time.Time{}
	for _, f := range tr.StillOpen {
		if f.NotifiedAt != nil {
			got[f.TenantSlug] = new(f.NotifiedAt.UTC())
		} else {
			got[f.TenantSlug] = nil
		}
	}
	assert.Equal(t, map[string]*time.Time{"t1": new(at(3)), "t2": new(at(3)), "t3": nil}, got)
	assert.Equal(t, new(at(3)), notifiedAt(t, pool, a.Fingerprint))

	// Open findings carry it too.
	still, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	require.Len(t, still, 3)
	assert.Equal(t, at(3), still[0].NotifiedAt.UTC())
}

// TestMigrationMarksAnnounced: upgrading to version 6 marks the findings a
// Slack thread announced, with their first announcement, and no other.
func TestMigrationMarksAnnounced(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	a := finding("registry_missing", "t1", "", "critical") // announced, open
	r := finding("registry_missing", "t2", "", "critical") // announced, resolved
	u := finding("registry_missing", "t3", "", "critical") // never announced
	announce := func(minute int, key string, fs ...string) {
		t.Helper()
		_, err := s.RecordRunWithOutbox(t.Context(), result("registry_missing", a, r, u), at(minute), at(minute),
			func(state.Transitions) []state.OutboxItem {
				return []state.OutboxItem{{Kind: state.KindNewFindings, Check: "registry_missing", ThreadKey: key, Fingerprints: fs}}
			})
		require.NoError(t, err)
	}
	announce(1, "k1", a.Fingerprint, r.Fingerprint)
	announce(2, "k2", a.Fingerprint) // a second thread (a reopening, say)
	record(t, s, result("registry_missing", a, u), 3)

	// As a version 5 schema would have it: nothing marked.
	_, err := pool.Exec(t.Context(), `UPDATE tenantdrift.findings SET notified_at = NULL`)
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), `DELETE FROM tenantdrift.schema_migrations WHERE version = 6`)
	require.NoError(t, err)

	open(t, pool)
	assert.Equal(t, new(at(1)), notifiedAt(t, pool, a.Fingerprint), "the first announcement")
	assert.Equal(t, new(at(1)), notifiedAt(t, pool, r.Fingerprint))
	assert.Nil(t, notifiedAt(t, pool, u.Fingerprint), "announced once after the upgrade")
}
