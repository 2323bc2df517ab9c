// Package order places orders so that the order row and its OrderCreated event happen together or
// not at all, with a RocketMQ transactional message. This file is the whole flow, top to bottom.
//
// # The two wrong ways
//
// Save, then send: insert the order, commit, publish the event. If the process dies (or the broker
// is down) between the commit and the publish, the order exists and nobody ever hears of it: the
// cart keeps the items for ever.
//
// Send, then save: publish, then insert. If the insert fails or the process dies before it, the
// world hears of an order that never existed: the cart loses items for nothing.
//
// Both run, on purpose, in wrong_send.go, and three wrong check-backs (step 5 answered without the
// barrier, from memory, or not at all) in wrong_checkback.go; wrong.go lists them.
//
// # The right way: a transactional ("half") message
//
//  1. Validate the request and build the order and its event. The order ID is made here, before
//     anything is written or sent, so the message, the rows and the check-back all share it.
//  2. Send the event as a half message: the broker stores it but no consumer can see it yet. If
//     this fails, nothing was written: answer 503.
//  3. The client library then calls ExecuteLocalTransaction on this same goroutine: one MySQL
//     transaction writes the tx_log row, the order and its items. Its answer (commit / rollback /
//     unknown) goes to the broker; commit makes the message visible to cart-service.
//  4. Map the outcome to the HTTP answer, which must never lie: 201 only once the order is
//     durable; 202 "pending" when the commit's outcome is unknown; 5xx when nothing will ever be
//     delivered.
//  5. If the broker never gets the answer (crash, lost packet, "unknown"), it asks any live
//     producer of the group: CheckLocalTransaction answers from the database, never from memory,
//     using tx_log as a barrier so that a late local transaction and the check-back cannot both win.
package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/mysqldb"
)

// Placed is the result of Place.
type Placed struct {
	Order    Order
	Replayed bool // an Idempotency-Key replay: this order was created by an earlier request
}

// attempt carries one order from Place through ExecuteLocalTransaction and back.
type attempt struct {
	ctx   context.Context
	row   store.OrderRow
	fault Fault

	// Set by ExecuteLocalTransaction.
	executed bool
	err      error // nil: committed locally
}

// Place runs steps 1 to 4 for one request. idemKey is the Idempotency-Key header ("" for none).
func (s *Service) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	// Step 1: validate and build (build, below). Bad input is rejected before anything is written
	// or sent, and a replayed Idempotency-Key answers with the order it created.
	if fault.Has(FaultCrashAfterRelayPublish) {
		return Placed{}, invalidFault(FaultCrashAfterRelayPublish + " has no meaning here: only PLACEMENT=outbox has a relay")
	}
	row, replayed, err := s.build(ctx, req, idemKey)
	switch {
	case err != nil:
		return Placed{}, err
	case replayed != nil:
		return *replayed, nil
	}
	msg, err := s.halfMessage(row, fault)
	if err != nil {
		return Placed{}, err
	}
	log := s.log.With("order_id", row.OrderID, "user_id", row.UserID)

	// Step 2: send the half message. Step 3 (ExecuteLocalTransaction) runs inside this call.
	// The message carries this span's trace context to cart-service (tracing.go).
	ctx, span := s.startSend(ctx, msg, row.OrderID)
	at := &attempt{ctx: ctx, row: row, fault: fault}
	s.inflight.Store(row.OrderID, at)
	defer s.inflight.Delete(row.OrderID)
	res, err := s.producer.SendMessageInTransaction(ctx, msg)
	endSend(span, res, err)
	if err == nil && !at.executed {
		// The broker answered, but not SEND_OK (e.g. flush timeout): the library rolled back
		// without calling us.
		err = fmt.Errorf("send status %v", res.Status)
	}
	if err != nil {
		// The broker did not store the half message, so the local transaction never ran. If the
		// broker did store it after all (a timeout), its check-back finds no tx_log row, claims
		// the ID as rolled back, and the message is dropped: nothing is ever delivered.
		log.WarnContext(ctx, "half message not sent", "err", err)
		s.metrics.placedAs(OutcomeBrokerUnavailable)
		return Placed{}, &AttemptError{OrderID: row.OrderID, Err: fmt.Errorf("%w: %v", ErrBrokerUnavailable, err)}
	}
	s.recordAnswer(at, res.State)

	// Step 4: map the local outcome to the HTTP answer.
	switch {
	case at.err == nil:
		// Durable. Whether the commit reached the broker or not (skip-end-transaction, a lost
		// packet), the check-back will find tx_log 'committed': 201 is the truth.
		log.InfoContext(ctx, "order created", "msg_id", res.MsgID, "broker_answer", stateName(res.State))
		s.metrics.placedAs(OutcomeCreated)
		return Placed{Order: fromRow(row, StatusCreated)}, nil
	case errors.Is(at.err, mysqldb.ErrCommitUnknown):
		// COMMIT failed and we cannot know whether it took effect. We answered the broker
		// Unknown; its check-back will read the truth from tx_log. So must the client.
		log.WarnContext(ctx, "local commit outcome unknown; the check-back will decide", "err", at.err)
		s.metrics.placedAs(OutcomePending)
		return Placed{Order: fromRow(row, StatusPending)}, nil
	case idemKey != "" && mysqldb.IsDuplicateKey(at.err, store.KeyIdempotency):
		// Another request with the same Idempotency-Key committed first; ours rolled back.
		return s.replay(ctx, req, idemKey)
	default:
		// Rolled back locally and answered Rollback: the half message is dropped.
		log.ErrorContext(ctx, "local transaction failed; order not placed", "err", at.err)
		s.metrics.placedAs(OutcomeNotPlaced)
		return Placed{}, &AttemptError{OrderID: row.OrderID, Err: fmt.Errorf("%w: %w", ErrNotPlaced, at.err)}
	}
}

// ExecuteLocalTransaction is step 3, called by the client library once the broker has stored the
// half message, on the goroutine that called SendMessageInTransaction.
func (s *Service) ExecuteLocalTransaction(msg *primitive.Message) (state primitive.LocalTransactionState) {
	v, ok := s.inflight.Load(msg.GetKeys())
	if !ok {
		// Not an order this process is placing (the start-up warm-up message): roll it back.
		return primitive.RollbackMessageState
	}
	at := v.(*attempt)
	at.executed = true
	if s.injects(at.fault, FaultCrashAfterHalf) {
		s.crash() // the broker holds a half message nobody will answer: the check-back must roll it back
	}
	halfStored := s.now()

	// The library gives us no context and takes no error back; bound the work ourselves. It keeps
	// the request's values but not its cancellation: a client that hangs up must not turn a
	// commit that is under way into an unknown outcome.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(at.ctx), s.txBound+at.fault.Slow)
	defer cancel()
	ctx, span := s.startLocalTx(ctx, at.row.OrderID)
	defer func() { endLocalTx(span, state, at.err) }()

	start := time.Now()
	at.err = s.store.InTx(ctx, func(tx *store.Store) error {
		// tx_log first: it is the barrier against a concurrent check-back. If the check-back
		// came first (this transaction was slower than the broker's transaction timeout), this
		// insert fails on the primary key and the whole transaction rolls back, which agrees
		// with the rollback the check-back already answered. Without this row, a check-back that
		// arrives mid-transaction would see no order and answer rollback; should our own commit
		// then be lost too, we would have committed an order whose event is gone
		// (PLACEMENT=naive-check-back, wrong_checkback.go).
		if err := tx.ClaimCommitted(ctx, at.row.OrderID, at.row.CreatedAt); err != nil {
			return err
		}
		if err := tx.InsertOrder(ctx, at.row); err != nil {
			return err
		}
		if s.injects(at.fault, FaultFailLocalTx) {
			return errors.New("fault injected: fail-local-tx")
		}
		if s.injects(at.fault, FaultSlowLocalTx) {
			// Hold the row locks: a check-back arriving now must wait for this transaction.
			return sleep(ctx, at.fault.Slow)
		}
		// No timeline step is written in here: one more statement in every local transaction
		// costs about a fifth of the throughput. They are queued once it has committed.
		return nil
	})
	s.metrics.localTxTook(time.Since(start))
	s.recordLocalTx(at, halfStored)

	switch {
	case at.err == nil:
		if s.injects(at.fault, FaultCrashAfterLocalCommit) {
			s.crash() // committed, answer never sent: the check-back must commit the message
		}
		if s.injects(at.fault, FaultSkipEndTransaction) {
			// Unknown makes the library send no commit; the broker will check back.
			return primitive.UnkonwnState
		}
		return primitive.CommitMessageState
	case errors.Is(at.err, mysqldb.ErrCommitUnknown):
		// Maybe committed, maybe not. Answering Rollback could drop the event of an order that
		// exists; answering Commit could announce one that does not. Let the check-back decide.
		return primitive.UnkonwnState
	default:
		// Definitely not committed (the statement failed, or the connection died before COMMIT,
		// which makes the server roll back).
		return primitive.RollbackMessageState
	}
}

// CheckLocalTransaction is step 5: the broker asks what became of a half message that got no
// answer. Any instance of the producer group may be asked, including one that has never seen the
// order, so the answer comes from the database alone (store.ResolveCheck explains the barrier).
func (s *Service) CheckLocalTransaction(msg *primitive.MessageExt) (state primitive.LocalTransactionState) {
	orderID := msg.GetKeys()
	log := s.log.With("order_id", orderID, "msg_id", msg.MsgId)
	var (
		ctx     = context.Background()
		span    trace.Span // started below, inside the recover: tracing must not stop check-backs either
		outcome store.Outcome
		err     error
	)
	defer func() {
		// A panic here would end the client's check-back goroutine silently, and every later
		// check would block for ever. Answer Unknown: the broker asks again.
		if r := recover(); r != nil {
			log.ErrorContext(ctx, "check-back panicked", "panic", r)
			state = primitive.UnkonwnState
		}
		s.metrics.checkBackAnswered(state)
		s.recordCheckBack(orderID, state)
		endCheckBack(span, state, string(outcome), err)
	}()
	ctx, span = s.startCheckBack(msg)
	if orderID == "" {
		log.WarnContext(ctx, "check-back for a message without an order ID; rolling it back")
		return primitive.RollbackMessageState
	}
	// Bounded (10 s): the library answers check-backs one at a time, so a stuck one stalls them
	// all. A local transaction holding the row longer than this gets Unknown, and a later check.
	ctx, cancel := context.WithTimeout(ctx, s.checkBound)
	defer cancel()
	outcome, err = s.store.ResolveCheck(ctx, orderID, s.now())
	if err != nil {
		log.WarnContext(ctx, "check-back could not read the outcome; answering unknown", "err", err)
		return primitive.UnkonwnState
	}
	log.InfoContext(ctx, "check-back answered", "outcome", outcome)
	if outcome == store.Committed {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

// build is step 1: it validates the request and builds the order's rows. It answers an
// Idempotency-Key replay (replayed is then set) without building anything. Nothing is written or
// sent. The wrong placements without a half message share it (wrong_send.go).
func (s *Service) build(ctx context.Context, req Request, idemKey string) (row store.OrderRow, replayed *Placed, err error) {
	if err := validate(req, idemKey); err != nil {
		s.metrics.placedAs(OutcomeInvalid)
		return store.OrderRow{}, nil, err
	}
	// A replayed Idempotency-Key answers with the order it created, without a second half
	// message. (Two concurrent first uses both get past this; the unique key sorts them out in
	// step 4.)
	if idemKey != "" {
		p, err := s.replay(ctx, req, idemKey)
		switch {
		case err == nil:
			return store.OrderRow{}, &p, nil
		case !errors.Is(err, store.ErrNotFound):
			return store.OrderRow{}, nil, err
		}
	}
	// The order ID is made here, before anything is written or sent, so the message, the rows
	// and the check-back all share it. UUIDv7: unique without coordination, and time-ordered, so
	// inserts append to the index.
	id, err := uuid.NewV7()
	if err != nil {
		return store.OrderRow{}, nil, fmt.Errorf("new order id: %w", err)
	}
	return req.row(id.String(), s.now(), idemKey), nil, nil
}

// halfMessage is the OrderCreated event of row, as the message step 2 sends.
func (s *Service) halfMessage(row store.OrderRow, fault Fault) (*primitive.Message, error) {
	body, err := json.Marshal(event(row))
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	// The key is the order ID: the check-back reads it to find the tx_log row, and consumers
	// deduplicate on the order ID in the body.
	msg := primitive.NewMessage(s.topic, body).WithTag(events.TagOrderCreated).WithKeys([]string{row.OrderID})
	if c := fault.cart(); c != "" {
		msg.WithProperty(events.PropertyFault, c)
	}
	return msg, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
