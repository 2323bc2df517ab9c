package order

import "github.com/prometheus/client_golang/prometheus"

// Metrics are order-service's Prometheus metrics.
type Metrics struct {
	placed     *prometheus.CounterVec
	checkBacks *prometheus.CounterVec
	localTx    prometheus.Histogram
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		placed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_placed_total",
			Help: "POST /orders outcomes: created, pending, replayed, not_placed, broker_unavailable, invalid, conflict (and event_lost, only ever from the dual-write benchmark baseline).",
		}, []string{"outcome"}),
		checkBacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "order_checkbacks_total",
			Help: "Broker transaction check-backs by answer: commit, rollback, unknown.",
		}, []string{"answer"}),
		localTx: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "order_local_tx_seconds",
			Help:    "Duration of the local transaction (tx_log + order + items, commit included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	reg.MustRegister(m.placed, m.checkBacks, m.localTx)
	return m
}
