package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/httpx"
)

// timelineJSON answers GET /orders/{order_id}/timeline: the cart side of an order's story, the
// twin of order-service's endpoint of the same path.
type timelineJSON struct {
	OrderID   string     `json:"order_id"`
	AppliedAt *time.Time `json:"applied_at"` // null until the order has been applied to its cart
	Steps     []stepJSON `json:"steps"`
}

// stepJSON is one step: what one delivery of the order's event did.
type stepJSON struct {
	Step           string    `json:"step"`
	Detail         string    `json:"detail"`
	ReconsumeTimes *int      `json:"reconsume_times"` // null for a step read from processed_orders
	MsgID          string    `json:"msg_id"`          // "" for a step read from processed_orders
	At             time.Time `json:"at"`
}

// handleTimeline says what each delivery of an order's event did. An order cart-service has not
// heard of answers 200 with no steps: the event may simply not have arrived yet (the page polls
// this), and cart-service cannot tell an order still on its way from one that never existed.
func handleTimeline(log *slog.Logger, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		ids := pathIDs(r, fields, "order_id")
		if len(fields) > 0 {
			writeError(w, r, log, invalid(fields))
			return
		}
		deliveries, err := st.Deliveries(r.Context(), ids[0])
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		appliedAt, err := st.AppliedAt(r.Context(), ids[0])
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		steps := make([]stepJSON, len(deliveries))
		for i, d := range deliveries {
			steps[i] = stepJSON{Step: d.Step, Detail: d.Detail, ReconsumeTimes: &d.ReconsumeTimes, MsgID: d.MsgID, At: d.At}
		}
		applied := slices.ContainsFunc(steps, func(s stepJSON) bool { return s.Step == cart.StepApplied })
		if appliedAt != nil && !applied {
			// Steps are written after the fact: this one is not written yet, or the process died
			// before writing it (cart-crash-after-commit). processed_orders knows all the same.
			derived := stepJSON{Step: cart.StepApplied, At: *appliedAt,
				Detail: "read from processed_orders: the step itself was not written (not yet, or the process died first)"}
			at := slices.IndexFunc(steps, func(s stepJSON) bool { return s.At.After(*appliedAt) })
			if at < 0 {
				at = len(steps)
			}
			steps = slices.Insert(steps, at, derived)
		}
		httpx.WriteJSON(w, http.StatusOK, timelineJSON{OrderID: ids[0], AppliedAt: appliedAt, Steps: steps})
	})
}
