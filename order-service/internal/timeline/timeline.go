// Package timeline records what happened to each order's transaction, step by step: the half
// message stored, the local transaction's outcome, the answer given to the broker, each check-back
// and which instance answered it. It is for people watching the technique work (GET
// /orders/{id}/timeline and the web page), so it must never change the outcome of a step, and it
// must cost little.
//
// So every step goes through Recorder.Record, which queues it and writes batches in the
// background: the flow never waits for a timeline write. (Writing the steps of a committing local
// transaction inside it would keep them exactly in step with the order, but it is one more
// statement in every local transaction, and that costs about a fifth of the throughput.) A full
// queue drops steps (counted) rather than slowing orders down, and a crashing process loses what
// it had queued: the timeline then lacks those steps. The one a reader needs most is filled in
// from the database when it is missing: an order whose tx_log row says committed has committed
// its local transaction (order.Service.Timeline).
package timeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"rmqtx/order-service/internal/store"
)

// Steps, in the order they usually happen.
const (
	HalfStored      = "half_message_stored"
	LocalCommitted  = "local_tx_committed"
	LocalRolledBack = "local_tx_rolled_back"
	LocalUnknown    = "local_tx_outcome_unknown"
	AnswerSent      = "answer_sent"     // detail: commit or rollback
	AnswerWithheld  = "answer_withheld" // no answer sent: the broker will check back
	CheckBack       = "check_back"      // detail: the answer and why
)

// Step is one row of order_timeline.
type Step = store.TimelineStep

// Recorder writes steps for one service instance.
type Recorder struct {
	store    *store.Store
	instance string
	log      *slog.Logger
	queue    chan Step
	dropped  func() // counts a dropped step
	done     chan struct{}
	stop     sync.Once
}

const (
	queueSize = 8192
	batchSize = 256
	flushEach = 50 * time.Millisecond
)

// NewRecorder starts the background writer; Close stops it after writing what is queued.
func NewRecorder(st *store.Store, instance string, log *slog.Logger, dropped func()) *Recorder {
	r := &Recorder{store: st, instance: instance, log: log, queue: make(chan Step, queueSize), dropped: dropped, done: make(chan struct{})}
	go r.run()
	return r
}

// Record queues a step of orderID that happened at at. It never blocks.
func (r *Recorder) Record(orderID, step, detail string, at time.Time) {
	if r == nil {
		return
	}
	s := Step{OrderID: orderID, Step: step, Detail: truncate(detail), Instance: r.instance, At: at.UTC().Truncate(time.Microsecond)}
	select {
	case r.queue <- s:
	default:
		if r.dropped != nil {
			r.dropped()
		}
	}
}

// Close writes what is queued and stops the writer.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	r.stop.Do(func() { close(r.queue) })
	<-r.done
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]Step, 0, batchSize)
	tick := time.NewTicker(flushEach)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.store.InsertTimeline(ctx, batch); err != nil {
			r.log.Warn("timeline steps not written", "steps", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case s, ok := <-r.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, s)
			if len(batch) == batchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func truncate(s string) string {
	if len(s) > 255 {
		return s[:252] + "..."
	}
	return s
}
