package order

import (
	"errors"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/mysqldb"
)

// The flow's timeline records (package timeline explains why they are written after the fact).
// Each is one call in place.go; what it says is here.

// recordLocalTx notes the half message stored and what became of the local transaction.
func (s *Service) recordLocalTx(at *attempt, halfStored time.Time) {
	id := at.row.OrderID
	s.timeline.Record(id, timeline.HalfStored, "invisible to consumers until committed", halfStored)
	switch {
	case at.err == nil:
		s.timeline.Record(id, timeline.LocalCommitted, "tx_log 'committed', the order and its items, in one transaction", s.now())
	case errors.Is(at.err, mysqldb.ErrCommitUnknown):
		s.timeline.Record(id, timeline.LocalUnknown, at.err.Error(), s.now())
	default:
		s.timeline.Record(id, timeline.LocalRolledBack, at.err.Error(), s.now())
	}
}

// recordAnswer notes what the library was told to send the broker after the local transaction.
// (The send itself is one-way and its error is dropped by the library: "sent" means "handed to
// the client library".) A crash point fired before this line, so a crashed attempt has no answer
// in its timeline, which is the truth.
func (s *Service) recordAnswer(at *attempt, state primitive.LocalTransactionState) {
	switch state {
	case primitive.CommitMessageState:
		s.timeline.Record(at.row.OrderID, timeline.AnswerSent, "commit: the event becomes visible to consumers", s.now())
	case primitive.RollbackMessageState:
		s.timeline.Record(at.row.OrderID, timeline.AnswerSent, "rollback: the half message is dropped", s.now())
	default:
		why := "the commit's outcome is unknown"
		if at.fault.Has(FaultSkipEndTransaction) {
			why = "fault injection: skip-end-transaction"
		}
		s.timeline.Record(at.row.OrderID, timeline.AnswerWithheld, why+"; the broker will check back", s.now())
	}
}

// recordCheckBack notes a check-back and the answer it gave.
func (s *Service) recordCheckBack(orderID string, state primitive.LocalTransactionState) {
	if orderID != "" {
		s.timeline.Record(orderID, timeline.CheckBack, checkBackDetail(state), s.now())
	}
}

func checkBackDetail(state primitive.LocalTransactionState) string {
	switch state {
	case primitive.CommitMessageState:
		return "commit: tx_log says committed"
	case primitive.RollbackMessageState:
		return "rollback: tx_log says rolled back (claimed by a check-back if no local transaction committed)"
	default:
		return "unknown: the outcome could not be read; the broker will ask again"
	}
}
