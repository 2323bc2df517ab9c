// Package ui is a small web page for watching the distributed transaction happen: fill a cart,
// place an order (optionally with a fault), and see both services' timelines fill in, step by
// step, each step explained. It is plain HTML, CSS and JavaScript embedded in the binary: no build
// step, nothing to install.
//
// The page talks only to this service. It reaches cart-service through a reverse proxy under
// /ui/cart/ (CART_URL), so a reader needs one address and the browser needs no CORS. The proxy
// passes on only what the page uses: the carts and the order timelines.
package ui

import (
	"embed"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"

	"rmqtx/order-service/internal/order"
	"rmqtx/pkg/httpx"
)

// static is the page: index.html, app.js, style.css.
//
//go:embed index.html app.js style.css
var static embed.FS

// Config is what the page needs to know about this service.
type Config struct {
	CartURL  *url.URL // cart-service's base URL (CART_URL); nil: the page says how to set it
	Faults   bool     // FAULT_INJECTION=on: the page offers the fault points
	Timeline bool     // TIMELINE=on: steps are being recorded
	// Placement is PLACEMENT; WrongWay says what it breaks, "" for the right way (the page then
	// shows no banner).
	Placement string
	WrongWay  string
}

// faultPoint is one choice of the page's fault menu.
type faultPoint struct {
	Header string `json:"header"` // the X-Fault value
	What   string `json:"what"`
}

// faultPoints are the choices offered, in the order the flow reaches them (docs/design.md).
var faultPoints = []faultPoint{
	{order.FaultSkipEndTransaction, "the order commits, but its answer never reaches the broker: watch the check-back finish it"},
	{order.FaultCrashAfterHalf, "this instance dies after the half message, before the local transaction: the check-back rolls it back"},
	{order.FaultCrashAfterLocalCommit, "this instance dies after the local commit: another instance answers the check-back"},
	{order.FaultFailLocalTx, "the local transaction fails: rollback, nothing is written or delivered"},
	{order.FaultSlowLocalTx + "=3", "the local transaction holds its locks for 3 s: a check-back in between waits for it"},
	{order.FaultResendEvent, "once placed, the order's event is published again as a new message (a resend after an ambiguous send): cart-service must see a duplicate, by order ID"},
	{order.FaultSlowLocalTx + "=8," + order.FaultSkipEndTransaction, "both: an 8 s local transaction whose answer is lost: only the tx_log barrier lets the check-back commit it"},
	{order.FaultCartFailOnce, "cart-service fails the first delivery: the broker delivers it again"},
	{order.FaultCartCrashAfterCommit, "cart-service dies after applying, before acknowledging: the redelivery is a harmless duplicate"},
}

// outboxFaultPoints are the choices with PLACEMENT=outbox, which has no half message: the points
// that need one would be refused.
var outboxFaultPoints = []faultPoint{
	{order.FaultCrashAfterLocalCommit, "this instance dies after the local commit, before waking its relay: a relay (the other instance's, at its next poll) publishes the event"},
	{order.FaultFailLocalTx, "the local transaction fails: neither the order nor its outbox row is written"},
	{order.FaultCrashAfterRelayPublish, "the relay that publishes the event dies before deleting its outbox row: published again, a harmless duplicate by order ID"},
	{order.FaultCartFailOnce, "cart-service fails the first delivery: the broker delivers it again"},
	{order.FaultCartCrashAfterCommit, "cart-service dies after applying, before acknowledging: the redelivery is a harmless duplicate"},
}

// configJSON answers GET /ui/config.
type configJSON struct {
	FaultInjection bool         `json:"fault_injection"`
	FaultPoints    []faultPoint `json:"fault_points"`
	CartConnected  bool         `json:"cart_connected"`
	Timeline       bool         `json:"timeline"`
	Placement      string       `json:"placement"`
	WrongWay       string       `json:"wrong_way,omitempty"`
}

// With serves the page in front of api: / redirects to /ui/, /ui/ is the page, /ui/config what it
// needs to know, /ui/cart/ the way to cart-service; everything else goes to api.
func With(api http.Handler, log *slog.Logger, cfg Config) http.Handler {
	page := http.NewServeMux()
	page.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(static)))
	page.HandleFunc("GET /ui/config", func(w http.ResponseWriter, r *http.Request) {
		points := faultPoints
		if cfg.Placement == order.PlacementOutbox {
			points = outboxFaultPoints
		}
		httpx.WriteJSON(w, http.StatusOK, configJSON{
			FaultInjection: cfg.Faults, FaultPoints: points, CartConnected: cfg.CartURL != nil, Timeline: cfg.Timeline,
			Placement: cfg.Placement, WrongWay: cfg.WrongWay,
		})
	})
	cart := http.StripPrefix("/ui/cart", cartProxy(log, cfg.CartURL))
	for _, method := range []string{"GET", "PUT", "DELETE"} { // what the cart API takes
		page.Handle(method+" /ui/cart/", cart)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		to := url.URL{Path: "/ui/", RawQuery: r.URL.RawQuery} // keeps ?user=
		http.Redirect(w, r, to.String(), http.StatusFound)
	})
	mux.Handle("/ui/", withMiddleware(log, page))
	mux.Handle("/", api)
	return mux
}

// withMiddleware gives the page the API's request IDs, access log and panic recovery, and headers
// that keep the browser from loading anything from elsewhere.
func withMiddleware(log *slog.Logger, h http.Handler) http.Handler {
	mws := httpx.Middleware(log)
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Everything the page loads comes from here; nothing inline, nothing from elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// cartProxy forwards the page's cart requests to cart-service. Only the paths the page uses pass:
// the proxy must not turn this service into a door to the rest of cart-service (its metrics, say).
func cartProxy(log *slog.Logger, target *url.URL) http.Handler {
	if target == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, r, log, httpx.Errorf(http.StatusServiceUnavailable, "cart_not_configured",
				"order-service does not know where cart-service is: start it with CART_URL set to cart-service's address, e.g. CART_URL=http://127.0.0.1:8082"))
		})
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.WarnContext(r.Context(), "cart-service did not answer the page", "cart_url", target.String(), "err", err)
			httpx.WriteError(w, r, log, httpx.Errorf(http.StatusBadGateway, "cart_unreachable",
				"cart-service at %s did not answer", target.Redacted()))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r.URL.Path) {
			httpx.WriteError(w, r, log, httpx.Errorf(http.StatusNotFound, "not_found", "the page reaches only carts and order timelines through /ui/cart/"))
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// allowed says whether the page may reach a cart-service path: a cart, or an order's timeline.
func allowed(p string) bool {
	if path.Clean(p) != p {
		return false // no /carts/../metrics
	}
	return strings.HasPrefix(p, "/carts/") || (strings.HasPrefix(p, "/orders/") && strings.HasSuffix(p, "/timeline"))
}
