package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/httpx"
)

// timelineJSON answers GET /orders/{order_id}/timeline: the cart side of an order's story, the
// twin of order-service's endpoint of the same path.
type timelineJSON struct {
	OrderID   string           `json:"order_id"`
	AppliedAt *time.Time       `json:"applied_at"` // null until the order has been applied to its cart
	Steps     []store.Delivery `json:"steps"`
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
		// Steps first: the applied step commits with the processed_orders row, so read in this
		// order an applied step always comes with its applied_at.
		steps, err := st.Deliveries(r.Context(), ids[0])
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		appliedAt, err := st.AppliedAt(r.Context(), ids[0])
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, timelineJSON{OrderID: ids[0], AppliedAt: appliedAt, Steps: steps})
	})
}
