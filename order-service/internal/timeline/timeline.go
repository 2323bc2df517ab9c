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
	"log/slog"
	"time"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/batch"
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

	// Only the outbox (order/outbox.go, order/relay.go) records this, after its local commit.
	OutboxPublished = "outbox_published" // the relay published the event and deleted its outbox row

	// Only the wrong ways of placing an order (order/wrong.go) record these.
	EventSent    = "event_sent"     // a plain message, visible at once (save-then-send, send-then-save)
	EventNotSent = "event_not_sent" // the order exists and its event was never sent
	EventResent  = "event_resent"   // fault resend-event: the same order published again as a new message
)

// Step is one row of order_timeline.
type Step = store.TimelineStep

// Recorder writes steps for one service instance.
type Recorder struct {
	instance string
	w        *batch.Writer[Step]
}

// NewRecorder starts the background writer; Close stops it after writing what is queued.
// dropped, if not nil, counts steps dropped because the writer fell behind.
func NewRecorder(st *store.Store, instance string, log *slog.Logger, dropped func()) *Recorder {
	return &Recorder{instance: instance, w: batch.New(st.InsertTimeline, log, dropped)}
}

// Record queues a step of orderID that happened at at. It never blocks; a nil Recorder records
// nothing (TIMELINE=off).
func (r *Recorder) Record(orderID, step, detail string, at time.Time) {
	if r == nil {
		return
	}
	r.w.Add(Step{OrderID: orderID, Step: step, Detail: detail, Instance: r.instance, At: at.UTC().Truncate(time.Microsecond)})
}

// Close writes what is queued and stops the writer.
func (r *Recorder) Close() {
	if r != nil {
		r.w.Close()
	}
}
