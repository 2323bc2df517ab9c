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
	"log/slog"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/tracing"
)

// Producer is the part of the RocketMQ transactional producer this package uses; tests fake it.
type Producer interface {
	SendMessageInTransaction(ctx context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error)
}

// Service places orders. It is also the producer's primitive.TransactionListener.
type Service struct {
	store    *store.Store
	producer Producer
	topic    string
	faults   bool
	txBound  time.Duration
	log      *slog.Logger
	metrics  *Metrics
	crash    func()
	now      func() time.Time
	timeline *timeline.Recorder // what happened, for people watching; nil records nothing
	tracing  *tracing.Provider
	tracer   trace.Tracer

	// inflight hands each attempt from Place to ExecuteLocalTransaction, which the client library
	// calls on the same goroutine, in between, with nothing but the message. It is never used to
	// answer a check-back: after a crash it is empty, and the check-back may come to another
	// instance anyway.
	inflight sync.Map // order ID -> *attempt
}

// Config holds what a Service needs besides its collaborators.
type Config struct {
	Topic          string
	FaultInjection bool
	LocalTxTimeout time.Duration     // bound on the local transaction; default 5s
	Tracing        *tracing.Provider // spans of the flow (tracing.go); nil records none
}

// NewService returns a Service. It has no producer yet: the producer is built with the Service as
// its listener, then handed over with UseProducer.
func NewService(st *store.Store, cfg Config, metrics *Metrics, log *slog.Logger) *Service {
	if cfg.LocalTxTimeout == 0 {
		cfg.LocalTxTimeout = 5 * time.Second
	}
	if cfg.Tracing == nil {
		cfg.Tracing = tracing.Disabled()
	}
	return &Service{
		store: st, topic: cfg.Topic, faults: cfg.FaultInjection, txBound: cfg.LocalTxTimeout,
		log: log, metrics: metrics, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }, // DATETIME(6)
		tracing: cfg.Tracing, tracer: cfg.Tracing.Tracer(tracerName),
		crash: faults.KillSelf,
	}
}

// UseProducer sets the transactional producer whose listener is s.
func (s *Service) UseProducer(p Producer) { s.producer = p }

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
	// Step 1: validate and build. Bad input is rejected before anything is written or sent.
	if err := req.Validate(); err != nil {
		s.metrics.placed.WithLabelValues("invalid").Inc()
		return Placed{}, err
	}
	if err := ValidateIdempotencyKey(idemKey); err != nil {
		s.metrics.placed.WithLabelValues("invalid").Inc()
		return Placed{}, err
	}
	// A replayed Idempotency-Key answers with the order it created, without a second half
	// message. (Two concurrent first uses both get past this; the unique key sorts them out below.)
	if idemKey != "" {
		if p, err := s.replay(ctx, req, idemKey); !errors.Is(err, store.ErrNotFound) {
			return p, err
		}
	}
	// UUIDv7: unique without coordination, and time-ordered, so inserts append to the index.
	id, err := uuid.NewV7()
	if err != nil {
		return Placed{}, fmt.Errorf("new order id: %w", err)
	}
	at := &attempt{ctx: ctx, row: req.row(id.String(), s.now(), idemKey), fault: fault}
	body, err := json.Marshal(event(at.row))
	if err != nil {
		return Placed{}, fmt.Errorf("encode event: %w", err)
	}
	// The key is the order ID: the check-back reads it to find the tx_log row, and consumers
	// deduplicate on the order ID in the body.
	msg := primitive.NewMessage(s.topic, body).WithTag(events.TagOrderCreated).WithKeys([]string{at.row.OrderID})
	if c := fault.cart(); c != "" {
		msg.WithProperty(events.PropertyFault, c)
	}
	log := s.log.With("order_id", at.row.OrderID, "user_id", req.UserID)

	// Step 2: send the half message. Step 3 (ExecuteLocalTransaction) runs inside this call.
	// The message carries this span's trace context to cart-service (tracing.go).
	ctx, span := s.startSend(ctx, msg, at.row.OrderID)
	at.ctx = ctx
	s.inflight.Store(at.row.OrderID, at)
	defer s.inflight.Delete(at.row.OrderID)
	res, err := s.producer.SendMessageInTransaction(ctx, msg)
	endSend(span, res, err)
	if err != nil {
		// The broker did not confirm the half message, so the local transaction never ran. If the
		// broker did store it after all (a timeout), its check-back finds no tx_log row, claims
		// the ID as rolled back, and the message is dropped: nothing is ever delivered.
		log.WarnContext(ctx, "half message not sent", "err", err)
		s.metrics.placed.WithLabelValues("broker_unavailable").Inc()
		return Placed{}, fmt.Errorf("%w: %v", ErrBrokerUnavailable, err)
	}
	if !at.executed {
		// The broker answered, but not SEND_OK (e.g. flush timeout): the library rolled back
		// without calling us.
		log.WarnContext(ctx, "half message not stored", "status", res.Status)
		s.metrics.placed.WithLabelValues("broker_unavailable").Inc()
		return Placed{}, fmt.Errorf("%w: send status %v", ErrBrokerUnavailable, res.Status)
	}

	s.recordAnswer(at, res.State)

	// Step 4: map the local outcome to the HTTP answer.
	switch {
	case at.err == nil:
		// Durable. Whether the commit reached the broker or not (skip-end-transaction, a lost
		// packet), the check-back will find tx_log 'committed': 201 is the truth.
		log.InfoContext(ctx, "order created", "msg_id", res.MsgID, "broker_answer", stateName(res.State))
		s.metrics.placed.WithLabelValues("created").Inc()
		return Placed{Order: fromRow(at.row, StatusCreated)}, nil
	case errors.Is(at.err, mysqldb.ErrCommitUnknown):
		// COMMIT failed and we cannot know whether it took effect. We answered the broker
		// Unknown; its check-back will read the truth from tx_log. So must the client.
		log.WarnContext(ctx, "local commit outcome unknown; the check-back will decide", "err", at.err)
		s.metrics.placed.WithLabelValues("pending").Inc()
		return Placed{Order: fromRow(at.row, StatusPending)}, nil
	case idemKey != "" && mysqldb.IsDuplicateKey(at.err, store.KeyIdempotency):
		// Another request with the same Idempotency-Key committed first; ours rolled back.
		return s.replay(ctx, req, idemKey)
	default:
		// Rolled back locally and answered Rollback: the half message is dropped.
		log.ErrorContext(ctx, "local transaction failed; order not placed", "err", at.err)
		s.metrics.placed.WithLabelValues("not_placed").Inc()
		return Placed{}, fmt.Errorf("%w: %w", ErrNotPlaced, at.err)
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
	if s.faults && at.fault.is(FaultCrashAfterHalf) {
		s.crash() // the broker holds a half message nobody will answer: the check-back must roll it back
	}

	// The library gives us no context and takes no error back; bound the work ourselves. It keeps
	// the request's values but not its cancellation: a client that hangs up must not turn a
	// commit that is under way into an unknown outcome.
	bound := s.txBound + at.fault.Slow
	ctx, cancel := context.WithTimeout(context.WithoutCancel(at.ctx), bound)
	defer cancel()
	ctx, span := s.startLocalTx(ctx, at.row.OrderID)
	defer func() { endLocalTx(span, state, at.err) }()

	start, halfStored := time.Now(), s.now()
	at.err = s.store.InTx(ctx, func(tx *store.Store) error {
		// tx_log first: it is the barrier against a concurrent check-back. If the check-back
		// came first (this transaction was slower than the broker's transaction timeout), this
		// insert fails on the primary key and the whole transaction rolls back, which agrees
		// with the rollback the check-back already answered. Without this row, a check-back that
		// arrives mid-transaction would see no order, answer rollback, and we would then commit
		// an order whose event is lost.
		if err := tx.ClaimCommitted(ctx, at.row.OrderID, at.row.CreatedAt); err != nil {
			return err
		}
		if err := tx.InsertOrder(ctx, at.row); err != nil {
			return err
		}
		if s.faults && at.fault.is(FaultFailLocalTx) {
			return errors.New("fault injected: fail-local-tx")
		}
		if s.faults && at.fault.is(FaultSlowLocalTx) {
			// Hold the row locks: a check-back arriving now must wait for this transaction.
			select {
			case <-time.After(at.fault.Slow):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// No timeline step is written in here: one more statement in every local transaction
		// costs about a fifth of the throughput. They are queued once it has committed.
		return nil
	})
	s.metrics.localTx.Observe(time.Since(start).Seconds())

	switch {
	case at.err == nil:
		s.timeline.Record(at.row.OrderID, timeline.HalfStored, "invisible to consumers until committed", halfStored)
		s.timeline.Record(at.row.OrderID, timeline.LocalCommitted, "tx_log 'committed', the order and its items, in one transaction", s.now())
		if s.faults && at.fault.is(FaultCrashAfterLocalCommit) {
			s.crash() // committed, answer never sent: the check-back must commit the message
		}
		if s.faults && at.fault.is(FaultSkipEndTransaction) {
			// Unknown makes the library send no commit; the broker will check back.
			return primitive.UnkonwnState
		}
		return primitive.CommitMessageState
	case errors.Is(at.err, mysqldb.ErrCommitUnknown):
		// Maybe committed, maybe not. Answering Rollback could drop the event of an order that
		// exists; answering Commit could announce one that does not. Let the check-back decide.
		s.timeline.Record(at.row.OrderID, timeline.HalfStored, "invisible to consumers until committed", halfStored)
		s.timeline.Record(at.row.OrderID, timeline.LocalUnknown, at.err.Error(), s.now())
		return primitive.UnkonwnState
	default:
		// Definitely not committed (the statement failed, or the connection died before COMMIT,
		// which makes the server roll back).
		s.timeline.Record(at.row.OrderID, timeline.HalfStored, "invisible to consumers until committed", halfStored)
		s.timeline.Record(at.row.OrderID, timeline.LocalRolledBack, at.err.Error(), s.now())
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
		s.metrics.checkBacks.WithLabelValues(stateName(state)).Inc()
		if orderID != "" {
			s.timeline.Record(orderID, timeline.CheckBack, checkBackDetail(state), s.now())
		}
		if span != nil {
			endCheckBack(span, state, string(outcome), err)
		}
	}()
	ctx, span = s.startCheckBack(msg)
	if orderID == "" {
		log.WarnContext(ctx, "check-back for a message without an order ID; rolling it back")
		return primitive.RollbackMessageState
	}
	// Bounded: the library answers check-backs one at a time, so a stuck one stalls them all.
	// A local transaction holding the row longer than this gets Unknown, and a later check.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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

// Warmup makes the broker able to reach this producer with check-backs right away. The Go client
// registers a producer with a broker only through heartbeats, sent 1 s after Start and then every
// 30 s, and only to brokers whose routes it has fetched, which it does on the first send. Without
// this, a producer whose first order comes later than 1 s after start is invisible to the broker
// for up to 30 s, and the check-backs meant for it are lost attempts. The warm-up half message
// fetches the route before the first heartbeat; ExecuteLocalTransaction rolls it back, so no
// consumer ever sees it.
func (s *Service) Warmup(ctx context.Context) error {
	msg := primitive.NewMessage(s.topic, []byte("{}")).WithTag("warmup").WithKeys([]string{"warmup-" + uuid.NewString()})
	if _, err := s.producer.SendMessageInTransaction(ctx, msg); err != nil {
		return fmt.Errorf("warm-up half message: %w", err)
	}
	return nil
}

// replay answers a request whose Idempotency-Key created an order already: the same order if the
// request is the same, ErrIdempotencyConflict if not, store.ErrNotFound if the key is unused.
func (s *Service) replay(ctx context.Context, req Request, key string) (Placed, error) {
	prev, err := s.store.OrderByIdempotencyKey(ctx, req.UserID, key)
	if err != nil {
		return Placed{}, err
	}
	if prev.RequestHash == nil || *prev.RequestHash != req.hash() {
		s.metrics.placed.WithLabelValues("conflict").Inc()
		return Placed{}, ErrIdempotencyConflict
	}
	s.metrics.placed.WithLabelValues("replayed").Inc()
	return Placed{Order: fromRow(prev, StatusCreated), Replayed: true}, nil
}

// Get returns one order. An order that does not exist is ErrRolledBack if its transaction is
// known to have rolled back (so a "pending" order can be told apart from one never seen).
func (s *Service) Get(ctx context.Context, orderID string) (Order, error) {
	row, err := s.store.Order(ctx, orderID)
	if err == nil {
		return fromRow(row, StatusCreated), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return Order{}, err
	}
	outcome, err := s.store.TxOutcome(ctx, orderID)
	switch {
	case err == nil && outcome == store.RolledBack:
		return Order{}, ErrRolledBack
	case err == nil || errors.Is(err, store.ErrNotFound):
		return Order{}, ErrNotFound
	default:
		return Order{}, err
	}
}

// List returns a user's orders, newest first.
func (s *Service) List(ctx context.Context, userID string, limit int) ([]Order, error) {
	f := map[string]string{}
	checkID(f, "user_id", userID)
	if len(f) > 0 {
		return nil, &ValidationError{Fields: f}
	}
	rows, err := s.store.OrdersByUser(ctx, userID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Order, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r, StatusCreated)
	}
	return out, nil
}

func stateName(s primitive.LocalTransactionState) string {
	switch s {
	case primitive.CommitMessageState:
		return "commit"
	case primitive.RollbackMessageState:
		return "rollback"
	default:
		return "unknown"
	}
}
