package cart

// The wrong ways, run. Each consumer below breaks one step of Handler.Consume (order_created.go)
// on purpose, so that a test or a teaching script can show what that step prevents. They are
// selected with CONSUMER, start only with FAULT_INJECTION=on, log a warning at start, show on
// /metrics as cart_consumer_mode{mode="..."} and name themselves in every timeline step.
//
//	CONSUMER             what it does                       what breaks, and with what
//	dedup-by-message-id  deduplicates by msg.MsgId          the same order published again as a new
//	                                                        message is applied twice (resend-event)
//	ack-before-commit    acknowledges, then applies         a crash after the offset reached the
//	                                                        broker loses the order (cart-crash-before-apply)
//	delete-lines         deletes the ordered lines          what the user had beyond the order is
//	                                                        wiped (any order of part of a line)

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mysqldb"
)

// Consumer modes, the values of CONSUMER.
const (
	ModeCorrect          = "correct"             // Handler.Consume, order_created.go
	ModeDedupByMessageID = "dedup-by-message-id" // wrong on purpose
	ModeAckBeforeCommit  = "ack-before-commit"   // wrong on purpose
	ModeDeleteLines      = "delete-lines"        // wrong on purpose
)

// Modes lists the values of CONSUMER, the right one first.
func Modes() []string {
	return []string{ModeCorrect, ModeDedupByMessageID, ModeAckBeforeCommit, ModeDeleteLines}
}

// WhatBreaks says in one line what a wrong mode breaks, for the warning at start; "" for the right
// one.
func WhatBreaks(mode string) string {
	switch mode {
	case ModeDedupByMessageID:
		return "deduplicates by message ID: an order published again as a new message is applied twice"
	case ModeAckBeforeCommit:
		return "acknowledges before applying: a crash after the offset reached the broker loses the order"
	case ModeDeleteLines:
		return "deletes the ordered lines instead of decrementing them: wipes what the user had beyond the order"
	}
	return ""
}

// Timeline steps only the wrong consumers write, each naming what went wrong.
const (
	StepAppliedTwice           = "applied_twice"              // dedup-by-message-id: the order was applied before under another message ID
	StepAcknowledgedFirst      = "acknowledged_before_apply"  // ack-before-commit: acknowledged, handed to a worker
	StepAcknowledgedNotApplied = "acknowledged_never_applied" // ack-before-commit: the worker died or failed; nobody delivers it again
	StepAppliedWipingLines     = "applied_wiped_additions"    // delete-lines: took more than the order asked
)

// wrongWay holds what the wrong consumers need beyond the Handler.
type wrongWay struct {
	mode    string
	persist func() error // ack-before-commit: send acknowledged offsets to the broker now

	// ack-before-commit: acknowledged messages waiting for the worker to apply them.
	later  chan *primitive.MessageExt
	done   sync.WaitGroup
	mu     sync.Mutex // guards closed and the sends on later: the client does not wait for
	closed bool       // running callbacks when it shuts down, so one may still hand a message over
}

// newWrongWay builds what the handler's mode needs beyond the Handler.
func newWrongWay(h *Handler, mode string, faults bool, persist func() error) (*wrongWay, error) {
	if mode == "" {
		mode = ModeCorrect
	}
	// main refuses these too, naming the settings; this keeps any other caller of NewHandler from
	// running a wrong consumer by accident.
	if !slices.Contains(Modes(), mode) {
		return nil, fmt.Errorf("unknown consumer mode %q (one of %s)", mode, strings.Join(Modes(), ", "))
	}
	if WhatBreaks(mode) != "" && !faults {
		return nil, fmt.Errorf("consumer mode %s is wrong on purpose and runs only with fault injection on", mode)
	}
	w := &wrongWay{mode: mode, persist: persist}
	if mode == ModeAckBeforeCommit {
		w.later = make(chan *primitive.MessageExt, 256)
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			for msg := range w.later {
				h.applyAcknowledged(msg)
			}
		}()
	}
	return w, nil
}

// Callback is the push consumer's callback for the handler's mode: Consume, the right consumer,
// unless CONSUMER chose a wrong one.
func (h *Handler) Callback() func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	switch h.wrong.mode {
	case ModeDedupByMessageID:
		return h.applyEach(h.applyDedupByMessageID)
	case ModeDeleteLines:
		return h.applyEach(h.applyDeletingLines)
	case ModeAckBeforeCommit:
		return h.consumeAckFirst
	}
	return h.Consume
}

// Close stops the ack-before-commit worker after it has applied what it was handed; call it once
// the consumer has stopped. It does nothing for the other modes, or when called again.
func (h *Handler) Close() {
	if h.wrong.later != nil {
		h.wrong.mu.Lock()
		if !h.wrong.closed {
			h.wrong.closed = true
			close(h.wrong.later)
		}
		h.wrong.mu.Unlock()
		h.wrong.done.Wait()
	}
}

// ---------------------------------------------------------------------------------------------
// dedup-by-message-id
//
// What it does: one transaction inserts msg.MsgId into processed_messages (primary key) and
// decrements the cart; a duplicate message ID is acknowledged without touching the cart. It keeps
// a processed_orders row too, but that row decides nothing.
//
// Why it looks right: with this client msg.MsgId is the ID the producer gave the message, and
// every copy the broker makes keeps it: retries through the retry topic, check-back re-puts, the
// dead-letter topic, a crash before the acknowledgement. It passes every other fault point of the
// project, cart-crash-after-commit included.
//
// What breaks: the same order published again as a new message (an outbox relay re-publishing a
// row whose acknowledgement it lost; order-service's resend-event fault point does exactly that)
// has a new message ID. This consumer applies it again: the cart loses the order's quantities
// twice. The right consumer's key is the order ID (step 1 of order_created.go), the same in every
// message about the order, so the second message is a duplicate.
func (h *Handler) applyDedupByMessageID(ctx context.Context, tx *store.Store, msg *primitive.MessageExt, ev events.OrderCreated, at time.Time) (step, detail string, err error) {
	if err := tx.InsertProcessedMessage(ctx, msg.MsgId, ev.OrderID, at); err != nil {
		return "", "", err
	}
	again, err := tx.NoteAppliedOrder(ctx, store.ProcessedOrder{
		OrderID: ev.OrderID, UserID: ev.UserID, OrderCreatedAt: createdAt(ev), AppliedAt: at,
	})
	if err != nil {
		return "", "", err
	}
	if err := tx.DecrementLines(ctx, ev.OrderID, ev.UserID, orderedLines(ev), at); err != nil {
		return "", "", err
	}
	if again {
		return StepAppliedTwice, "message ID " + msg.MsgId + " not seen before, so applied; the order had been applied under another message ID: applied twice", nil
	}
	return StepApplied, "message ID " + msg.MsgId + " not seen before: applied", nil
}

// ---------------------------------------------------------------------------------------------
// delete-lines
//
// What it does: deduplicates by the order ID like the right consumer, then deletes each ordered
// SKU's line from the cart instead of taking the ordered quantity off it.
//
// Why it looks right: the user ordered those items, so they leave the cart; in a test where the
// user orders everything in a line, the cart ends exactly as with a decrement.
//
// What breaks: a line holding more than the order took (3 in the cart, 1 ordered; or items the
// user added while the order was on its way) is wiped: the user loses what was not ordered. The
// right consumer decrements (step 3 of order_created.go) and removes only lines that reach zero.
//
// The ledger (cart_changes) records the change as it happened: the order asked 1 and the line
// went from 3 to 0. Nothing is hidden, so the invariant checker sees an application that took
// more than its order asked.
func (h *Handler) applyDeletingLines(ctx context.Context, tx *store.Store, _ *primitive.MessageExt, ev events.OrderCreated, at time.Time) (step, detail string, err error) {
	if err := tx.InsertProcessedOrder(ctx, store.ProcessedOrder{
		OrderID: ev.OrderID, UserID: ev.UserID, OrderCreatedAt: createdAt(ev), AppliedAt: at,
	}); err != nil {
		return "", "", err
	}
	held, err := tx.DeleteOrderedLines(ctx, ev.OrderID, ev.UserID, orderedLines(ev), at)
	if err != nil {
		return "", "", err
	}
	var wiped []string
	for _, it := range ev.Items {
		if q, ok := held[it.SKU]; ok && q > it.Quantity {
			wiped = append(wiped, fmt.Sprintf("%s: held %d, ordered %d, %d wiped", it.SKU, q, it.Quantity, q-it.Quantity))
		}
	}
	if len(wiped) == 0 {
		return StepApplied, "deleted the ordered lines; each held no more than the order took", nil
	}
	sort.Strings(wiped)
	return StepAppliedWipingLines, "deleted the ordered lines, wiping what the order did not take: " + strings.Join(wiped, "; "), nil
}

// applyEach returns a callback that handles each message like Consume does, with apply in place of
// the right consumer's transaction. The cart fault points are honoured as in handle, so that a
// wrong consumer meets the same failures the right one does.
func (h *Handler) applyEach(apply func(context.Context, *store.Store, *primitive.MessageExt, events.OrderCreated, time.Time) (string, string, error)) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		result := consumer.ConsumeSuccess
		for _, msg := range msgs {
			if h.handleWith(ctx, msg, apply) == OutcomeRetried {
				result = consumer.ConsumeRetryLater
				setRetryDelay(ctx, msg.ReconsumeTimes)
			}
		}
		if result == consumer.ConsumeRetryLater {
			h.countDeadLetters(msgs)
		}
		return result, nil
	}
}

func (h *Handler) handleWith(ctx context.Context, msg *primitive.MessageExt, apply func(context.Context, *store.Store, *primitive.MessageExt, events.OrderCreated, time.Time) (string, string, error)) (outcome string) {
	log := h.log.With("msg_id", msg.MsgId, "msg_key", msg.GetKeys(), "reconsume_times", msg.ReconsumeTimes, "consumer", h.wrong.mode)
	ctx, span := h.startConsume(ctx, msg)
	defer func() {
		// As in handle: a panicking callback would be neither acknowledged nor retried.
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "panic while applying a message; retrying", "panic", p, "stack", string(debug.Stack()))
			outcome = OutcomeRetried
		}
		h.metrics.handled(outcome)
		endConsume(span, outcome)
	}()
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()

	ev, err := events.Decode(msg.Body)
	if err != nil {
		return h.reject(ctx, log, msg, err)
	}
	log = log.With("order_id", ev.OrderID, "user_id", ev.UserID)
	fault := h.fault(log, msg)
	if fault == faults.CartFailOnce && msg.ReconsumeTimes == 0 {
		h.note(msg, ev.OrderID, StepRetry, "fault injection: cart-fail-once fails the first delivery")
		return OutcomeRetried
	}
	if fault == faults.CartCrashBeforeApply && h.firstTime(ctx, log, ev.OrderID, fault) {
		// As in handle: not acknowledged, so the broker delivers it again after the restart.
		h.noteNow(ctx, msg, ev.OrderID, StepCrashedBeforeApply,
			"fault injection: cart-crash-before-apply: crashing before the cart transaction; not acknowledged, so the broker delivers the message again")
		h.crash()
		return OutcomeRetried
	}

	var step, detail string
	at := h.now()
	err = h.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		step, detail, err = apply(ctx, tx, msg, ev, at)
		return err
	})
	switch {
	case errors.Is(err, store.ErrAlreadyProcessed), errors.Is(err, store.ErrMessageProcessed):
		log.InfoContext(ctx, "already applied; acknowledging without touching the cart", "err", err)
		h.note(msg, ev.OrderID, StepDuplicate, "seen before ("+err.Error()+"): acknowledged, cart untouched")
		return OutcomeDuplicate
	case errors.Is(err, mysqldb.ErrCommitUnknown), err != nil:
		log.WarnContext(ctx, "applying the order failed; retrying", "err", err)
		h.note(msg, ev.OrderID, StepRetry, "applying failed: "+err.Error())
		return OutcomeRetried
	}
	log.WarnContext(ctx, "order applied by a consumer that is wrong on purpose", "step", step, "detail", detail)
	h.note(msg, ev.OrderID, step, detail)
	if fault == faults.CartCrashAfterCommit {
		h.crash()
	}
	return OutcomeApplied
}

// ---------------------------------------------------------------------------------------------
// ack-before-commit
//
// What it does: the callback hands each message to a worker goroutine and returns ConsumeSuccess
// at once; the worker then applies it the right way (processed_orders and the decrement in one
// transaction). Consumption looks faster: the callback never waits for the database.
//
// Why it looks right: everything the worker does is correct, and a crash right after the
// acknowledgement usually gets a redelivery anyway: the client keeps the acknowledged offset in
// memory and sends it to the broker 10 s after start and every 5 s after that, so a quick kill
// test passes by luck.
//
// What breaks: once the offset has reached the broker, a crash before the worker's commit loses
// the order: the broker will not deliver it again, and the cart keeps the items for ever. With
// cart-crash-before-apply the worker makes that deterministic: it waits until the client has
// recorded the acknowledgement, sends the offset to the broker (what the client would do within
// 5 s anyway), waits for the one-way request to land, then dies. The right consumer acknowledges
// only after its commit (step 4 of order_created.go): the same crash leaves the message
// unacknowledged, and the restarted service applies it.

// consumeAckFirst acknowledges every message before anything is applied.
func (h *Handler) consumeAckFirst(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	h.wrong.mu.Lock()
	defer h.wrong.mu.Unlock()
	if h.wrong.closed { // shutting down: nobody would apply them; let the broker deliver them again
		return consumer.ConsumeRetryLater, nil
	}
	for _, msg := range msgs {
		h.note(msg, msg.GetKeys(), StepAcknowledgedFirst, "acknowledged at once; a worker applies it later")
		h.wrong.later <- msg
	}
	return consumer.ConsumeSuccess, nil
}

// The waits of cart-crash-before-apply in ack-before-commit: the client records the acknowledged
// offset after the callback returns, and sends offsets to the broker one way, without an answer.
const (
	waitForAckRecorded = 200 * time.Millisecond
	waitForOffsetSent  = 700 * time.Millisecond
)

// applyAcknowledged is the worker's part: apply a message that has been acknowledged already.
func (h *Handler) applyAcknowledged(msg *primitive.MessageExt) {
	ctx := context.Background()
	// The message key is the order ID when order-service sent it.
	orderID := msg.GetKeys()
	log := h.log.With("msg_id", msg.MsgId, "msg_key", orderID, "consumer", h.wrong.mode)
	if fault := h.fault(log, msg); fault == faults.CartCrashBeforeApply && h.firstTime(ctx, log, orderID, fault) {
		time.Sleep(waitForAckRecorded)
		if h.wrong.persist != nil {
			if err := h.wrong.persist(); err != nil {
				log.Warn("fault injection: sending the acknowledged offsets to the broker failed", "err", err)
			}
		}
		time.Sleep(waitForOffsetSent)
		log.Warn("fault injection: crashing before the cart transaction, after the acknowledgement reached the broker", "fault", fault)
		h.noteNow(ctx, msg, orderID, StepAcknowledgedNotApplied,
			"fault injection: cart-crash-before-apply: the acknowledgement has reached the broker; crashing before the cart transaction: acknowledged, never applied")
		h.crash()
		return
	}
	if h.handle(ctx, msg) == OutcomeRetried {
		log.Error("applying an acknowledged message failed; the broker will not deliver it again: the order is lost")
		h.note(msg, orderID, StepAcknowledgedNotApplied, "applying failed after the acknowledgement; nobody delivers it again: acknowledged, never applied")
	}
}

// logMode is the warning a service in a wrong mode logs at start.
func logMode(log *slog.Logger, mode string) {
	if mode != ModeCorrect {
		log.Warn("CONSUMER is WRONG ON PURPOSE, for teaching: never run it for real", "consumer", mode, "breaks", WhatBreaks(mode))
	}
}
