package cart

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/batch"
)

// The steps of an order's cart-side timeline (table order_deliveries, GET
// /orders/{order_id}/timeline): what each delivery of its event did. They are for people
// watching the technique work; nothing decides anything from them, and recording one never
// changes what happens to the message.
const (
	StepApplied   = "applied"                // the processed_orders row and the decrement committed
	StepDuplicate = "duplicate_acknowledged" // the order was applied before; acknowledged, cart untouched
	StepRetry     = "retry_requested"        // a transient failure; the broker delivers the message again later
	StepRejected  = "rejected"               // can never be applied; recorded in rejected_messages and acknowledged
	// StepCrashedBeforeApply: cart-crash-before-apply; not acknowledged, so the broker delivers the
	// message again.
	StepCrashedBeforeApply = "crashed_before_apply"
)

// Recorder writes delivery steps in the background, in batches, so that a delivery never waits
// for one. (Writing the applied step inside the apply transaction would keep it exactly in step
// with the cart, but it is one more statement for every order.) A full queue drops steps
// (counted) rather than slowing deliveries down, and a crashing process loses what it had queued;
// the applied step, the one a reader needs most, is then read from processed_orders instead
// (ReadTimeline).
type Recorder struct {
	w *batch.Writer[store.Delivery]
}

// NewRecorder starts the background writer; Close stops it after writing what is queued.
// dropped, if not nil, counts steps dropped because the writer fell behind.
func NewRecorder(st *store.Store, log *slog.Logger, dropped func()) *Recorder {
	write := func(ctx context.Context, b []store.Delivery) error { return st.RecordDeliveries(ctx, b...) }
	return &Recorder{w: batch.New(write, log, dropped)}
}

// Record queues a step. It never blocks; a nil Recorder records nothing (TIMELINE=off). It must
// not be called after Close.
func (r *Recorder) Record(d store.Delivery) {
	if r != nil {
		r.w.Add(d)
	}
}

// Close writes what is queued and stops the writer. Call it once the consumer has stopped.
func (r *Recorder) Close() {
	if r != nil {
		r.w.Close()
	}
}

// note queues a step of one delivery of orderID's event.
func (h *Handler) note(msg *primitive.MessageExt, orderID, step, detail string) {
	if h.timeline == nil || orderID == "" {
		return
	}
	h.timeline.Record(h.step(msg, orderID, step, detail))
}

// noteNow writes a step at once, for a step a crash is about to follow: the recorder's queue dies
// with the process. A failure to write it is logged and changes nothing else.
func (h *Handler) noteNow(ctx context.Context, msg *primitive.MessageExt, orderID, step, detail string) {
	if h.timeline == nil || orderID == "" {
		return
	}
	if err := h.store.RecordDeliveries(ctx, h.step(msg, orderID, step, detail)); err != nil {
		h.log.WarnContext(ctx, "writing a timeline step failed", "order_id", orderID, "step", step, "err", err)
	}
}

func (h *Handler) step(msg *primitive.MessageExt, orderID, step, detail string) store.Delivery {
	if step == StepRetry && h.maxReconsume > 0 && msg.ReconsumeTimes >= h.maxReconsume {
		detail += "; that was the last retry: the broker moves the message to the dead-letter topic"
	}
	if h.wrong.mode != ModeCorrect {
		// Whoever reads the timeline must know that a consumer wrong on purpose did this.
		detail = "CONSUMER=" + h.wrong.mode + " (wrong on purpose): " + detail
	}
	return store.Delivery{
		OrderID: orderID, Step: step, Detail: detail, ReconsumeTimes: int(msg.ReconsumeTimes), MsgID: msg.MsgId, At: h.now(),
	}
}

func appliedDetail(lines int) string {
	return fmt.Sprintf("processed_orders row and %d ordered line(s) taken off the cart, in one transaction", lines)
}
