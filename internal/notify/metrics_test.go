package notify

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

func TestMetricsPreinitialisedAndLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	assert.Equal(t, len(kinds)*len(results), testutil.CollectAndCount(m.notifications))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)

	_, err = NewMetrics(reg)
	require.Error(t, err, "registering twice fails")

	var nilMetrics *Metrics
	nilMetrics.Observe(state.KindStorm, ResultSent) // no panic
	nilMetrics.SetPending(1)
}

// TestDeliveryMetrics: each delivery counts once under its outcome.
func TestDeliveryMetrics(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	dm, m := startWith(t, pool, f, clock, DelivererOptions{Channel: "CDEFAULT"})
	s := dm.store
	count := func(result string) float64 {
		return testutil.ToFloat64(m.notifications.WithLabelValues(state.KindNewFindings, result))
	}

	recordRun(t, s, clock, drift("acme"))
	deliverOnce(t, dm)
	assert.InDelta(t, 1, count(ResultSent), 0)

	f.respond = status(http.StatusTooManyRequests, "Retry-After", "1")
	recordRun(t, s, clock, drift("acme", "globex"))
	deliverOnce(t, dm)
	assert.InDelta(t, 1, count(ResultRetry), 0)

	f.respond = apiError("channel_not_found")
	for range DefaultDeliveryAttempts {
		require.NoError(t, clock.Sleep(t.Context(), maxRetryBackoff))
		deliverOnce(t, dm)
	}
	assert.InDelta(t, 1, count(ResultFailed), 0)
	assert.InDelta(t, 1, count(ResultSent), 0)

	f.respond = status(http.StatusInternalServerError)
	require.NoError(t, clock.Sleep(t.Context(), time.Hour))
	recordRun(t, s, clock, drift("acme", "globex", "initech"))
	deliverOnce(t, dm)
	assert.InDelta(t, 1, count(ResultUncertain), 0)
	assert.InDelta(t, 1, count(ResultRetry), 0)
	assert.Zero(t, testutil.ToFloat64(m.notifications.WithLabelValues(state.KindResolvedReply, ResultSent)))
}

// TestDeliveryMetricsWebhookEdit: a webhook cannot edit, so an edit is
// done without a request: counted as skipped, never as sent.
func TestDeliveryMetricsWebhookEdit(t *testing.T) {
	pool := pgtest.NewPool(t)
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	dm, m := startWith(t, pool, f, clock, DelivererOptions{WebhookURL: f.URL + canaryHook})
	s := dm.store

	resolved := t0.Add(time.Hour)
	fs := []PayloadFinding{{Fingerprint: "fp", TenantSlug: "acme", FirstSeen: t0, ResolvedAt: &resolved}}
	require.NoError(t, s.Enqueue(t.Context(), state.OutboxItem{Kind: state.KindResolvedEdit, Check: "registry_missing",
		ThreadKey: "registry_missing", Payload: Payload{Severity: "critical", Findings: fs}}))
	deliverOnce(t, dm)
	assert.Empty(t, f.requests(), "an edit through a webhook makes no request")
	assert.Equal(t, []string{"sent"}, outboxStates(t, pool))
	assert.Zero(t, testutil.ToFloat64(m.notifications.WithLabelValues(state.KindResolvedEdit, ResultSent)))
	assert.InDelta(t, 1, testutil.ToFloat64(m.notifications.WithLabelValues(state.KindResolvedEdit, ResultSkipped)), 0)
}
