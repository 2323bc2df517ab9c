package cart

import (
	"context"
	"slices"
	"time"

	"rmqtx/cart-service/internal/store"
)

// Timeline is the cart side of an order's story, for GET /orders/{order_id}/timeline: what each
// delivery of its event did (deliveries.go records the steps).
type Timeline struct {
	OrderID   string
	AppliedAt *time.Time // nil until the order has been applied to its cart
	Steps     []TimelineStep
}

// TimelineStep is one step: what one delivery of the order's event did.
type TimelineStep struct {
	Step           string
	Detail         string
	ReconsumeTimes *int   // nil for a step read from processed_orders
	MsgID          string // "" for a step read from processed_orders
	At             time.Time
}

// ReadTimeline reads an order's delivery steps and whether it was applied. An order cart-service
// has not heard of has no steps and no error: its event may simply not have arrived yet, and
// cart-service cannot tell an order still on its way from one that never existed.
func ReadTimeline(ctx context.Context, st *store.Store, orderID string) (Timeline, error) {
	deliveries, err := st.Deliveries(ctx, orderID)
	if err != nil {
		return Timeline{}, err
	}
	appliedAt, err := st.AppliedAt(ctx, orderID)
	if err != nil {
		return Timeline{}, err
	}
	steps := make([]TimelineStep, len(deliveries))
	for i, d := range deliveries {
		steps[i] = TimelineStep{Step: d.Step, Detail: d.Detail, ReconsumeTimes: &d.ReconsumeTimes, MsgID: d.MsgID, At: d.At}
	}
	applied := slices.ContainsFunc(steps, func(s TimelineStep) bool { return s.Step == StepApplied })
	if appliedAt != nil && !applied {
		// Steps are written after the fact: this one is not written yet, or the process died
		// before writing it (cart-crash-after-commit). processed_orders knows all the same.
		derived := TimelineStep{Step: StepApplied, At: *appliedAt,
			Detail: "read from processed_orders: the step itself was not written (not yet, or the process died first)"}
		at := slices.IndexFunc(steps, func(s TimelineStep) bool { return s.At.After(*appliedAt) })
		if at < 0 {
			at = len(steps)
		}
		steps = slices.Insert(steps, at, derived)
	}
	return Timeline{OrderID: orderID, AppliedAt: appliedAt, Steps: steps}, nil
}
