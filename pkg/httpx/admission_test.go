package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// held is a handler that keeps each request until release is closed, and counts what reached it.
type held struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	served  int
}

func newHeld() *held { return &held{entered: make(chan struct{}, 16), release: make(chan struct{})} }

func (h *held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.served++
	h.mu.Unlock()
	h.entered <- struct{}{}
	<-h.release
	w.WriteHeader(http.StatusCreated)
}

func (h *held) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.served
}

// gauge reads one metric's value from the registry.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestAdmissionRefusesOverTheLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	a, err := NewAdmission(AdmissionConfig{Limit: 1, Now: func() time.Time { return now }}, reg)
	if err != nil {
		t.Fatal(err)
	}
	next := newHeld()
	h := a.Handler(next)
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("ready before any request: %v", err)
	}

	// The first request takes the only slot and stays.
	first := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/orders", nil))
		first <- rec.Code
	}()
	<-next.entered
	if got := gauge(t, reg, "http_admission_in_flight"); got != 1 {
		t.Fatalf("in flight = %v, want 1", got)
	}
	if got := gauge(t, reg, "http_admission_limit"); got != 1 {
		t.Fatalf("limit = %v, want 1", got)
	}

	// The second is refused: 503, Retry-After, the envelope, and next never sees it.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/orders", nil))
	var body struct{ Error Error }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("refusal body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Error.Code != CodeOverloaded || body.Error.Message == "" {
		t.Fatalf("refusal = %d %s", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1", ra)
	}
	if n := next.count(); n != 1 {
		t.Fatalf("next served %d requests, want only the first", n)
	}
	if got := gauge(t, reg, "http_admission_refused_total"); got != 1 {
		t.Fatalf("refused = %v, want 1", got)
	}

	// Readiness says so, for a second after the refusal.
	if err := a.Ready(context.Background()); err == nil {
		t.Fatal("ready right after a refusal")
	}
	close(next.release)
	if code := <-first; code != http.StatusCreated {
		t.Fatalf("first request = %d", code)
	}
	now = now.Add(overloadedFor)
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("ready a second after the last refusal: %v", err)
	}

	// The slot is free again.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/orders", nil))
	if rec.Code != http.StatusCreated || gauge(t, reg, "http_admission_in_flight") != 0 {
		t.Fatalf("after release = %d, in flight %v", rec.Code, gauge(t, reg, "http_admission_in_flight"))
	}
}

func TestAdmissionWaitsForASlot(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A wait far longer than the test: the second request is admitted when the first ends, not
	// when the wait runs out.
	a, err := NewAdmission(AdmissionConfig{Limit: 1, Wait: time.Hour}, reg)
	if err != nil {
		t.Fatal(err)
	}
	next := newHeld()
	h := a.Handler(next)
	codes := make(chan int, 2)
	serve := func(ctx context.Context) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/orders", nil).WithContext(ctx))
		codes <- rec.Code
	}
	go serve(context.Background())
	<-next.entered

	// A waiting request whose client gives up is answered 503 and never reaches next, but it is no
	// refusal for overload: not counted, and /readyz stays ready.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	serve(ctx)
	if code := <-codes; code != http.StatusServiceUnavailable {
		t.Fatalf("request cancelled while waiting = %d, want 503", code)
	}

	go serve(context.Background())
	close(next.release) // the first ends; the waiting one takes its slot
	for range 2 {
		if code := <-codes; code != http.StatusCreated {
			t.Fatalf("answer = %d, want 201", code)
		}
	}
	if n := next.count(); n != 2 {
		t.Fatalf("next served %d, want 2", n)
	}
	if got := gauge(t, reg, "http_admission_refused_total"); got != 0 {
		t.Fatalf("refused = %v, want 0 (a cancelled wait is not overload)", got)
	}
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after a cancelled wait = %v, want ready", err)
	}
}

// Refusals have no access-log line each; the Admission logs them, counted, once a second.
func TestAdmissionLogsRefusalsOnceASecond(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := NewAdmission(AdmissionConfig{Limit: 1, Log: log, Now: func() time.Time { return now }}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	next := newHeld()
	r := chi.NewRouter()
	r.Use(Middleware(log)...)
	r.With(a.Handler).Post("/orders", next.ServeHTTP)
	heldDone := make(chan struct{})
	go func() {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/orders", nil))
		close(heldDone)
	}()
	<-next.entered
	for range 3 {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/orders", nil))
	}
	now = now.Add(time.Second)
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/orders", nil))
	close(next.release)
	<-heldDone

	var summaries []float64
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec["msg"] {
		case "refusing requests: overloaded":
			summaries = append(summaries, rec["refused"].(float64))
		case "http":
			if rec["status"] == float64(http.StatusServiceUnavailable) {
				t.Errorf("a refusal has an access-log line: %s", line)
			}
		}
	}
	if len(summaries) != 2 || summaries[0] != 1 || summaries[1] != 3 {
		t.Fatalf("refusal log lines counted %v, want [1 3] (the first at once, then the three of the next second)\n%s", summaries, out.String())
	}
}

func TestNewAdmissionNeedsALimit(t *testing.T) {
	if _, err := NewAdmission(AdmissionConfig{Limit: 0}, prometheus.NewRegistry()); err == nil {
		t.Fatal("limit 0 accepted")
	}
}
