package order

// THE TRANSACTIONAL OUTBOX: THE OTHER RIGHT WAY (PLACEMENT=outbox).
//
// place.go makes the broker a party to the order: a half message first, the local transaction
// second, and a check-back when the answer is lost. The outbox needs no broker feature at all:
//
//  1. Validate and build the order and its event, exactly as place.go's step 1.
//  2. One MySQL transaction writes tx_log, the order, its items, and an outbox row holding the
//     OrderCreated event (the same body, order-ID key, tag and properties the half message would
//     carry). The event is now as durable as the order, and only if the order is.
//  3. Answer 201. The broker has not heard of the order yet, and need not be up.
//  4. A relay (relay.go), in every instance, publishes outbox rows as normal messages and then
//     deletes them. A relay that dies between the two publishes the row again later: consumers
//     deduplicate by order ID, so the duplicate is harmless.
//
// What it costs instead: a relay to run and watch, a table that grows whenever the broker is down
// or the relay falls behind, and the delay of the relay (woken at once by this instance, by
// polling for rows other instances left behind). What it buys: orders are accepted while the
// broker is down, where place.go answers 503.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mysqldb"
)

// PlacementOutbox is the PLACEMENT value of the transactional outbox.
const PlacementOutbox = "outbox"

// Outbox places orders with a transactional outbox.
type Outbox struct {
	s    *Service
	wake func() // tells this instance's relay that a row is waiting
}

// Outbox returns the outbox placement over s's database, clock and metrics. wake is called after
// each commit (Relay.Wake), so that the event does not wait for the next poll.
func (s *Service) Outbox(wake func()) *Outbox { return &Outbox{s: s, wake: wake} }

// outboxFaults are the order-side fault points the outbox placement honours (the cart-side ones
// ride on its event as on any other). The half-message points of place.go have no meaning here,
// and resend-event is the wrong ways' stand-in for what crash-after-relay-publish does for real.
var outboxFaults = []string{FaultCrashAfterLocalCommit, FaultFailLocalTx, FaultCrashAfterRelayPublish}

// Place runs steps 1 to 3 for one request. idemKey is the Idempotency-Key header ("" for none).
func (o *Outbox) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	s := o.s
	for _, p := range append([]string{fault.Point}, fault.With...) {
		if p != "" && !faults.IsCart(p) && !slices.Contains(outboxFaults, p) {
			return Placed{}, invalidFault(p + " has no meaning for PLACEMENT=outbox, which sends no half message")
		}
	}
	// Step 1: validate and build, as place.go.
	row, replayed, err := s.build(ctx, req, idemKey)
	switch {
	case err != nil:
		return Placed{}, err
	case replayed != nil:
		return *replayed, nil
	}
	msg, err := s.halfMessage(row, fault) // the very message place.go would send
	if err != nil {
		return Placed{}, err
	}
	log := s.log.With("order_id", row.OrderID, "user_id", row.UserID)

	// Step 2: the order and its event, in one local transaction.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.txBound)
	defer cancel()
	ctx, span := s.startLocalTx(ctx, row.OrderID)
	s.tracing.InjectMessage(ctx, msg) // cart-service continues this trace
	props, err := json.Marshal(msg.GetProperties())
	if err != nil {
		span.End()
		return Placed{}, fmt.Errorf("encode message properties: %w", err)
	}
	relayFault := "" // honoured by the relay that publishes the row, in whichever instance
	if fault.Has(FaultCrashAfterRelayPublish) {
		relayFault = FaultCrashAfterRelayPublish
	}
	start := time.Now()
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		// tx_log keeps invariant I4 (committed exactly for existing orders) true in this mode too.
		if err := tx.ClaimCommitted(ctx, row.OrderID, row.CreatedAt); err != nil {
			return err
		}
		if err := tx.InsertOrder(ctx, row); err != nil {
			return err
		}
		if err := tx.InsertOutbox(ctx, store.OutboxRow{
			OrderID: row.OrderID, Topic: msg.Topic, Tag: msg.GetTags(), Properties: string(props),
			Body: msg.Body, Fault: relayFault, CreatedAt: row.CreatedAt,
		}); err != nil {
			return err
		}
		if s.injects(fault, FaultFailLocalTx) {
			return errors.New("fault injected: fail-local-tx")
		}
		return nil
	})
	s.metrics.localTxTook(time.Since(start))
	span.End()
	switch {
	case err == nil:
		s.timeline.Record(row.OrderID, timeline.LocalCommitted, "outbox: tx_log 'committed', the order, its items and its event in the outbox, in one transaction", s.now())
	case errors.Is(err, mysqldb.ErrCommitUnknown):
		s.timeline.Record(row.OrderID, timeline.LocalUnknown, "outbox: "+err.Error(), s.now())
	default:
		s.timeline.Record(row.OrderID, timeline.LocalRolledBack, "outbox: "+err.Error(), s.now())
	}

	// Step 3: the HTTP answer, from the local outcome alone.
	switch {
	case err == nil:
		if s.injects(fault, FaultCrashAfterLocalCommit) {
			s.crash() // committed, relay not woken: a relay (another instance's, or ours restarted) publishes it
		}
		o.wake()
		log.InfoContext(ctx, "order created; its event waits in the outbox")
		s.metrics.placedAs(OutcomeCreated)
		return Placed{Order: fromRow(row, StatusCreated)}, nil
	case errors.Is(err, mysqldb.ErrCommitUnknown):
		// Both rows or neither: if the COMMIT took effect, the relay publishes the event.
		log.WarnContext(ctx, "local commit outcome unknown", "err", err)
		o.wake()
		s.metrics.placedAs(OutcomePending)
		return Placed{Order: fromRow(row, StatusPending)}, nil
	case idemKey != "" && mysqldb.IsDuplicateKey(err, store.KeyIdempotency):
		return s.replay(ctx, req, idemKey)
	default:
		log.ErrorContext(ctx, "local transaction failed; order not placed", "err", err)
		s.metrics.placedAs(OutcomeNotPlaced)
		return Placed{}, &AttemptError{OrderID: row.OrderID, Err: fmt.Errorf("%w: %w", ErrNotPlaced, err)}
	}
}
