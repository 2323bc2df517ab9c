// Package httpapi is cart-service's REST API (docs/design.md, REST contract): the carts users fill, a
// look-up of the orders already applied to a cart, what each delivery of an order's event did (its
// timeline), and the health, readiness and metrics endpoints.
// routes.go lists every route; each handler is a small function returning an http.Handler.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/httpx"
)

// NewServer returns the service's HTTP handler. admit bounds the requests of the API served at
// once (not the probes and metrics); metrics is the service's own registry; ready are the checks
// /readyz runs (the database, the consumer, the admission bound).
func NewServer(log *slog.Logger, st *store.Store, admit *httpx.Admission, metrics prometheus.Gatherer, ready map[string]httpx.Check) http.Handler {
	r := chi.NewRouter()
	r.Use(httpx.Middleware(log)...)
	// chi answers unknown paths and methods in plain text; keep the one error envelope.
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, httpx.Errorf(http.StatusNotFound, "not_found", "no route for %s", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, httpx.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
	})
	addRoutes(r, log, st, admit, metrics, ready, time.Now)
	return r
}

// writeError is the service's one mapping from errors to HTTP answers: *httpx.Error is the
// client's and says its own status; a missing row is a 404; anything else is a 500 that
// httpx.WriteError logs.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(err, store.ErrNotFound) {
		err = httpx.Errorf(http.StatusNotFound, "not_found", "%v", err)
	}
	httpx.WriteError(w, r, log, err)
}
