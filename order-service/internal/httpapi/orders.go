package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"rmqtx/order-service/internal/order"
	"rmqtx/pkg/httpx"
)

func handlePlace(log *slog.Logger, orders Placer, faults bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req order.Request
		if err := httpx.Decode(w, r, &req); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		fault, err := order.ParseFault(r.Header.Get("X-Fault"), faults)
		if err != nil {
			httpx.WriteError(w, r, log, toHTTP(err))
			return
		}
		placed, err := orders.Place(r.Context(), req, r.Header.Get("Idempotency-Key"), fault)
		if err != nil {
			httpx.WriteError(w, r, log, toHTTP(err))
			return
		}
		status := http.StatusCreated
		if placed.Order.Status == order.StatusPending {
			status = http.StatusAccepted
		}
		if placed.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		w.Header().Set("Location", "/orders/"+placed.Order.OrderID)
		httpx.WriteJSON(w, status, map[string]order.Order{"order": placed.Order})
	}
}

func handleGet(log *slog.Logger, orders *order.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, err := orders.Get(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			httpx.WriteError(w, r, log, toHTTP(err))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]order.Order{"order": o})
	}
}

func handleTimeline(log *slog.Logger, orders *order.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := orders.Timeline(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			httpx.WriteError(w, r, log, toHTTP(err))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toTimelineJSON(t))
	}
}

// timelineJSON answers GET /orders/{id}/timeline: the order side of an order's story, the twin of
// cart-service's endpoint of the same path.
type timelineJSON struct {
	OrderID string     `json:"order_id"`
	Outcome string     `json:"outcome"` // committed, rolled_back, or pending (not decided yet)
	Steps   []stepJSON `json:"steps"`
}

// stepJSON is one step of the local transaction, its answer or a check-back.
type stepJSON struct {
	Step     string    `json:"step"`
	Detail   string    `json:"detail"`
	Instance string    `json:"instance"` // "" for a step read from tx_log
	At       time.Time `json:"at"`
}

func toTimelineJSON(t order.Timeline) timelineJSON {
	out := timelineJSON{OrderID: t.OrderID, Outcome: t.Outcome, Steps: make([]stepJSON, len(t.Steps))} // [] rather than null
	for i, s := range t.Steps {
		out.Steps[i] = stepJSON{Step: s.Step, Detail: s.Detail, Instance: s.Instance, At: s.At}
	}
	return out
}

// handleList answers one page of a user's orders: ?user_id=u1[&limit=n][&before=<order_id>],
// newest first; "next" is the before of the next page, null on the last.
func handleList(log *slog.Logger, orders *order.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		page := order.Page{Limit: order.MaxPage}
		if q.Has("before") {
			before := q.Get("before")
			page.Before = &before
		}
		if q.Has("limit") {
			n, err := strconv.Atoi(q.Get("limit"))
			if err != nil {
				n = 0 // not a number: as out of range, List says so
			}
			page.Limit = n
		}
		list, err := orders.List(r.Context(), q.Get("user_id"), page)
		if err != nil {
			httpx.WriteError(w, r, log, toHTTP(err))
			return
		}
		out := listJSON{Orders: list.Orders}
		if list.Next != "" {
			out.Next = &list.Next
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}

// listJSON answers GET /orders?user_id=.
type listJSON struct {
	Orders []order.Order `json:"orders"`
	Next   *string       `json:"next"` // null on the last page
}

// toHTTP is the service's one mapping from errors to HTTP answers. Anything not listed is a 500.
// An answer about an attempted order names it (order_id beside the code).
func toHTTP(err error) error {
	out := httpError(err)
	var (
		he *httpx.Error
		ae *order.AttemptError
	)
	if errors.As(out, &he) && errors.As(err, &ae) {
		he.OrderID = ae.OrderID
	}
	return out
}

func httpError(err error) error {
	var (
		ve *order.ValidationError
		pe *order.PageError
	)
	switch {
	case errors.As(err, &ve):
		return httpx.Invalid(ve.Error(), ve.Fields)
	case errors.As(err, &pe):
		e := httpx.Errorf(http.StatusBadRequest, "invalid_query", "bad query parameters: see fields")
		e.Fields = pe.Fields
		return e
	case errors.Is(err, order.ErrIdempotencyConflict):
		return httpx.Errorf(http.StatusConflict, "idempotency_conflict", "this Idempotency-Key was used with a different request")
	case errors.Is(err, order.ErrBrokerUnavailable):
		return httpx.Errorf(http.StatusServiceUnavailable, "broker_unavailable", "the message broker did not take the order; nothing was written, try again")
	case errors.Is(err, order.ErrNotPlaced):
		return httpx.Errorf(http.StatusInternalServerError, "order_not_placed", "the order could not be saved; nothing was written or sent, try again")
	case errors.Is(err, order.ErrNotFound):
		return httpx.Errorf(http.StatusNotFound, "order_not_found", "no such order")
	case errors.Is(err, order.ErrRolledBack):
		return httpx.Errorf(http.StatusNotFound, "order_rolled_back", "this order was not created: its transaction was rolled back")
	default:
		return err
	}
}
