package order

import (
	"context"
	"errors"
	"slices"
	"time"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
)

// Timeline is what happened to an order's transaction, for GET /orders/{id}/timeline.
type Timeline struct {
	OrderID string
	Outcome string // committed, rolled_back, or pending (not decided yet)
	Steps   []TimelineStep
}

// TimelineStep is one step of a Timeline (the steps are package timeline's constants).
type TimelineStep struct {
	Step     string
	Detail   string
	Instance string // the instance that took the step; "" for a step read from tx_log
	At       time.Time
}

// Timeline reads an order's steps and its tx_log outcome. It is ErrNotFound only when there is no
// trace of the order at all.
func (s *Service) Timeline(ctx context.Context, orderID string) (Timeline, error) {
	rows, err := s.store.Timeline(ctx, orderID)
	if err != nil {
		return Timeline{}, err
	}
	t := Timeline{OrderID: orderID, Outcome: "pending", Steps: make([]TimelineStep, len(rows))}
	for i, r := range rows {
		t.Steps[i] = TimelineStep{Step: r.Step, Detail: r.Detail, Instance: r.Instance, At: r.At}
		if r.Step == timeline.LocalRolledBack { // answered rollback itself: no check-back, no tx_log row
			t.Outcome = "rolled_back"
		}
	}
	outcome, at, err := s.store.TxRecord(ctx, orderID)
	switch {
	case err == nil:
		t.Outcome = string(outcome)
		committed := slices.ContainsFunc(t.Steps, func(s TimelineStep) bool { return s.Step == timeline.LocalCommitted })
		if outcome == store.Committed && !committed {
			// Steps are written after the fact: this one is not written yet, or its instance died
			// before writing it (crash-after-local-commit). tx_log knows all the same.
			derived := TimelineStep{Step: timeline.LocalCommitted, At: at,
				Detail: "read from tx_log: the step itself was not written (not yet, or its instance died first)"}
			t.Steps = append([]TimelineStep{derived}, t.Steps...)
		}
	case !errors.Is(err, store.ErrNotFound):
		return Timeline{}, err
	case len(rows) == 0:
		return Timeline{}, ErrNotFound
	}
	return t, nil
}
