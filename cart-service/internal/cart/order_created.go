// Package cart applies OrderCreated events to carts: the consuming half of the distributed
// transaction (docs/design.md, step 6), and the twin of order-service's place.go.
//
// RocketMQ delivers a message at least once. order-service made sure the event exists if and only
// if the order does; this consumer must turn "at least once" into "exactly once in effect". Each
// step of Handler.Consume is there because the simpler version breaks:
//
//  1. Deduplicate by the order ID, not by the broker's message ID. With this client the message ID
//     a consumer sees (MessageExt.MsgId, the UNIQ_KEY the producer gives each message it sends)
//     survives every copy the broker makes: a retry through the group's retry topic, the copies a
//     check-back re-puts, the dead-letter topic. So a table of seen message IDs passes every fault
//     the broker can cause, and looks right. But the same order can also be published again as a
//     new message (an outbox relay whose acknowledgement was lost, a manual re-drive, a resend
//     after an ambiguous error), and a new message has a new message ID: a table of seen message
//     IDs applies that order twice (CONSUMER=dedup-by-message-id in wrong.go, shown with the
//     resend-event fault point). The broker's other ID, the offset message ID, even differs for
//     each stored copy. The order ID is the same every time, so it is the key.
//
//  2. Check and mark in the same transaction as the effect, with a primary key doing both: the
//     INSERT into processed_orders. "SELECT, then apply" lets two concurrent deliveries both see
//     "not yet"; "apply, then mark" in two transactions applies twice if the process dies in
//     between. An INSERT on the primary key makes a concurrent twin wait for the first transaction
//     and then fail on the duplicate key; a duplicate means "already applied", so acknowledge
//     without touching the cart.
//
//  3. Decrement, don't delete. Removing the ordered SKUs from the cart would also wipe what the
//     user put back in after ordering; taking off the ordered quantities (and removing lines that
//     reach zero) leaves those. It is also why idempotency visibly matters: applying an order twice
//     takes twice as much. (CONSUMER=delete-lines in wrong.go deletes the lines instead.)
//
//  4. Acknowledge only after the commit. Returning ConsumeSuccess first (or committing in the
//     background) loses the effect when the process dies in between: the broker has moved on. The
//     other way round is safe: dying after the commit and before the acknowledgement means a
//     redelivery, which step 2 turns into a no-op. (The cart-crash-after-commit fault shows it.)
//     Acknowledging first looks safe in a quick test: the client keeps the acknowledged offset in
//     memory and sends it to the broker only every few seconds, so a crash right after the
//     acknowledgement usually gets a redelivery anyway. Once the offset has reached the broker, the
//     effect is gone for good (CONSUMER=ack-before-commit in wrong.go, shown with the
//     cart-crash-before-apply fault point, which this consumer survives: it has not acknowledged).
//
//  5. Don't retry poison. An undecodable or invalid event will be just as invalid on its sixteenth
//     delivery; retrying it for ever blocks the queue (and in orderly consumption, everything behind
//     it). It is recorded in rejected_messages with the reason and acknowledged.
//
//  6. Do retry what is transient. A database error answers ConsumeRetryLater and the broker
//     delivers the message again after a delay; after the configured number of attempts it moves it
//     to the dead-letter topic %DLQ%<group>, where an operator can look at it. A COMMIT whose
//     outcome is unknown (the connection dropped) is retried too: if it did commit, the redelivery
//     hits the primary key of step 2.
package cart

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/trace"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/tracing"
)

// applyTimeout bounds one delivery's database work. The client library hands the callback a
// context without a deadline; a hung connection must become a retry, not a stuck queue.
const applyTimeout = 30 * time.Second

// Config is what a Handler needs besides its store, metrics and logger.
type Config struct {
	// Faults honours the cart-side fault points of package faults (FAULT_INJECTION=on). Off,
	// they are ignored.
	Faults bool
	// Crash is what the crash fault points call; nil means faults.KillSelf. Tests pass a
	// recorder, so the test binary survives.
	Crash func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxReconsume is the consumer's WithMaxReconsumeTimes: a delivery that has been retried this
	// often and fails again goes to the dead-letter topic, and is counted as such. 0: not counted.
	MaxReconsume int32
	// Tracing continues, in the consumer, the trace that order-service wrote into the message;
	// nil records nothing.
	Tracing *tracing.Provider
	// Timeline records what each delivery did (deliveries.go), for people watching; nil records
	// nothing (TIMELINE=off).
	Timeline *Recorder
	// Mode is the consumer's CONSUMER setting: ModeCorrect ("" means it), or one of the consumers
	// of wrong.go that are wrong on purpose.
	Mode string
	// PersistOffsets sends the consumer's acknowledged offsets to the broker now; only
	// CONSUMER=ack-before-commit uses it (wrong.go). nil: not available.
	PersistOffsets func() error
}

// Handler applies OrderCreated messages to carts. Its Consume method is the push consumer's
// callback.
type Handler struct {
	store        *store.Store
	metrics      *Metrics
	log          *slog.Logger
	faults       bool
	crash        func()
	now          func() time.Time
	maxReconsume int32
	tracing      *tracing.Provider
	tracer       trace.Tracer
	timeline     *Recorder
	wrong        *wrongWay // the consumer that is wrong on purpose, if any (wrong.go)
}

// NewHandler builds the consumer callback. A mode that is wrong on purpose needs cfg.Faults.
func NewHandler(st *store.Store, m *Metrics, log *slog.Logger, cfg Config) (*Handler, error) {
	h := &Handler{store: st, metrics: m, log: log, faults: cfg.Faults, crash: cfg.Crash, now: cfg.Now,
		maxReconsume: cfg.MaxReconsume, tracing: cfg.Tracing, timeline: cfg.Timeline}
	if h.tracing == nil {
		h.tracing = tracing.Disabled()
	}
	h.tracer = h.tracing.Tracer(tracerName)
	if h.crash == nil {
		h.crash = faults.KillSelf
	}
	if h.now == nil {
		h.now = time.Now
	}
	w, err := newWrongWay(h, cfg.Mode, cfg.Faults, cfg.PersistOffsets)
	if err != nil {
		return nil, err
	}
	h.wrong = w
	m.setMode(w.mode)
	logMode(log, w.mode)
	return h, nil
}

// Consume handles one batch of messages (one message with the default batch size).
//
// The Go client does not support acknowledging part of a batch: ConsumeRetryLater sends every
// message of the batch back. That is safe here, because the ones already applied come back as
// duplicates (step 2); so each message is handled, and the batch is retried if any one needs it.
func (h *Handler) Consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	result := consumer.ConsumeSuccess
	var reconsumed int32 = -1
	for _, msg := range msgs {
		if h.handle(ctx, msg) == OutcomeRetried {
			result = consumer.ConsumeRetryLater
			if reconsumed < 0 || msg.ReconsumeTimes < reconsumed {
				reconsumed = msg.ReconsumeTimes
			}
		}
	}
	if result == consumer.ConsumeRetryLater {
		setRetryDelay(ctx, reconsumed)
		h.countDeadLetters(msgs)
	}
	// A nil error: the outcome has been logged, with the order ID, in handle.
	return result, nil
}

// countDeadLetters counts the messages of a batch about to be sent back that have used up their
// retries: the broker puts a message whose reconsume count has reached the maximum into the
// group's dead-letter topic (%DLQ%<group>) instead of delivering it again, and nobody consumes
// that topic. The counter is the alert that an operator has work to do.
func (h *Handler) countDeadLetters(msgs []*primitive.MessageExt) {
	if h.maxReconsume <= 0 {
		return
	}
	for _, msg := range msgs {
		if msg.ReconsumeTimes >= h.maxReconsume {
			h.metrics.deadLettered.Inc()
			h.log.Error("giving up on a message after its last retry; the broker moves it to the dead-letter topic",
				"msg_id", msg.MsgId, "msg_key", msg.GetKeys(), "reconsume_times", msg.ReconsumeTimes)
		}
	}
}

// setRetryDelay asks the broker to deliver the message again after delay level 1 on the first
// retry, 2 on the second, and so on. Without it the broker picks level 3 + retries, which is 10 s
// for the first retry with the default levels ("1s 5s 10s 30s 1m 2m ..."): a database blip would
// hold an order back for 10 s. Growing levels keep a longer outage from using up all retries
// within seconds and sending good messages to the dead-letter topic. The durations are the
// broker's messageDelayLevel setting (the local test broker makes them all short).
func setRetryDelay(ctx context.Context, reconsumeTimes int32) {
	cc, ok := primitive.GetConcurrentlyCtx(ctx)
	if !ok {
		return
	}
	cc.DelayLevelWhenNextConsume = min(int(reconsumeTimes)+1, 18) // 18 levels exist
}

// handle applies one message and says what happened to it.
func (h *Handler) handle(ctx context.Context, msg *primitive.MessageExt) (outcome string) {
	log := h.log.With("msg_id", msg.MsgId, "msg_key", msg.GetKeys(), "reconsume_times", msg.ReconsumeTimes)
	// The span continues the trace order-service wrote into the message (tracing.go).
	ctx, span := h.startConsume(ctx, msg)
	defer func() {
		// The client library recovers a panicking callback but then neither acknowledges nor
		// retries the message, which stalls its queue. A panic here is a bug: retry, and say so.
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "panic while applying a message; retrying", "panic", p, "stack", string(debug.Stack()))
			outcome = OutcomeRetried
		}
		h.metrics.handled(outcome)
		endConsume(span, outcome)
	}()
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()

	// Decode and validate. What fails here fails on every delivery: record it and acknowledge.
	ev, err := events.Decode(msg.Body)
	if err != nil {
		return h.reject(ctx, log, msg, err)
	}
	log = log.With("order_id", ev.OrderID, "user_id", ev.UserID)
	span.SetAttributes(attrOrderID.String(ev.OrderID))

	fault := h.fault(log, msg)
	if fault == faults.CartFailOnce && msg.ReconsumeTimes == 0 {
		log.WarnContext(ctx, "fault injection: failing the first delivery", "fault", fault)
		h.note(msg, ev.OrderID, StepRetry, "fault injection: cart-fail-once fails the first delivery")
		return OutcomeRetried
	}
	if fault == faults.CartCrashBeforeApply && h.firstTime(ctx, log, ev.OrderID, fault) {
		// Nothing is acknowledged yet, so the broker delivers the message again after the restart,
		// and that delivery applies the order: the point fires once per order.
		log.WarnContext(ctx, "fault injection: crashing before the cart transaction, before acknowledging", "fault", fault)
		h.noteNow(ctx, msg, ev.OrderID, StepCrashedBeforeApply,
			"fault injection: cart-crash-before-apply: crashing before the cart transaction; not acknowledged, so the broker delivers the message again")
		h.crash()
		return OutcomeRetried
	}

	// One transaction: the processed_orders insert decides whether this delivery applies the
	// order; the decrement commits with it or not at all.
	appliedAt := h.now()
	applyCtx, apply := h.startApply(ctx, ev.OrderID)
	err = h.store.InTx(applyCtx, func(tx *store.Store) error {
		if err := tx.InsertProcessedOrder(applyCtx, store.ProcessedOrder{
			OrderID: ev.OrderID, UserID: ev.UserID, OrderCreatedAt: createdAt(ev), AppliedAt: appliedAt,
		}); err != nil {
			return err
		}
		return tx.DecrementLines(applyCtx, ev.OrderID, ev.UserID, orderedLines(ev), appliedAt)
	})
	endApply(apply, err)
	switch {
	case errors.Is(err, store.ErrAlreadyProcessed):
		log.InfoContext(ctx, "order already applied; acknowledging without touching the cart")
		h.note(msg, ev.OrderID, StepDuplicate, "order ID already in processed_orders: acknowledged, cart untouched")
		return OutcomeDuplicate
	case errors.Is(err, mysqldb.ErrCommitUnknown):
		log.WarnContext(ctx, "cart commit outcome unknown; retrying, the redelivery will find out", "err", err)
		h.note(msg, ev.OrderID, StepRetry, "commit outcome unknown; if it did commit, the redelivery is a duplicate: "+err.Error())
		return OutcomeRetried
	case err != nil:
		log.WarnContext(ctx, "applying the order failed; retrying", "err", err)
		h.note(msg, ev.OrderID, StepRetry, "applying failed: "+err.Error())
		return OutcomeRetried
	}

	// Measured after the commit: that is when the cart change became visible.
	lag := h.now().Sub(ev.CreatedAt)
	if createdAt(ev) != nil && lag >= 0 { // clocks of two machines may disagree
		h.metrics.observeOrderToCart(lag)
	}
	log.InfoContext(ctx, "order applied to cart", "items", len(ev.Items), "order_to_cart_ms", lag.Milliseconds())
	h.note(msg, ev.OrderID, StepApplied, appliedDetail(len(ev.Items)))

	if fault == faults.CartCrashAfterCommit {
		// Only a delivery that applied the order gets here; a redelivery after the crash returns
		// above as a duplicate, so the service crashes once and then recovers.
		log.WarnContext(ctx, "fault injection: crashing after the cart commit, before acknowledging", "fault", fault)
		h.crash()
	}
	return OutcomeApplied
}

// reject records a message that can never be applied. If even that fails (the database is down),
// the message is retried rather than lost without a trace.
func (h *Handler) reject(ctx context.Context, log *slog.Logger, msg *primitive.MessageExt, reason error) string {
	body := msg.Body
	if len(body) > store.MaxSnippet {
		body = body[:store.MaxSnippet]
	}
	err := h.store.RecordRejection(ctx, store.RejectedMessage{
		MsgID:       msg.MsgId,
		MsgKey:      msg.GetKeys(),
		Reason:      reason.Error(),
		BodySnippet: string(body),
		RejectedAt:  h.now(),
	})
	if err != nil {
		log.WarnContext(ctx, "recording a rejected message failed; retrying", "reason", reason, "err", err)
		return OutcomeRetried
	}
	log.ErrorContext(ctx, "rejected a message that can never be applied; recorded and acknowledged", "reason", reason)
	// The message key is the order ID when order-service sent it; the body could not tell us.
	h.note(msg, msg.GetKeys(), StepRejected, reason.Error())
	return OutcomeRejected
}

// fault returns the message's fault point if fault injection is on.
func (h *Handler) fault(log *slog.Logger, msg *primitive.MessageExt) string {
	f := msg.GetProperty(events.PropertyFault)
	if f == "" || !h.faults {
		return ""
	}
	if !faults.IsCart(f) {
		log.Warn("ignoring an unknown fault point", "fault", f)
		return ""
	}
	return f
}

// firstTime reports whether a once-per-order fault point fires for this order now. If the database
// cannot say, it does not fire: the apply will most likely fail and be retried anyway.
func (h *Handler) firstTime(ctx context.Context, log *slog.Logger, orderID, point string) bool {
	first, err := h.store.FireOnce(ctx, orderID, point, h.now())
	if err != nil {
		log.WarnContext(ctx, "fault injection: cannot tell whether the fault point has fired; not firing it", "fault", point, "err", err)
		return false
	}
	return first
}

// createdAt is the event's creation time for processed_orders, or nil when the event carries none
// (or one a DATETIME column cannot hold): the order exists all the same, so the event is applied.
func createdAt(ev events.OrderCreated) *time.Time {
	if ev.CreatedAt.Year() < 1970 || ev.CreatedAt.Year() > 9999 {
		return nil
	}
	t := ev.CreatedAt
	return &t
}

func orderedLines(ev events.OrderCreated) []store.Line {
	lines := make([]store.Line, len(ev.Items))
	for i, it := range ev.Items {
		lines[i] = store.Line{SKU: it.SKU, Quantity: it.Quantity}
	}
	return lines
}
