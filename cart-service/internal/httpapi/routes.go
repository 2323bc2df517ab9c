package httpapi

import (
	"log/slog"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/httpx"
)

// addRoutes is the whole API of cart-service; openapi.json describes each route. The routes that use the database go through admit:
// over its bound they are refused (503 overloaded) before they touch it.
func addRoutes(r chi.Router, log *slog.Logger, st *store.Store, admit *httpx.Admission, metrics prometheus.Gatherer, ready map[string]httpx.Check, now func() time.Time) {
	r.Group(func(r chi.Router) {
		r.Use(admit.Handler)
		r.Method("GET", "/carts/{user_id}", handleGetCart(log, st))
		r.Method("PUT", "/carts/{user_id}/items/{sku}", handlePutItem(log, st, now))
		r.Method("DELETE", "/carts/{user_id}/items/{sku}", handleDeleteItem(log, st))
		r.Method("GET", "/carts/{user_id}/orders/{order_id}", handleGetAppliedOrder(log, st))
		r.Method("GET", "/orders/{order_id}/timeline", handleTimeline(log, st))
	})

	r.Method("GET", "/healthz", httpx.Healthz())
	r.Method("GET", "/readyz", httpx.Readyz(ready))
	r.Method("GET", "/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	r.Method("GET", "/openapi.json", handleOpenAPI())
}
