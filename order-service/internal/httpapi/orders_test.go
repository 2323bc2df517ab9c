package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"rmqtx/order-service/internal/order"
)

func TestPostOrdersRejectsBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	long := strings.Repeat("x", 65)
	tests := []struct {
		name      string
		body      string
		headers   map[string]string
		status    int
		code      string
		wantField string
	}{
		{"malformed json", `{"user_id":`, nil, 400, "malformed_json", ""},
		{"not an object", `[1,2]`, nil, 400, "wrong_type", ""},
		{"empty body", ``, nil, 400, "malformed_json", ""},
		{"trailing data", good + `{}`, nil, 400, "malformed_json", ""},
		{"unknown field", `{"user_id":"u1","items":[],"coupon":"X"}`, nil, 400, "unknown_field", "coupon"},
		{"wrong type", `{"user_id":"u1","items":[{"sku":"A","quantity":"2","unit_price_cents":1}]}`, nil, 400, "wrong_type", "items.quantity"},
		{"fractional quantity", `{"user_id":"u1","items":[{"sku":"A","quantity":1.5,"unit_price_cents":1}]}`, nil, 400, "wrong_type", "items.quantity"},
		{"missing user", `{"items":[{"sku":"A","quantity":1,"unit_price_cents":1}]}`, nil, 422, "invalid", "user_id"},
		{"empty items", `{"user_id":"u1","items":[]}`, nil, 422, "invalid", "items"},
		{"no items", `{"user_id":"u1"}`, nil, 422, "invalid", "items"},
		{"zero quantity", `{"user_id":"u1","items":[{"sku":"A","quantity":0,"unit_price_cents":1}]}`, nil, 422, "invalid", "items[0].quantity"},
		{"negative quantity", `{"user_id":"u1","items":[{"sku":"A","quantity":-3,"unit_price_cents":1}]}`, nil, 422, "invalid", "items[0].quantity"},
		{"huge quantity", `{"user_id":"u1","items":[{"sku":"A","quantity":1000000,"unit_price_cents":1}]}`, nil, 422, "invalid", "items[0].quantity"},
		{"overflowing quantity", `{"user_id":"u1","items":[{"sku":"A","quantity":99999999999999999999,"unit_price_cents":1}]}`, nil, 400, "wrong_type", "items.quantity"},
		{"negative price", `{"user_id":"u1","items":[{"sku":"A","quantity":1,"unit_price_cents":-1}]}`, nil, 422, "invalid", "items[0].unit_price_cents"},
		{"duplicate sku", `{"user_id":"u1","items":[{"sku":"A","quantity":1,"unit_price_cents":1},{"sku":"A","quantity":2,"unit_price_cents":1}]}`, nil, 422, "invalid", "items[1].sku"},
		{"over-long user", `{"user_id":"` + long + `","items":[{"sku":"A","quantity":1,"unit_price_cents":1}]}`, nil, 422, "invalid", "user_id"},
		{"over-long sku", `{"user_id":"u1","items":[{"sku":"` + long + `","quantity":1,"unit_price_cents":1}]}`, nil, 422, "invalid", "items[0].sku"},
		{"hostile sku", `{"user_id":"u1","items":[{"sku":"A'; DROP TABLE orders;--","quantity":1,"unit_price_cents":1}]}`, nil, 422, "invalid", "items[0].sku"},
		{"too many items", `{"user_id":"u1","items":[` + strings.Repeat(`{"sku":"A","quantity":1,"unit_price_cents":1},`, 100) + `{"sku":"B","quantity":1,"unit_price_cents":1}]}`, nil, 422, "invalid", "items"},
		{"body over 1 MiB", `{"user_id":"u1","items":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 413, "body_too_large", ""},
		{"over-long idempotency key", good, map[string]string{"Idempotency-Key": long}, 422, "invalid", "Idempotency-Key"},
		{"fault while injection is off", good, map[string]string{"X-Fault": "fail-local-tx"}, 422, "invalid", "X-Fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("POST", "/orders", tt.body, tt.headers)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
			if e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("error = %+v, want code %q", e.Error, tt.code)
			}
			if tt.wantField != "" {
				if _, ok := e.Error.Fields[tt.wantField]; !ok {
					t.Fatalf("fields = %v, want %q named", e.Error.Fields, tt.wantField)
				}
			}
		})
	}
	// Nothing was written and nothing was sent for any of them.
	if len(f.producer.Sent()) != 0 {
		t.Fatalf("half messages sent for bad input: %d", len(f.producer.Sent()))
	}
	if rows, err := f.store.OrdersByUser(context.Background(), "u1", 10); err != nil || len(rows) != 0 {
		t.Fatalf("orders written for bad input: %d (%v)", len(rows), err)
	}
}

func TestPostOrdersStatuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)

	rec := f.do("POST", "/orders", good, nil)
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	var created orderBody
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatalf("POST body %q: %v", rec.Body, err)
	}
	if created.Order.Status != "created" || created.Order.TotalCents != 3998 || rec.Header().Get("Location") != "/orders/"+created.Order.OrderID {
		t.Fatalf("created = %+v, Location %q", created.Order, rec.Header().Get("Location"))
	}

	rec = f.do("GET", "/orders/"+created.Order.OrderID, "", nil)
	var got orderBody
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got.Order.OrderID != created.Order.OrderID {
		t.Fatalf("GET = %d %s", rec.Code, rec.Body)
	}

	for _, tt := range []struct {
		path, code string
		status     int
	}{
		{"/orders/does-not-exist", "order_not_found", 404},
		{"/orders", "invalid", 422},         // user_id missing
		{"/orders?before=", "invalid", 422}, // the user ID is checked first, then the page
		{"/orders?user_id=" + strings.Repeat("u", 65), "invalid", 422},
		{"/nope", "not_found", 404},
	} {
		rec := f.do("GET", tt.path, "", nil)
		var e errorBody
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tt.status || e.Error.Code != tt.code {
			t.Errorf("GET %s = %d %s, want %d %s", tt.path, rec.Code, rec.Body, tt.status, tt.code)
		}
	}
	if rec := f.do("DELETE", "/orders", "", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /orders = %d", rec.Code)
	}

	// A second order, then the list is newest first.
	rec = f.do("POST", "/orders", `{"user_id":"u1","items":[{"sku":"B","quantity":1,"unit_price_cents":5}]}`, nil)
	var second orderBody
	if err := json.Unmarshal(rec.Body.Bytes(), &second); err != nil || rec.Code != http.StatusCreated || second.Order.OrderID == "" {
		t.Fatalf("second POST = %d %s (%v)", rec.Code, rec.Body, err)
	}
	rec = f.do("GET", "/orders?user_id=u1", "", nil)
	var list struct{ Orders []order.Order }
	json.Unmarshal(rec.Body.Bytes(), &list)
	if len(list.Orders) != 2 || list.Orders[0].OrderID != second.Order.OrderID {
		t.Fatalf("list = %s", rec.Body)
	}

	// Local transaction fails (after its half message was sent): 500, and the order does not
	// exist: the user still has exactly the two orders above.
	rec = f.do("POST", "/orders", good, map[string]string{"X-Fault": "fail-local-tx"})
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("fail-local-tx body %q: %v", rec.Body, err)
	}
	if rec.Code != 500 || e.Error.Code != "order_not_placed" {
		t.Fatalf("fail-local-tx = %d %s", rec.Code, rec.Body)
	}
	rows, err := f.store.OrdersByUser(context.Background(), "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].OrderID != second.Order.OrderID || rows[1].OrderID != created.Order.OrderID {
		t.Fatalf("orders after fail-local-tx = %+v, want only %s and %s", rows, second.Order.OrderID, created.Order.OrderID)
	}
	sent := f.producer.Sent()
	if len(sent) != 3 {
		t.Fatalf("half messages = %d, want 3: the failure must come from the local transaction", len(sent))
	}
	// The 500 names the attempted order (its half message's key), so its timeline can be shown.
	if e.Error.OrderID == "" || e.Error.OrderID != sent[2].GetKeys() {
		t.Fatalf("fail-local-tx names order %q, want the attempt's ID %q", e.Error.OrderID, sent[2].GetKeys())
	}
	// Unknown fault point: 422.
	if rec := f.do("POST", "/orders", good, map[string]string{"X-Fault": "explode"}); rec.Code != 422 {
		t.Fatalf("unknown fault = %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/orders", good, map[string]string{"X-Fault": "slow-local-tx=999"}); rec.Code != 422 {
		t.Fatalf("slow-local-tx=999 = %d %s", rec.Code, rec.Body)
	}
}

func TestPostOrdersIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	key := map[string]string{"Idempotency-Key": "k-123"}
	first := f.do("POST", "/orders", good, key)
	again := f.do("POST", "/orders", good, key)
	var a, b orderBody
	json.Unmarshal(first.Body.Bytes(), &a)
	json.Unmarshal(again.Body.Bytes(), &b)
	if first.Code != 201 || again.Code != 201 || a.Order.OrderID != b.Order.OrderID || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s, replay %d %s", first.Code, first.Body, again.Code, again.Body)
	}
	conflict := f.do("POST", "/orders", `{"user_id":"u1","items":[{"sku":"A-1","quantity":3,"unit_price_cents":1999}]}`, key)
	var e errorBody
	json.Unmarshal(conflict.Body.Bytes(), &e)
	if conflict.Code != 409 || e.Error.Code != "idempotency_conflict" {
		t.Fatalf("different body = %d %s", conflict.Code, conflict.Body)
	}
	if len(f.producer.Sent()) != 1 {
		t.Fatalf("half messages = %d, want 1", len(f.producer.Sent()))
	}
}

// The producer's error maps to 503 (a stand-in producer refuses the half message; the real one,
// against a broker that goes away, is TestPostOrdersBrokerGone).
func TestPostOrdersBrokerDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.producer.SendErr = errors.New("broker down")
	rec := f.do("POST", "/orders", good, nil)
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != 503 || e.Error.Code != "broker_unavailable" {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	if id, err := uuid.Parse(e.Error.OrderID); err != nil || id.Version() != 7 {
		t.Fatalf("503 names order %q, want the attempt's ID, a UUIDv7", e.Error.OrderID)
	}
	rows, err := f.store.OrdersByUser(context.Background(), "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Fatalf("orders written while the broker was down: %d", len(rows))
	}
}

func TestProbesAndMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.do("POST", "/orders", good, nil)
	for path, want := range map[string]string{
		"/healthz": `"ok"`,
		"/readyz":  `"ready":true`,
		"/metrics": `orders_placed_total{outcome="created"} 1`,
	} {
		rec := f.do("GET", path, "", nil)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s = %d, want body containing %s; got %.300s", path, rec.Code, want, rec.Body)
		}
	}
}
