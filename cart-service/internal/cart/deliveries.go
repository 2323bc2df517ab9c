package cart

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/cart-service/internal/store"
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
)

// Recorder writes delivery steps in the background, in batches, so that a delivery never waits
// for one. (Writing the applied step inside the apply transaction would keep it exactly in step
// with the cart, but it is one more statement for every order.) A full queue drops steps
// (counted) rather than slowing deliveries down, and a crashing process loses what it had queued;
// the applied step, the one a reader needs most, is then read from processed_orders instead
// (httpapi's timeline).
type Recorder struct {
	store   *store.Store
	log     *slog.Logger
	queue   chan store.Delivery
	dropped func() // counts a dropped step
	done    chan struct{}
	stop    sync.Once
}

const (
	queueSize = 8192
	batchSize = 256
	flushEach = 50 * time.Millisecond
)

// NewRecorder starts the background writer; Close stops it after writing what is queued.
func NewRecorder(st *store.Store, log *slog.Logger, dropped func()) *Recorder {
	r := &Recorder{store: st, log: log, queue: make(chan store.Delivery, queueSize), dropped: dropped, done: make(chan struct{})}
	go r.run()
	return r
}

// Record queues a step. It never blocks; a nil Recorder records nothing (TIMELINE=off). It must
// not be called after Close.
func (r *Recorder) Record(d store.Delivery) {
	if r == nil {
		return
	}
	select {
	case r.queue <- d:
	default:
		if r.dropped != nil {
			r.dropped()
		}
	}
}

// Close writes what is queued and stops the writer. Call it once the consumer has stopped.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	r.stop.Do(func() { close(r.queue) })
	<-r.done
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]store.Delivery, 0, batchSize)
	tick := time.NewTicker(flushEach)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.store.RecordDeliveries(ctx, batch...); err != nil {
			r.log.Warn("timeline steps not written", "steps", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case d, ok := <-r.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, d)
			if len(batch) == batchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// note queues a step of one delivery of orderID's event.
func (h *Handler) note(msg *primitive.MessageExt, orderID, step, detail string) {
	if h.timeline == nil || orderID == "" {
		return
	}
	if step == StepRetry && h.maxReconsume > 0 && msg.ReconsumeTimes >= h.maxReconsume {
		detail += "; that was the last retry: the broker moves the message to the dead-letter topic"
	}
	h.timeline.Record(store.Delivery{
		OrderID: orderID, Step: step, Detail: detail, ReconsumeTimes: int(msg.ReconsumeTimes), MsgID: msg.MsgId, At: h.now(),
	})
}

func appliedDetail(lines int) string {
	return fmt.Sprintf("processed_orders row and %d ordered line(s) taken off the cart, in one transaction", lines)
}
