// Package httpx is the HTTP plumbing both services share: JSON in and out, the error envelope of
// docs/design.md ({"error":{"code","message","fields","order_id"}}), request IDs and access logs,
// health and readiness handlers, and a server that shuts down gracefully.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// MaxBody is the largest request body either service reads.
const MaxBody = 1 << 20

// Error is an error with its HTTP answer. Handlers return it for anything the client can fix.
type Error struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	// OrderID names the order an answer is about when the request got as far as making one
	// (order-service's 500 order_not_placed and 503 broker_unavailable), so its timeline can be
	// looked up.
	OrderID string `json:"order_id,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeInvalid is the code of every 422 answer, in both services: the request is well-formed but
// some of its values are not acceptable; Fields says which and why.
const CodeInvalid = "invalid"

// Invalid is the 422 answer for a request whose values are not acceptable, per field.
func Invalid(message string, fields map[string]string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: CodeInvalid, Message: message, Fields: fields}
}

// WriteJSON writes v with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing useful to do about it
}

// WriteError answers with the error envelope. An *Error is the client's; anything else is a bug
// or an outage: it is logged (once, here) and answered 500 without internals.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var he *Error
	if !errors.As(err, &he) {
		log.ErrorContext(r.Context(), "request failed", "err", err, "method", r.Method, "path", r.URL.Path,
			"request_id", middleware.GetReqID(r.Context()))
		he = Errorf(http.StatusInternalServerError, "internal", "internal error; see the service log for request %s",
			middleware.GetReqID(r.Context()))
	}
	WriteJSON(w, he.Status, map[string]*Error{"error": he})
}

// Decode reads one JSON object of at most MaxBody bytes into v, rejecting unknown fields, trailing
// data and wrong types with a 400 that says what was wrong, and an oversized body with a 413.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	// The Content-Type is not checked: `curl -d` sends form-urlencoded by default, and the body is
	// validated as JSON anyway.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return Errorf(http.StatusBadRequest, "malformed_json", "body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "body must be at most %d bytes", MaxBody)
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "malformed_json", "body is not valid JSON: %v", err)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "malformed_json", "body is empty")
	case errors.As(err, &typ):
		e := Errorf(http.StatusBadRequest, "wrong_type", "%s must be %s, got %s", typ.Field, typ.Type, typ.Value)
		e.Fields = map[string]string{typ.Field: "must be " + typ.Type.String()}
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := Errorf(http.StatusBadRequest, "unknown_field", "unknown field %q", field)
		e.Fields = map[string]string{field: "unknown field"}
		return e
	default:
		return Errorf(http.StatusBadRequest, "malformed_json", "body is not valid JSON: %v", err)
	}
}

// Middleware every service installs: request IDs (X-Request-Id, generated when absent), panic
// recovery, and one access-log line per request.
func Middleware(log *slog.Logger) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{
		middleware.RequestID,
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", middleware.GetReqID(r.Context()))
				next.ServeHTTP(w, r)
			})
		},
		accessLog(log),
		middleware.Recoverer,
	}
}

// quietKey marks a request whose access-log line is left out: a refusal for overload (admission.go),
// which the Admission logs once a second, counted, instead.
type quietKey struct{}

func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			quiet := new(bool)
			r = r.WithContext(context.WithValue(r.Context(), quietKey{}, quiet))
			next.ServeHTTP(ww, r)
			// Probes and scrapes would drown the log; so would refusals under a flood.
			if *quiet || strings.HasPrefix(r.URL.Path, "/healthz") || strings.HasPrefix(r.URL.Path, "/readyz") || r.URL.Path == "/metrics" {
				return
			}
			log.InfoContext(r.Context(), "http", "method", r.Method, "path", r.URL.Path, "status", ww.Status(),
				"duration_ms", time.Since(start).Milliseconds(), "request_id", middleware.GetReqID(r.Context()))
		})
	}
}

// Healthz answers 200 while the process can serve HTTP at all.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// Check is one readiness dependency.
type Check func(ctx context.Context) error

// Readyz runs every check with a short timeout and answers 200 only if all pass, 503 otherwise,
// naming what failed.
func Readyz(checks map[string]Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, result := http.StatusOK, map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status, result[name] = http.StatusServiceUnavailable, err.Error()
			} else {
				result[name] = "ok"
			}
		}
		WriteJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": result})
	})
}

// WithProfiler serves net/http/pprof under /debug/pprof/ in front of h (PPROF=on). The handlers
// are registered here explicitly rather than through the pprof package's side effect on
// http.DefaultServeMux, which the services never serve. Note the server's WriteTimeout: ask for
// CPU profiles shorter than it, e.g. /debug/pprof/profile?seconds=20.
func WithProfiler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves heap, goroutine, allocs, block, mutex
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// NewServer is an http.Server with timeouts, so a slow client can't hold a connection for ever.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second, // slow-local-tx demonstrations hold a request for seconds
		IdleTimeout:       120 * time.Second,
	}
}

// Serve listens and serves until ctx is cancelled, then stops taking requests and waits up to
// grace for in-flight ones. ready, if not nil, receives the bound address once listening.
func Serve(ctx context.Context, srv *http.Server, grace time.Duration, ready func(addr string)) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", srv.Addr, err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
