package order

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/faults"
)

// Relay publishes the outbox (outbox.go) as normal RocketMQ messages, oldest row first, a batch
// at a time, and deletes the rows once the broker has stored their events. Every order-service
// instance runs one.
//
// One batch is one MySQL transaction: claim rows (SELECT ... FOR UPDATE SKIP LOCKED), publish
// them in one send, delete them, commit. The row locks are the claim: another relay skips the rows this one
// holds, so two relays never publish the same row at once. If this relay dies anywhere before the
// commit, its connection closes, the server rolls back, the locks go, and another relay (or this
// one, restarted) publishes the rows again. Between publish and commit that is a duplicate; the
// consumer's deduplication by order ID applies it once.
//
// Ordering: within one relay rows go out in id order, but two relays publish side by side (and
// each batch lands on one of the topic's queues), so events of different orders may arrive in
// any order. Nothing here needs more: each order's event
// stands alone.
type Relay struct {
	store    *store.Store
	producer PlainProducer
	log      *slog.Logger
	interval time.Duration
	batch    int
	faults   bool
	crash    func()
	timeline *timeline.Recorder
	wake     chan struct{}
	metrics  relayMetrics
}

// RelayConfig is what a Relay needs besides its store, producer and logger.
type RelayConfig struct {
	// Interval is how long an idle relay waits before looking at the outbox again
	// (OUTBOX_POLL_INTERVAL). Rows this instance writes wake it at once; the interval bounds how
	// long rows left by a dead instance, or by a broker outage, wait. 0 means 100 ms.
	Interval time.Duration
	// Batch is the most rows one transaction claims (OUTBOX_BATCH); 0 means 100.
	Batch int
	// Faults honours crash-after-relay-publish (FAULT_INJECTION=on).
	Faults bool
	// Crash is what the fault point calls; nil means faults.KillSelf.
	Crash func()
	// Timeline records each published event on its order's timeline; nil records none.
	Timeline *timeline.Recorder
}

// NewRelay builds a relay publishing with p; its metrics are registered on reg.
func NewRelay(st *store.Store, p PlainProducer, log *slog.Logger, reg prometheus.Registerer, cfg RelayConfig) (*Relay, error) {
	r := &Relay{store: st, producer: p, log: log.With("component", "outbox-relay"), interval: cfg.Interval,
		batch: cfg.Batch, faults: cfg.Faults, crash: cfg.Crash, timeline: cfg.Timeline, wake: make(chan struct{}, 1)}
	if r.interval <= 0 {
		r.interval = 100 * time.Millisecond
	}
	if r.batch <= 0 {
		r.batch = 100
	}
	if r.crash == nil {
		r.crash = faults.KillSelf
	}
	m, err := newRelayMetrics(reg, st)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// Wake makes the relay look at the outbox now rather than at its next poll. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes the outbox until ctx ends. A batch under way when ctx ends is finished, so that
// a graceful stop leaves no published row behind undeleted.
func (r *Relay) Run(ctx context.Context) {
	poll := time.NewTicker(r.interval)
	defer poll.Stop()
	failing := 0 // batches failed in a row: an outage is logged when it starts and when it ends
	for {
		n, err := r.Once(context.WithoutCancel(ctx))
		switch {
		case err != nil && failing == 0:
			// Typically the broker is down: the rows stay, and the next poll tries again.
			r.log.WarnContext(ctx, "outbox batch not published; retrying at every poll until it is", "err", err)
			failing++
		case err != nil:
			r.log.DebugContext(ctx, "outbox batch not published", "err", err)
			failing++
		case failing > 0:
			r.log.InfoContext(ctx, "outbox published again", "failed_batches", failing)
			failing = 0
		}
		if err == nil && n == r.batch {
			continue // more rows are probably waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// Once claims, publishes and deletes at most one batch of outbox rows, and returns how many it
// published.
//
// The batch goes to the broker in one send (a RocketMQ batch message: one request, one queue,
// stored all or nothing). One send per row made the relay the bottleneck: at 8 clients on two
// cores, orders were accepted about three times as fast as a row-at-a-time relay published them,
// and the outbox grew for as long as the load lasted. A failed send publishes nothing, deletes
// nothing, and the whole batch waits for the next poll. A row that cannot be turned into a message
// (or names another topic than the first) ends the batch before it, so it cannot hold up the rows
// claimed ahead of it.
func (r *Relay) Once(ctx context.Context) (published int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r.metrics.polls.Inc()
	crashAfterPublish := false
	var (
		sendErr error
		sent    []store.OutboxRow
		msgs    []*primitive.Message
	)
	err = r.store.InRelayTx(ctx, func(tx *store.Store) error {
		rows, err := tx.ClaimOutbox(ctx, r.batch)
		if err != nil || len(rows) == 0 {
			return err
		}
		msgs = make([]*primitive.Message, 0, len(rows))
		for _, row := range rows {
			msg, err := relayMessage(row)
			if err == nil && row.Topic != rows[0].Topic {
				err = fmt.Errorf("outbox row %d is for topic %s, the batch for %s", row.ID, row.Topic, rows[0].Topic)
			}
			if err != nil {
				sendErr = err
				break
			}
			msgs = append(msgs, msg)
		}
		if len(msgs) == 0 {
			return nil
		}
		if _, err := r.producer.SendSync(ctx, msgs...); err != nil {
			sendErr = fmt.Errorf("publish %d events: %w", len(msgs), err)
			return nil // nothing published: the rows stay for the next poll
		}
		sent = rows[:len(msgs)]
		for _, row := range sent {
			if r.faults && row.Fault == FaultCrashAfterRelayPublish {
				// Commit without the deletes: the rows stay, published; the fault fires once.
				crashAfterPublish = true
				return tx.ClearOutboxFault(ctx, row.ID)
			}
		}
		ids := make([]int64, len(sent))
		for i, row := range sent {
			ids[i] = row.ID
		}
		return tx.DeleteOutbox(ctx, ids)
	})
	if crashAfterPublish && err == nil {
		r.crash() // published, not deleted: the next relay publishes again, a duplicate
	}
	if err != nil {
		// Published but not deleted: published again later, applied once by the consumer.
		return 0, fmt.Errorf("outbox batch: %w", err)
	}
	published = len(sent)
	for i, row := range sent {
		r.timeline.Record(row.OrderID, timeline.OutboxPublished, "OrderCreated published as a normal message, its outbox row deleted (message ID "+
			msgs[i].GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)+")", time.Now())
	}
	r.metrics.published.Add(float64(published))
	if sendErr != nil {
		r.metrics.failures.Inc()
	}
	return published, sendErr
}

// relayMessage is the normal message of an outbox row: the same topic, tag, key, properties and
// body as the half message of place.go.
func relayMessage(row store.OutboxRow) (*primitive.Message, error) {
	var props map[string]string
	if err := json.Unmarshal([]byte(row.Properties), &props); err != nil {
		return nil, fmt.Errorf("decode properties of outbox row %d: %w", row.ID, err)
	}
	msg := primitive.NewMessage(row.Topic, row.Body)
	msg.WithProperties(props)
	// The client gives a message its ID only when it is sent alone; in a batch each needs its own,
	// or consumers see the broker's offset ID instead. A row published again gets a new one: it
	// is a new message, as with any resend.
	msg.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, primitive.CreateUniqID())
	return msg.WithTag(row.Tag).WithKeys([]string{row.OrderID}), nil
}

// relayMetrics are the relay's Prometheus metrics.
type relayMetrics struct {
	polls     prometheus.Counter
	published prometheus.Counter
	failures  prometheus.Counter
}

func newRelayMetrics(reg prometheus.Registerer, st *store.Store) (relayMetrics, error) {
	m := relayMetrics{
		polls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_polls_total",
			Help: "Claim transactions this relay ran, rows found or not: what an idle relay costs the database.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_published_total",
			Help: "Outbox rows this relay published (a row published again after a crash counts again).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_publish_failures_total",
			Help: "Outbox batches that stopped at a failed send (the broker down, typically).",
		}),
	}
	// The outbox's size, counted when scraped: the events owed to the broker.
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outbox_rows",
		Help: "Rows in the outbox table when scraped: events not yet handed to the broker.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := st.OutboxSize(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	for _, c := range []prometheus.Collector{m.polls, m.published, m.failures, size} {
		if err := reg.Register(c); err != nil {
			return relayMetrics{}, fmt.Errorf("register relay metrics: %w", err)
		}
	}
	return m, nil
}
