package order

import (
	"context"
	"errors"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
)

// UseTimeline makes the service record each order's steps (see package timeline).
func (s *Service) UseTimeline(r *timeline.Recorder) { s.timeline = r }

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
		if at.fault.is(FaultSkipEndTransaction) {
			why = "fault injection: skip-end-transaction"
		}
		s.timeline.Record(at.row.OrderID, timeline.AnswerWithheld, why+"; the broker will check back", s.now())
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

// Timeline is what happened to an order's transaction, for GET /orders/{id}/timeline. It is
// ErrNotFound only when there is no trace of the order at all.
type Timeline struct {
	OrderID string               `json:"order_id"`
	Outcome string               `json:"outcome"` // committed, rolled_back, or pending (not decided yet)
	Steps   []store.TimelineStep `json:"steps"`
}

// Timeline reads an order's steps and its tx_log outcome.
func (s *Service) Timeline(ctx context.Context, orderID string) (Timeline, error) {
	steps, err := s.store.Timeline(ctx, orderID)
	if err != nil {
		return Timeline{}, err
	}
	t := Timeline{OrderID: orderID, Outcome: "pending", Steps: steps}
	if t.Steps == nil {
		t.Steps = []store.TimelineStep{}
	}
	for _, st := range steps {
		if st.Step == timeline.LocalRolledBack { // answered rollback itself: no check-back, no tx_log row
			t.Outcome = "rolled_back"
		}
	}
	outcome, at, err := s.store.TxRecord(ctx, orderID)
	switch {
	case err == nil:
		t.Outcome = string(outcome)
		if outcome == store.Committed && !hasStep(steps, timeline.LocalCommitted) {
			// Steps are written after the fact: this one is not written yet, or its instance died
			// before writing it (crash-after-local-commit). tx_log knows all the same.
			derived := store.TimelineStep{Step: timeline.LocalCommitted, At: at,
				Detail: "read from tx_log: the step itself was not written (not yet, or its instance died first)"}
			t.Steps = append([]store.TimelineStep{derived}, t.Steps...)
		}
	case !errors.Is(err, store.ErrNotFound):
		return Timeline{}, err
	case len(steps) == 0:
		return Timeline{}, ErrNotFound
	}
	return t, nil
}

func hasStep(steps []store.TimelineStep, step string) bool {
	for _, s := range steps {
		if s.Step == step {
			return true
		}
	}
	return false
}
