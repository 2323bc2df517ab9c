package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/httpx"
)

// cartJSON is the representation of a cart: GET /carts/{user_id}, and the answer to every change.
type cartJSON struct {
	UserID string     `json:"user_id"`
	Items  []itemJSON `json:"items"`
}

type itemJSON struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// putItemRequest is the body of PUT /carts/{user_id}/items/{sku}. Quantity is a pointer so that a
// forgotten field is an error rather than a silent "remove this line".
type putItemRequest struct {
	Quantity *int `json:"quantity"`
}

// appliedOrderJSON answers GET /carts/{user_id}/orders/{order_id}.
type appliedOrderJSON struct {
	OrderID        string     `json:"order_id"`
	UserID         string     `json:"user_id"`
	OrderCreatedAt *time.Time `json:"order_created_at,omitempty"`
	AppliedAt      time.Time  `json:"applied_at"`
}

func handleGetCart(log *slog.Logger, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		ids := pathIDs(r, fields, "user_id")
		if len(fields) > 0 {
			writeError(w, r, log, invalid(fields))
			return
		}
		writeCart(w, r, log, st, ids[0])
	})
}

func handlePutItem(log *slog.Logger, st *store.Store, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req putItemRequest
		if err := httpx.Decode(w, r, &req); err != nil {
			writeError(w, r, log, err)
			return
		}
		fields := map[string]string{}
		ids := pathIDs(r, fields, "user_id", "sku")
		switch {
		case req.Quantity == nil:
			fields["quantity"] = "is required"
		case *req.Quantity < 0 || *req.Quantity > events.MaxQuantity:
			fields["quantity"] = fmt.Sprintf("must be 0 to %d (0 removes the line)", events.MaxQuantity)
		}
		if len(fields) > 0 {
			writeError(w, r, log, invalid(fields))
			return
		}
		if err := st.SetLine(r.Context(), ids[0], ids[1], *req.Quantity, now()); err != nil {
			writeError(w, r, log, err)
			return
		}
		writeCart(w, r, log, st, ids[0])
	})
}

// handleDeleteItem removes a line. Removing a line that is not there answers 200 all the same, so
// a client may repeat the request safely.
func handleDeleteItem(log *slog.Logger, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		ids := pathIDs(r, fields, "user_id", "sku")
		if len(fields) > 0 {
			writeError(w, r, log, invalid(fields))
			return
		}
		if err := st.DeleteLine(r.Context(), ids[0], ids[1]); err != nil {
			writeError(w, r, log, err)
			return
		}
		writeCart(w, r, log, st, ids[0])
	})
}

// handleGetAppliedOrder says whether an order's event has been applied to the user's cart, and
// when: the end-to-end checker uses it to verify that every order reached the cart.
func handleGetAppliedOrder(log *slog.Logger, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		ids := pathIDs(r, fields, "user_id", "order_id")
		if len(fields) > 0 {
			writeError(w, r, log, invalid(fields))
			return
		}
		p, err := st.ProcessedOrder(r.Context(), ids[0], ids[1])
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, appliedOrderJSON{
			OrderID: p.OrderID, UserID: p.UserID, OrderCreatedAt: p.OrderCreatedAt, AppliedAt: p.AppliedAt,
		})
	})
}

func writeCart(w http.ResponseWriter, r *http.Request, log *slog.Logger, st *store.Store, userID string) {
	items, err := st.Cart(r.Context(), userID)
	if err != nil {
		writeError(w, r, log, err)
		return
	}
	c := cartJSON{UserID: userID, Items: make([]itemJSON, len(items))} // [] rather than null when empty
	for i, it := range items {
		c.Items[i] = itemJSON{SKU: it.SKU, Quantity: it.Quantity}
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

// pathIDs returns the named path parameters, adding to fields each one that is not an ID
// (events.CheckID, the rule both services share).
func pathIDs(r *http.Request, fields map[string]string, names ...string) []string {
	ids := make([]string, len(names))
	for i, name := range names {
		ids[i] = chi.URLParam(r, name)
		if events.CheckID(ids[i]) != nil {
			fields[name] = fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 . _ : -", events.MaxIDLen)
		}
	}
	return ids
}

// invalid is the 422 answer for well-formed requests whose values are not acceptable.
func invalid(fields map[string]string) *httpx.Error {
	return httpx.Invalid("the request has invalid fields", fields)
}
