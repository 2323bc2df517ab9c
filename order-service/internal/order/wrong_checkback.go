package order

// THE WRONG CHECK-BACKS (wrong.go lists them all): the transactional flow of place.go, steps 1 to
// 4 unchanged, with step 5 answered the ways most examples answer it. Each replaces only
// CheckLocalTransaction (and, for the in-memory one, notes each local outcome in a map).
//
// What the broker does with the answers matters, so here is what RocketMQ 5.3.3 does: each check
// round re-puts the half message as a new copy and asks about that copy; an answer settles only
// that copy. The broker does not refuse a producer's late COMMIT of the original after a check-back
// answered ROLLBACK: it commits by offset, without looking at earlier decisions. After
// transactionCheckMax unanswered rounds it moves the half message to TRANS_CHECK_MAX_TIME_TOPIC,
// where nothing ever delivers it.

import (
	"context"
	"errors"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/mysqldb"
)

// listener is the producer's primitive.TransactionListener for s's placement: s itself, the right
// way, or one of the wrong check-backs below.
func (s *Service) listener() primitive.TransactionListener {
	switch s.placement {
	case PlacementNaiveCheckBack:
		return naiveCheckBack{s}
	case PlacementMemoryCheckBack:
		return &memoryCheckBack{Service: s}
	case PlacementNoCheckBack:
		return noCheckBack{s}
	}
	return s
}

// naiveCheckBack answers "the order row exists → commit, else rollback": a plain SELECT, no tx_log
// barrier. It is the check-back most examples show.
//
// What breaks: a SELECT does not wait for a local transaction still in flight (slow disk, lock
// wait, GC pause): it sees no row and answers rollback for the broker's copy of the half message.
// On RocketMQ 5.3.3 that alone loses nothing: the producer's own COMMIT arrives later and the
// broker commits the original anyway. But if that COMMIT is lost as well (a lost packet, a crash
// after the local commit; skip-end-transaction here), the broker has no copy left to ask about:
// the order exists and its event is gone for good (I1, "lost event").
// Recipe: X-Fault: slow-local-tx=8,skip-end-transaction (the first check comes 3–5 s after the half
// message with the local broker settings, so 8 s is sure to overlap it).
//
// What prevents it in place.go: step 3 writes the tx_log row first, and step 5's INSERT IGNORE on
// it waits for the local transaction to end, then reads 'committed' (store.ResolveCheck).
type naiveCheckBack struct{ *Service }

func (n naiveCheckBack) CheckLocalTransaction(msg *primitive.MessageExt) primitive.LocalTransactionState {
	orderID := msg.GetKeys()
	ctx, cancel := context.WithTimeout(context.Background(), n.checkBound)
	defer cancel()
	_, err := n.store.Order(ctx, orderID)
	switch {
	case err == nil:
		return n.checkedBack(orderID, primitive.CommitMessageState, "the order row exists")
	case errors.Is(err, store.ErrNotFound):
		return n.checkedBack(orderID, primitive.RollbackMessageState,
			"no order row (yet): a plain SELECT does not wait for a local transaction in flight; no tx_log barrier")
	default:
		return n.checkedBack(orderID, primitive.UnkonwnState, err.Error())
	}
}

// memoryCheckBack answers from an in-process map of local outcomes, as RocketMQ's own examples do
// (the Java TransactionListenerImpl and the Go client's examples/producer/transaction): an order
// the map does not know is answered commit.
//
// What breaks: the map lives and dies with the process. After a crash between the half message and
// the local transaction (crash-after-half) the restarted process, or any other instance, does not
// know the order and answers commit: cart-service applies an order that was never written (I2,
// "phantom"). Answering rollback for an unknown order instead would lose the event of an order
// that did commit before a crash (crash-after-local-commit); answering unknown would lose it after
// transactionCheckMax rounds. No answer from memory is right, because memory is not where the
// outcome is.
// Recipe: X-Fault: crash-after-half, then restart the instance (every instance of its group runs
// the same placement).
//
// What prevents it in place.go: step 5 answers from the database alone (store.ResolveCheck), which
// any instance, restarted or not, reads the same way.
type memoryCheckBack struct {
	*Service
	// order ID -> primitive.LocalTransactionState. It only grows, as in RocketMQ's example: one
	// more reason not to answer from memory (a teaching mode, never left running).
	states sync.Map
}

func (m *memoryCheckBack) ExecuteLocalTransaction(msg *primitive.Message) primitive.LocalTransactionState {
	answer := m.Service.ExecuteLocalTransaction(msg)
	// The map records what the local transaction did, not the answer sent (skip-end-transaction
	// withholds the answer of a committed order; the map still says commit).
	state := answer
	if v, ok := m.inflight.Load(msg.GetKeys()); ok {
		switch at := v.(*attempt); {
		case at.err == nil:
			state = primitive.CommitMessageState
		case errors.Is(at.err, mysqldb.ErrCommitUnknown):
			state = primitive.UnkonwnState
		default:
			state = primitive.RollbackMessageState
		}
	}
	m.states.Store(msg.GetKeys(), state)
	return answer
}

func (m *memoryCheckBack) CheckLocalTransaction(msg *primitive.MessageExt) primitive.LocalTransactionState {
	orderID := msg.GetKeys()
	v, ok := m.states.Load(orderID)
	if !ok {
		return m.checkedBack(orderID, primitive.CommitMessageState,
			"this process has no record of the order (restarted, or another instance placed it); like RocketMQ's example, unknown means commit")
	}
	return m.checkedBack(orderID, v.(primitive.LocalTransactionState), "from this process's memory")
}

// noCheckBack never decides: every check-back is answered unknown. That is what a producer gets
// from a broker that cannot ask it, which is Kafka's situation (README, "Kafka's transactions and
// this problem"): an unfinished transaction can only time out.
//
// What breaks: when the producer's own commit is lost (skip-end-transaction, a crash after the
// local commit, a lost packet), the event stays invisible while the broker keeps asking, and after
// transactionCheckMax rounds (about 76 s with the local broker settings) the broker moves it to
// TRANS_CHECK_MAX_TIME_TOPIC, where nothing delivers it: the order exists and the cart never hears
// of it (I1, "lost event"). Within seconds it already shows: the right way's event, with the same
// fault, is delivered by the check-back 3–6 s after the half message.
// Recipe: X-Fault: skip-end-transaction.
//
// What prevents it in place.go: step 5, answered from tx_log.
type noCheckBack struct{ *Service }

func (n noCheckBack) CheckLocalTransaction(msg *primitive.MessageExt) primitive.LocalTransactionState {
	return n.checkedBack(msg.GetKeys(), primitive.UnkonwnState,
		"never decided, as by a broker that cannot ask; after transactionCheckMax checks the broker discards the event")
}

// checkedBack counts and records a wrong check-back's answer, naming the placement, and returns it.
func (s *Service) checkedBack(orderID string, state primitive.LocalTransactionState, why string) primitive.LocalTransactionState {
	s.metrics.checkBackAnswered(state)
	s.log.Warn("check-back answered the wrong way", "placement", s.placement, "order_id", orderID,
		"answer", stateName(state), "why", why)
	if orderID != "" {
		s.timeline.Record(orderID, timeline.CheckBack, s.placement+": "+stateName(state)+": "+why, s.now())
	}
	return state
}
