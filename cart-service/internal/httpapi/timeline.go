package httpapi

import (
	"log/slog"
	"net/http"
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

// handleTimeline says what each delivery of an order's event did (cart.ReadTimeline). An order
// cart-service has not heard of answers 200 with no steps: the event may simply not have arrived
// yet (the page polls this).
func handleTimeline(log *slog.Logger, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		ids := pathIDs(r, fields, "order_id")
		if len(fields) > 0 {
			writeError(w, r, log, invalid(fields))
			return
		}
		t, err := cart.ReadTimeline(r.Context(), st, ids[0])
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toTimelineJSON(t))
	})
}

func toTimelineJSON(t cart.Timeline) timelineJSON {
	out := timelineJSON{OrderID: t.OrderID, AppliedAt: t.AppliedAt, Steps: make([]stepJSON, len(t.Steps))} // [] rather than null
	for i, s := range t.Steps {
		out.Steps[i] = stepJSON{Step: s.Step, Detail: s.Detail, ReconsumeTimes: s.ReconsumeTimes, MsgID: s.MsgID, At: s.At}
	}
	return out
}
