package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// With every slot taken, POST /orders is refused with 503 overloaded, Retry-After and the error
// envelope, and nothing is sent or written for it; /readyz says so and /healthz does not; the
// metrics count it. The slot is held by an order stopped after its half message, before its local
// transaction (the stand-in producer's Before hook), for as long as the test needs.
func TestPostOrdersOverloaded(t *testing.T) {
	t.Parallel()
	f := newBoundedFixture(t, false, 1)
	// The first order holds the slot until released; any later one (there is none, unless the
	// bound fails) goes through.
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var first sync.Once
	f.producer.Before = func(context.Context, string) {
		hold := false
		first.Do(func() { hold = true })
		if hold {
			entered <- struct{}{}
			<-release
		}
	}
	held := make(chan int)
	go func() { held <- f.do("POST", "/orders", good, nil).Code }()
	<-entered

	refused := `{"user_id":"u-refused","items":[{"sku":"A-1","quantity":1,"unit_price_cents":5}]}`
	rec := f.do("POST", "/orders", refused, map[string]string{"Idempotency-Key": "k-refused"})
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("refusal body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || e.Error.Code != "overloaded" || e.Error.Message == "" {
		t.Fatalf("POST over the bound = %d %s, want 503 overloaded", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1", ra)
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Fatal("refusal without X-Request-Id")
	}

	// Probes while refusing: alive, not ready, and the metrics say why.
	if rec := f.do("GET", "/healthz", "", nil); rec.Code != http.StatusOK {
		t.Fatalf("healthz while overloaded = %d %s", rec.Code, rec.Body)
	}
	rec = f.do("GET", "/readyz", "", nil)
	var ready struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ready); err != nil {
		t.Fatalf("readyz body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || ready.Ready || !strings.HasPrefix(ready.Checks["admission"], "overloaded") ||
		ready.Checks["mysql"] != "ok" {
		t.Fatalf("readyz while overloaded = %d %s", rec.Code, rec.Body)
	}
	metrics := f.do("GET", "/metrics", "", nil).Body.String()
	for _, want := range []string{"http_admission_refused_total 1\n", "http_admission_in_flight 1\n", "http_admission_limit 1\n"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	close(release)
	if code := <-held; code != http.StatusCreated {
		t.Fatalf("held order = %d, want 201", code)
	}
	// Nothing was sent or written for the refused order: one half message, one tx_log row and
	// one order, all the held one's.
	if sent := len(f.producer.Sent()); sent != 1 {
		t.Fatalf("half messages = %d, want 1", sent)
	}
	for _, table := range []string{"tx_log", "orders"} {
		var n int64
		if err := f.db.Table(table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s rows = %d, want 1 (the held order's)", table, n)
		}
	}
	if rows, err := f.store.OrdersByUser(context.Background(), "u-refused", 10); err != nil || len(rows) != 0 {
		t.Fatalf("orders of the refused user = %d (%v)", len(rows), err)
	}

	// The slot is free again: the same request, Idempotency-Key included, is placed, not replayed.
	rec = f.do("POST", "/orders", refused, map[string]string{"Idempotency-Key": "k-refused"})
	if rec.Code != http.StatusCreated || rec.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the refusal = %d %s", rec.Code, rec.Body)
	}
}
