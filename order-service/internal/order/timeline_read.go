package order

import (
	"context"
	"errors"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
)

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
