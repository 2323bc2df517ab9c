package order

import (
	"fmt"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcomes of POST /orders, the values of the outcome label of orders_placed_total.
const (
	OutcomeCreated           = "created"            // 201: the order is durable
	OutcomePending           = "pending"            // 202: the local commit's outcome is unknown; the check-back decides
	OutcomeReplayed          = "replayed"           // an Idempotency-Key replay answered with the earlier order
	OutcomeNotPlaced         = "not_placed"         // the local transaction rolled back; nothing is delivered
	OutcomeBrokerUnavailable = "broker_unavailable" // the half message was not stored; nothing was written
	OutcomeInvalid           = "invalid"            // refused before anything was written or sent
	OutcomeConflict          = "conflict"           // the Idempotency-Key was used with another request
	OutcomeEventLost         = "event_lost"         // save-then-send only (wrong_send.go): saved, event never sent
	OutcomePhantomEvent      = "phantom_event"      // send-then-save only (wrong_send.go): event sent, order not placed
)

// Metrics are order-service's Prometheus metrics.
type Metrics struct {
	placed     *prometheus.CounterVec
	checkBacks *prometheus.CounterVec
	localTx    prometheus.Histogram
	dropped    prometheus.Counter
	placement  *prometheus.GaugeVec
}

// NewMetrics registers order-service's metrics, and the Go runtime's and the process's, on reg
// (the service's own registry, not the global one, so that tests can build as many services as
// they like).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		placed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_placed_total",
			Help: "POST /orders outcomes: created, pending, replayed, not_placed, broker_unavailable, invalid, conflict (and event_lost, phantom_event, only ever from the wrong placements save-then-send and send-then-save).",
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
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "order_timeline_dropped_total",
			Help: "Timeline steps dropped because the writer fell behind.",
		}),
		placement: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "order_placement_mode",
			Help: "1 for the PLACEMENT this instance runs: transactional is the right way; any other value places orders a wrong way on purpose (order/wrong.go).",
		}, []string{"mode"}),
	}
	for _, c := range []prometheus.Collector{m.placed, m.checkBacks, m.localTx, m.dropped, m.placement,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// placementIs sets order_placement_mode{mode=placement} to 1.
func (m *Metrics) placementIs(placement string) { m.placement.WithLabelValues(placement).Set(1) }

// placedAs counts one POST /orders outcome.
func (m *Metrics) placedAs(outcome string) { m.placed.WithLabelValues(outcome).Inc() }

// checkBackAnswered counts one check-back by the answer given to the broker.
func (m *Metrics) checkBackAnswered(state primitive.LocalTransactionState) {
	m.checkBacks.WithLabelValues(stateName(state)).Inc()
}

// localTxTook records how long a local transaction took, commit included.
func (m *Metrics) localTxTook(d time.Duration) { m.localTx.Observe(d.Seconds()) }

// TimelineDropped counts a timeline step dropped because the writer fell behind (timeline.NewRecorder
// takes it).
func (m *Metrics) TimelineDropped() { m.dropped.Inc() }

// stateName is the label (and span attribute) of an answer to the broker.
func stateName(s primitive.LocalTransactionState) string {
	switch s {
	case primitive.CommitMessageState:
		return "commit"
	case primitive.RollbackMessageState:
		return "rollback"
	default:
		return "unknown"
	}
}
