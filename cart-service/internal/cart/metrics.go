package cart

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcomes of one delivery, the values of the outcome label of cart_messages_total.
const (
	OutcomeApplied   = "applied"   // the order's lines were taken off the cart
	OutcomeDuplicate = "duplicate" // the order had been applied before; acknowledged, cart untouched
	OutcomeRejected  = "rejected"  // the message can never be applied; recorded and acknowledged
	OutcomeRetried   = "retried"   // a transient failure; the broker delivers it again later
)

// Metrics is what the consumer exposes on /metrics.
type Metrics struct {
	messages     *prometheus.CounterVec
	orderToCart  prometheus.Histogram
	deadLettered prometheus.Counter
	dropped      prometheus.Counter
	mode         *prometheus.GaugeVec
}

// NewMetrics registers cart-service's metrics, and the Go runtime's and the process's, on reg (the
// service's own registry, not the global one, so that tests can build as many services as they
// like). countRejected backs the gauge
// cart_rejected_messages: it counts the table, so the number survives restarts, unlike a counter.
func NewMetrics(reg prometheus.Registerer, countRejected func(context.Context) (int64, error)) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_messages_total",
			Help: "OrderCreated deliveries handled, by outcome (applied, duplicate, rejected, retried).",
		}, []string{"outcome"}),
		orderToCart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cart_order_to_cart_seconds",
			Help: "Time from the order's creation (event created_at) to its commit in the cart database.",
			// 5 ms to about 3 min: a normal delivery takes milliseconds, a retried one seconds,
			// one that waited for a check-back or a restart tens of seconds.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_dead_lettered_total",
			Help: "Deliveries that failed after their last retry (reconsume count at MAX_RECONSUME): the broker moves them to the dead-letter topic %DLQ%<group>, which nobody consumes.",
		}),
	}
	rejected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cart_rejected_messages",
		Help: "Messages recorded in rejected_messages (poison messages that were acknowledged without effect); NaN if the database does not answer.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := countRejected(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	m.mode = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cart_consumer_mode",
		Help: "1 for the consumer this service runs (CONSUMER): correct, or one that is wrong on purpose, for teaching.",
	}, []string{"mode"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cart_timeline_dropped_total",
		Help: "Timeline steps dropped because the writer fell behind.",
	})
	for _, c := range []prometheus.Collector{m.messages, m.orderToCart, m.deadLettered, rejected, m.dropped, m.mode,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	// Every outcome shows from the start, at zero, so that rate() and alerts work before the first
	// rejection ever happens.
	for _, o := range []string{OutcomeApplied, OutcomeDuplicate, OutcomeRejected, OutcomeRetried} {
		m.messages.WithLabelValues(o)
	}
	return m, nil
}

// setMode shows which consumer runs, so that a wrong one cannot pass unnoticed on a dashboard.
func (m *Metrics) setMode(mode string) {
	m.mode.Reset()
	m.mode.WithLabelValues(mode).Set(1)
}

// handled counts one delivery by its outcome.
func (m *Metrics) handled(outcome string) { m.messages.WithLabelValues(outcome).Inc() }

// TimelineDropped counts a timeline step dropped because the writer fell behind (NewRecorder takes
// it).
func (m *Metrics) TimelineDropped() { m.dropped.Inc() }

func (m *Metrics) observeOrderToCart(d time.Duration) { m.orderToCart.Observe(d.Seconds()) }
