// Package httpapi is order-service's REST API (docs/design.md, REST contract).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"rmqtx/order-service/internal/order"
	"rmqtx/pkg/httpx"
)

// Placer places orders: the *order.Service itself (the transactional flow), or, with
// FAULT_INJECTION=on, one of the wrong ways of order/wrong.go (or the Service wrapped by
// order.Resend, for the fault point resend-event).
type Placer interface {
	Place(ctx context.Context, req order.Request, idemKey string, fault order.Fault) (order.Placed, error)
}

// NewServer returns the service's HTTP handler. POST /orders goes to place, through admit: an
// order over the bound of orders in flight is refused (503 overloaded) before anything is sent or
// written. ready lists what /readyz checks. (The web page, / and /ui/, is package ui, which main
// puts in front of this.)
func NewServer(log *slog.Logger, orders *order.Service, place Placer, admit *httpx.Admission, faults bool, ready map[string]httpx.Check, metrics prometheus.Gatherer) http.Handler {
	r := chi.NewRouter()
	r.Use(httpx.Middleware(log)...)

	r.With(admit.Handler).Post("/orders", handlePlace(log, place, faults))
	r.Get("/orders", handleList(log, orders))
	r.Get("/orders/{id}", handleGet(log, orders))
	r.Get("/orders/{id}/timeline", handleTimeline(log, orders))

	r.Get("/healthz", httpx.Healthz().ServeHTTP)
	r.Get("/readyz", httpx.Readyz(ready).ServeHTTP)
	r.Get("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}).ServeHTTP)
	r.Get("/openapi.json", handleOpenAPI().ServeHTTP)

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, httpx.Errorf(http.StatusNotFound, "not_found", "no route %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, httpx.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
	})
	return r
}
