package notify

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantdrift/tenantdrift/internal/state"
)

// Results of a delivery, the values of the result label of
// tenantdrift_slack_notifications_total.
const (
	ResultSent      = "sent"
	ResultRetry     = "retry"
	ResultUncertain = "uncertain"
	ResultFailed    = "failed"
	// ResultSkipped is an item done without a request: an edit of a
	// message that cannot be edited (webhook) or is unknown.
	ResultSkipped = "skipped"
)

// kinds and results are the label values, all pre-initialised.
var (
	kinds = [...]string{state.KindNewFindings, state.KindResolvedReply, state.KindResolvedEdit, state.KindReminder,
		state.KindStorm, state.KindDegraded, state.KindRecovered, state.KindRepair}
	results = [...]string{ResultSent, ResultRetry, ResultUncertain, ResultFailed, ResultSkipped}
)

// Metrics are the Slack delivery metrics. A nil *Metrics records nothing.
type Metrics struct {
	notifications *prometheus.CounterVec
	pending       prometheus.Gauge
}

// NewMetrics builds the Slack delivery metrics and registers them on reg,
// every kind and result at zero. It fails when reg already holds them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tenantdrift",
			Subsystem: "slack",
			Name:      "notifications_total",
			Help:      "Slack notification deliveries by outbox kind and result: sent, retry (failed before reaching Slack, tried again later), uncertain (may have been posted, never retried), failed (given up) or skipped (done without a request: an edit of a message that cannot be edited or is unknown).",
		}, []string{"kind", "result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tenantdrift",
			Subsystem: "slack",
			Name:      "outbox_pending",
			Help:      "Slack notifications waiting in the outbox (due or awaiting a retry) after this replica's last delivery.",
		}),
	}
	for _, c := range []prometheus.Collector{m.notifications, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register slack metrics: %w", err)
		}
	}
	for _, k := range kinds {
		for _, r := range results {
			m.notifications.WithLabelValues(k, r)
		}
	}
	return m, nil
}

// Observe counts one delivery of an item of kind that ended in result
// (one of the Result constants).
func (m *Metrics) Observe(kind, result string) {
	if m == nil {
		return
	}
	m.notifications.WithLabelValues(kind, result).Inc()
}

// SetPending records how many items the outbox holds pending.
func (m *Metrics) SetPending(n int) {
	if m == nil {
		return
	}
	m.pending.Set(float64(n))
}
