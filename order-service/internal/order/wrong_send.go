package order

// THE WRONG WAYS WITHOUT A HALF MESSAGE (wrong.go lists them all): direct, save-then-send,
// send-then-save. Each writes the same rows as the transactional flow (tx_log, the order, its items)
// in one MySQL transaction, so that what differs is only how, and whether, the event is sent.
// direct and save-then-send are also the benchmark's baselines (scripts/bench.sh): they exist so
// that the price of doing it right is a measured number, not a guess.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/faults"
)

// Direct writes the order and sends nothing. It is the ceiling: what the database can do with no
// messaging at all.
//
// What breaks: cart-service never hears of any order. Every cart keeps its items for ever.
type Direct struct{ s *Service }

// Direct returns the no-messaging placement that shares s's database, clock and metrics.
func (s *Service) Direct() *Direct { return &Direct{s: s} }

// Place validates, builds and commits the order exactly like Service.Place, minus the message.
// It takes no fault point: it is a benchmark ceiling, and it has nothing left to break.
func (d *Direct) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	if fault.Point != "" {
		return Placed{}, invalidFault("PLACEMENT=direct takes no fault point: it never sends an event")
	}
	row, replay, err := d.s.build(ctx, req, idemKey)
	if err != nil || replay != nil {
		return deref(replay), err
	}
	if err := d.s.commitPlain(ctx, row, fault, PlacementDirect); err != nil {
		d.s.metrics.placedAs(OutcomeNotPlaced)
		return Placed{}, err
	}
	d.s.metrics.placedAs(OutcomeCreated)
	return Placed{Order: fromRow(row, StatusCreated)}, nil
}

// SaveThenSend is the code people write when they first meet this problem: commit the order, then
// publish OrderCreated as a plain message.
//
// What breaks: between the commit and the broker's acknowledgement there is a window, as long as
// the send takes, in which the process can die, the broker can be down, or the send can time out.
// The order then exists and its event never does: the cart keeps the items for ever (I1, "lost
// event"). crash-after-local-commit opens the window on purpose: the process dies right after the
// commit. Nothing retries: the client's send retries live inside SendSync, in the process that
// died. A send that timed out may also have been stored after all, and a retry would then announce
// the order twice. No HTTP answer is true when the send fails: the order exists (so not 5xx), yet it
// will never reach the cart (so 201 promises too much). This placement answers 201 and counts the
// loss as orders_placed_total{outcome="event_lost"}.
//
// What prevents it in place.go: step 2 stores the event (as a half message) before step 3 writes
// the order, and step 5 lets the broker ask about an answer that never came.
type SaveThenSend struct {
	s        *Service
	producer PlainProducer
}

// SaveThenSend returns the save-then-send placement, publishing with p to s's topic.
func (s *Service) SaveThenSend(p PlainProducer) *SaveThenSend {
	return &SaveThenSend{s: s, producer: p}
}

// Place commits the order like Service.Place, then sends its event as a plain message.
func (d *SaveThenSend) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	if err := accepts(PlacementSaveThenSend, fault, FaultFailLocalTx, FaultSlowLocalTx, FaultCrashAfterLocalCommit); err != nil {
		return Placed{}, err
	}
	row, replay, err := d.s.build(ctx, req, idemKey)
	if err != nil || replay != nil {
		return deref(replay), err
	}
	if err := d.s.commitPlain(ctx, row, fault, PlacementSaveThenSend); err != nil {
		d.s.metrics.placedAs(OutcomeNotPlaced)
		return Placed{}, err
	}
	if d.s.injects(fault, FaultCrashAfterLocalCommit) {
		d.s.crash() // the order is committed and its event will never be sent: nobody knows it exists
	}
	msg, err := d.s.halfMessage(row, fault) // the same OrderCreated, sent as a plain message
	if err != nil {
		return Placed{}, err
	}
	// Not cancelled with the request: a client hanging up now must not be what loses the event.
	// (It still can be lost, which is the point: by a crash here, or a send that fails.)
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendBound)
	defer cancel()
	sendCtx, span := d.s.startSend(sendCtx, msg, row.OrderID)
	res, err := d.producer.SendSync(sendCtx, msg)
	span.End()
	if err != nil {
		// The order is committed; its event is lost. This is the bug the project exists to show.
		d.s.log.ErrorContext(ctx, "save-then-send: order saved but its event was not sent; the cart will never hear of it",
			"order_id", row.OrderID, "err", err)
		d.s.timeline.Record(row.OrderID, timeline.EventNotSent, "save-then-send: the send failed after the commit ("+err.Error()+"); nothing will ever send it", d.s.now())
		d.s.metrics.placedAs(OutcomeEventLost)
	} else {
		d.s.timeline.Record(row.OrderID, timeline.EventSent, "save-then-send: OrderCreated sent as a plain message after the commit (message ID "+res.MsgID+")", d.s.now())
		d.s.metrics.placedAs(OutcomeCreated)
	}
	return Placed{Order: fromRow(row, StatusCreated)}, nil
}

// sendBound bounds a plain send that must not be cancelled with its request (save-then-send's, and
// resend-event's): the client's own send timeout is 3 s, with retries.
const sendBound = 10 * time.Second

// SendThenSave publishes OrderCreated as a plain message first, then writes the order.
//
// What breaks: a plain message is visible to consumers as soon as the broker stores it, and nothing
// can take it back. If the local transaction then fails (fail-local-tx), or the process dies before
// it (crash-after-half: here, after the send), cart-service takes the items off the cart for an
// order that does not exist (I2, "phantom"). The HTTP answer is 500 "not placed" and is a lie: the
// order's effect has happened. It is counted as orders_placed_total{outcome="phantom_event"}.
//
// What prevents it in place.go: step 2 sends a half message, invisible to consumers, and step 3's
// rollback (or step 5's check-back, after a crash) drops it.
type SendThenSave struct {
	s        *Service
	producer PlainProducer
}

// SendThenSave returns the send-then-save placement, publishing with p to s's topic.
func (s *Service) SendThenSave(p PlainProducer) *SendThenSave {
	return &SendThenSave{s: s, producer: p}
}

// Place sends the order's event as a plain message, then commits the order like Service.Place.
func (d *SendThenSave) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	if err := accepts(PlacementSendThenSave, fault, FaultCrashAfterHalf, FaultFailLocalTx, FaultSlowLocalTx, FaultCrashAfterLocalCommit); err != nil {
		return Placed{}, err
	}
	row, replay, err := d.s.build(ctx, req, idemKey)
	if err != nil || replay != nil {
		return deref(replay), err
	}
	msg, err := d.s.halfMessage(row, fault) // the same OrderCreated, sent as a plain message
	if err != nil {
		return Placed{}, err
	}
	sendCtx, span := d.s.startSend(ctx, msg, row.OrderID)
	res, err := d.producer.SendSync(sendCtx, msg)
	span.End()
	if err != nil {
		// Answered 503 and counted as broker_unavailable, yet not always true: a send that timed out
		// may have been stored after all, and then it is a phantom too (nobody can tell from here).
		d.s.metrics.placedAs(OutcomeBrokerUnavailable)
		return Placed{}, &AttemptError{OrderID: row.OrderID, Err: fmt.Errorf("%w: %v", ErrBrokerUnavailable, err)}
	}
	d.s.timeline.Record(row.OrderID, timeline.EventSent, "send-then-save: OrderCreated sent as a plain message, visible to cart-service at once, before the order exists (message ID "+res.MsgID+")", d.s.now())
	if d.s.injects(fault, FaultCrashAfterHalf) {
		d.s.crash() // the event is out; the order will never be written
	}
	if err := d.s.commitPlain(ctx, row, fault, PlacementSendThenSave); err != nil {
		// The event is already out: cart-service will apply an order that does not exist.
		d.s.log.ErrorContext(ctx, "send-then-save: the order was not placed but its event was already sent; the cart will apply a phantom",
			"order_id", row.OrderID, "err", err)
		d.s.metrics.placedAs(OutcomePhantomEvent)
		return Placed{}, err
	}
	if d.s.injects(fault, FaultCrashAfterLocalCommit) {
		d.s.crash() // harmless here: the event is out and the order committed
	}
	d.s.metrics.placedAs(OutcomeCreated)
	return Placed{Order: fromRow(row, StatusCreated)}, nil
}

// commitPlain is step 3 of place.go outside a transactional message: the same rows (tx_log, the
// order, its items) in one MySQL transaction, with fail-local-tx and slow-local-tx where step 3
// has them. Its outcome goes on the timeline under the placement's name; the caller counts it.
func (s *Service) commitPlain(ctx context.Context, row store.OrderRow, fault Fault, placement string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.txBound+fault.Slow)
	defer cancel()
	ctx, span := s.startLocalTx(ctx, row.OrderID)
	start := time.Now()
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.ClaimCommitted(ctx, row.OrderID, row.CreatedAt); err != nil {
			return err
		}
		if err := tx.InsertOrder(ctx, row); err != nil {
			return err
		}
		if s.injects(fault, FaultFailLocalTx) {
			return errors.New("fault injected: fail-local-tx")
		}
		if s.injects(fault, FaultSlowLocalTx) {
			return sleep(ctx, fault.Slow)
		}
		return nil
	})
	span.End()
	s.metrics.localTxTook(time.Since(start))
	if err != nil {
		s.timeline.Record(row.OrderID, timeline.LocalRolledBack, placement+": "+err.Error(), s.now())
		return &AttemptError{OrderID: row.OrderID, Err: fmt.Errorf("%w: %w", ErrNotPlaced, err)}
	}
	s.timeline.Record(row.OrderID, timeline.LocalCommitted, placement+": tx_log 'committed', the order and its items, in one transaction", s.now())
	return nil
}

// accepts refuses, with 422, a fault point that has no meaning for a placement without a half
// message (skip-end-transaction, say: there is no transaction to end). resend-event and the cart
// points ride on any event.
func accepts(placement string, fault Fault, points ...string) error {
	for _, p := range append([]string{fault.Point}, fault.With...) {
		switch {
		case p == "", p == FaultResendEvent, faults.IsCart(p):
		case !slices.Contains(points, p):
			return invalidFault(fmt.Sprintf("%s has no meaning for PLACEMENT=%s, which sends no half message", p, placement))
		}
	}
	return nil
}

// deref is *p, or the zero Placed.
func deref(p *Placed) Placed {
	if p == nil {
		return Placed{}
	}
	return *p
}
