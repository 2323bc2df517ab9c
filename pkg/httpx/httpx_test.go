package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5/middleware"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	tests := []struct {
		name, in string
		status   int
		code     string
	}{
		{"ok", `{"name":"a","count":1}`, 0, ""},
		{"empty", ``, 400, "malformed_json"},
		{"syntax", `{"name":`, 400, "malformed_json"},
		{"trailing", `{"name":"a"} {"name":"b"}`, 400, "malformed_json"},
		{"unknown field", `{"nome":"a"}`, 400, "unknown_field"},
		{"wrong type", `{"count":"1"}`, 400, "wrong_type"},
		{"too large", `{"name":"` + strings.Repeat("x", MaxBody) + `"}`, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b body
			err := Decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(tt.in)), &b)
			if tt.status == 0 {
				if err != nil || b.Name != "a" {
					t.Fatalf("Decode = %v, %+v", err, b)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) || he.Status != tt.status || he.Code != tt.code {
				t.Fatalf("Decode error = %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
}

func TestWriteErrorHidesInternals(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/", nil), slog.New(slog.DiscardHandler),
		errors.New("dial tcp 10.0.0.1:3306: secret detail"))
	var out struct{ Error Error }
	json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != 500 || out.Error.Code != "internal" || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("500 answer = %d %s", rec.Code, rec.Body)
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("down") }
	for _, tt := range []struct {
		checks map[string]Check
		status int
	}{
		{map[string]Check{"a": ok, "b": ok}, 200},
		{map[string]Check{"a": ok, "b": down}, 503},
	} {
		rec := httptest.NewRecorder()
		Readyz(tt.checks).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tt.status {
			t.Errorf("readyz = %d %s, want %d", rec.Code, rec.Body, tt.status)
		}
	}
	rec := httptest.NewRecorder()
	Healthz().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("healthz = %d", rec.Code)
	}
}

// Every answer carries X-Request-Id: the client's when it sent one, a new one otherwise, and the
// handler sees the same ID (the one its log lines carry).
func TestMiddlewareRequestID(t *testing.T) {
	var seen string
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = middleware.GetReqID(r.Context())
	}))
	mw := Middleware(slog.New(slog.DiscardHandler))
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}

	req := httptest.NewRequest("GET", "/orders/x", nil)
	req.Header.Set("X-Request-Id", "client-chose-this")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got != "client-chose-this" || seen != got {
		t.Errorf("with the client's ID: answer %q, handler saw %q; want both client-chose-this", got, seen)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/orders/x", nil))
	if got := rec.Header().Get("X-Request-Id"); got == "" || seen != got {
		t.Errorf("without one: answer %q, handler saw %q; want the same new ID", got, seen)
	}
}
