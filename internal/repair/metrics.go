package repair

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the repair metrics of the daemon.
type Metrics struct {
	repairs *prometheus.CounterVec
	breaker prometheus.Gauge
}

// metricResults are the values of the result label, all pre-initialised.
var metricResults = []string{StatusApplied, StatusConflict, StatusFailed, StatusSkipped}

// NewMetrics registers the repair metrics on reg, every label combination
// at zero.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tenantdrift", Name: "repairs_total",
			Help: "Repair actions the daemon attempted or held back, by action and result (applied, conflict, failed, skipped).",
		}, []string{"action", "result"}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tenantdrift", Name: "repair_breaker_open",
			Help: "1 while the last repair run found so many tenants in drift that it applied nothing (repair.breaker_ratio).",
		}),
	}
	for _, c := range []prometheus.Collector{m.repairs, m.breaker} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, a := range ActionNames() {
		for _, r := range metricResults {
			m.repairs.WithLabelValues(a, r)
		}
	}
	return m, nil
}

// Observe counts the outcome of one repair run. Planned actions (mode
// plan, kill switch off) are not attempts and are not counted.
func (m *Metrics) Observe(r *Report) {
	if m == nil || r == nil {
		return
	}
	for _, a := range r.Actions {
		if a.Status != StatusPlanned {
			m.repairs.WithLabelValues(a.Action, a.Status).Inc()
		}
	}
	if r.Breaker != "" {
		m.breaker.Set(1)
	} else {
		m.breaker.Set(0)
	}
}
