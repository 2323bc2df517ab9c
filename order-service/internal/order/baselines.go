package order

// THE WRONG WAYS, KEPT ONLY TO MEASURE AGAINST.
//
// scripts/bench.sh compares the transactional flow of place.go with two baselines, chosen with
// PLACEMENT=direct or PLACEMENT=dual-write. Neither is a way to place orders: each breaks the one
// promise this project is about, and the comments below say exactly how. They exist so that the
// price of doing it right is a measured number, not a guess. Never run them outside a benchmark.

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/events"
)

// Placements: the values of the PLACEMENT setting.
const (
	PlacementTransactional = "transactional" // place.go: the right way, and the default
	PlacementDirect        = "direct"        // Direct: the database alone, no event at all
	PlacementDualWrite     = "dual-write"    // DualWrite: save, then send a normal message
)

// Direct writes the same rows as the transactional flow (tx_log, the order, its items) in the
// same MySQL transaction, through the same code, and sends nothing. It is the ceiling: what the
// database can do with no messaging at all.
//
// What breaks: cart-service never hears of any order. Every cart keeps its items for ever.
type Direct struct{ s *Service }

// Direct returns the no-messaging baseline that shares s's database, clock and metrics.
func (s *Service) Direct() *Direct { return &Direct{s: s} }

// Place validates, builds and commits the order exactly like Service.Place, minus the message.
func (d *Direct) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	row, replay, err := d.s.baselineCommit(ctx, req, idemKey, fault)
	switch {
	case err != nil:
		return Placed{}, err
	case replay != nil:
		return *replay, nil
	}
	d.s.metrics.placedAs(OutcomeCreated)
	return Placed{Order: fromRow(row, StatusCreated)}, nil
}

// PlainProducer is the part of a normal (non-transactional) RocketMQ producer DualWrite uses.
type PlainProducer interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
}

// DualWrite is "save, then send", the code people write when they first meet this problem:
// commit the order, then publish OrderCreated as a normal message.
//
// What breaks: between the commit and the broker's acknowledgement there is a window, as long as
// the send takes, in which the process can die, the broker can be down, or the send can time out.
// The order then exists and its event never does: the cart keeps the items for ever. Worse, a
// send that timed out may have been stored after all, and a retry would then announce the order
// twice. No HTTP answer is true in that case: the order exists (so not 5xx), yet it will never
// reach the cart (so 201 promises too much). This baseline answers 201 and counts the loss as
// orders_placed_total{outcome="event_lost"}, which the transactional flow can never produce.
type DualWrite struct {
	s        *Service
	producer PlainProducer
}

// DualWrite returns the save-then-send baseline, publishing with p to s's topic.
func (s *Service) DualWrite(p PlainProducer) *DualWrite { return &DualWrite{s: s, producer: p} }

// Place commits the order like Service.Place, then sends its event as a normal message.
func (d *DualWrite) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	row, replay, err := d.s.baselineCommit(ctx, req, idemKey, fault)
	switch {
	case err != nil:
		return Placed{}, err
	case replay != nil:
		return *replay, nil
	}
	body, err := json.Marshal(event(row))
	if err != nil {
		return Placed{}, fmt.Errorf("encode event: %w", err)
	}
	msg := primitive.NewMessage(d.s.topic, body).WithTag(events.TagOrderCreated).WithKeys([]string{row.OrderID})
	ctx, span := d.s.startSend(ctx, msg, row.OrderID)
	_, err = d.producer.SendSync(ctx, msg)
	span.End()
	if err != nil {
		// The order is committed; its event is lost. This is the bug the project exists to show.
		d.s.log.ErrorContext(ctx, "dual-write: order saved but its event was not sent; the cart will never hear of it",
			"order_id", row.OrderID, "err", err)
		d.s.metrics.placedAs(OutcomeEventLost)
	} else {
		d.s.metrics.placedAs(OutcomeCreated)
	}
	return Placed{Order: fromRow(row, StatusCreated)}, nil
}

// baselineCommit is steps 1 and 3 of place.go without step 2: build (step 1 itself, replay
// included), then commit the rows in one transaction. Fault injection is refused: the fault
// points describe the transactional flow.
func (s *Service) baselineCommit(ctx context.Context, req Request, idemKey string, fault Fault) (store.OrderRow, *Placed, error) {
	if fault.Point != "" {
		return store.OrderRow{}, nil, &ValidationError{Fields: map[string]string{"X-Fault": "not supported by the benchmark baselines"}}
	}
	row, replayed, err := s.build(ctx, req, idemKey)
	if err != nil || replayed != nil {
		return store.OrderRow{}, replayed, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.txBound)
	defer cancel()
	ctx, span := s.startLocalTx(ctx, row.OrderID)
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.ClaimCommitted(ctx, row.OrderID, row.CreatedAt); err != nil {
			return err
		}
		return tx.InsertOrder(ctx, row)
	})
	span.End()
	if err != nil {
		s.metrics.placedAs(OutcomeNotPlaced)
		return store.OrderRow{}, nil, &AttemptError{OrderID: row.OrderID, Err: fmt.Errorf("%w: %w", ErrNotPlaced, err)}
	}
	return row, nil, nil
}
