package httpapi_test

// The API against the real MariaDB: every status it can answer, including hostile input, and
// that a refused request changes nothing.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/httpx"
)

func TestCartEndpoints(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	srv := newServer(t, st, nil)
	long := strings.Repeat("x", 65)
	max := strings.Repeat("x", 64)
	hugeBody := `{"quantity":1` + strings.Repeat(" ", httpx.MaxBody) + `}`

	tests := []struct {
		name        string
		method      string
		path        string // {u} is replaced by the case's own user, whose cart starts as {A-1: 3}
		contentType string
		body        string
		wantStatus  int
		wantCode    string            // error code, for 4xx
		wantFields  map[string]string // error fields, when the case has them
		wantCart    map[string]int    // the answer's cart, for 200; the stored cart must match it
	}{
		// Reading.
		{name: "get a cart", method: "GET", path: "/carts/{u}", wantStatus: 200, wantCart: map[string]int{"A-1": 3}},
		{name: "get an empty cart", method: "GET", path: "/carts/nobody-here", wantStatus: 200, wantCart: map[string]int{}},
		{name: "get with an over-long user", method: "GET", path: "/carts/" + long, wantStatus: 422, wantCode: "invalid",
			wantFields: map[string]string{"user_id": "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"}},
		{name: "get with a bad character", method: "GET", path: "/carts/u%20x", wantStatus: 422, wantCode: "invalid"},

		// Setting a line.
		{name: "add a line", method: "PUT", path: "/carts/{u}/items/B.2", body: `{"quantity":2}`, wantStatus: 200, wantCart: map[string]int{"A-1": 3, "B.2": 2}},
		{name: "overwrite a line", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":7}`, wantStatus: 200, wantCart: map[string]int{"A-1": 7}},
		{name: "SKUs are case-sensitive", method: "PUT", path: "/carts/{u}/items/a-1", body: `{"quantity":1}`, wantStatus: 200, wantCart: map[string]int{"A-1": 3, "a-1": 1}},
		{name: "quantity 0 removes", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":0}`, wantStatus: 200, wantCart: map[string]int{}},
		{name: "maximum quantity and ID length", method: "PUT", path: "/carts/{u}/items/" + max, body: `{"quantity":10000}`, wantStatus: 200, wantCart: map[string]int{"A-1": 3, max: 10000}},
		{name: "every allowed character", method: "PUT", path: "/carts/{u}/items/aZ09._:-", contentType: "application/json; charset=utf-8", body: `{"quantity":1}`, wantStatus: 200, wantCart: map[string]int{"A-1": 3, "aZ09._:-": 1}},

		{name: "negative quantity", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":-1}`, wantStatus: 422, wantCode: "invalid",
			wantFields: map[string]string{"quantity": "must be 0 to 10000 (0 removes the line)"}},
		{name: "quantity over the limit", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":10001}`, wantStatus: 422, wantCode: "invalid"},
		{name: "quantity beyond int64", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":1e30}`, wantStatus: 400, wantCode: "wrong_type"},
		{name: "fractional quantity", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":2.5}`, wantStatus: 400, wantCode: "wrong_type"},
		{name: "quantity as a string", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":"3"}`, wantStatus: 400, wantCode: "wrong_type",
			wantFields: map[string]string{"quantity": "must be int"}},
		{name: "missing quantity", method: "PUT", path: "/carts/{u}/items/A-1", body: `{}`, wantStatus: 422, wantCode: "invalid",
			wantFields: map[string]string{"quantity": "is required"}},
		{name: "null quantity", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":null}`, wantStatus: 422, wantCode: "invalid"},
		{name: "unknown field", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":1,"price":5}`, wantStatus: 400, wantCode: "unknown_field",
			wantFields: map[string]string{"price": "unknown field"}},
		{name: "malformed JSON", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "empty body", method: "PUT", path: "/carts/{u}/items/A-1", body: ``, wantStatus: 400, wantCode: "malformed_json"},
		{name: "two JSON objects", method: "PUT", path: "/carts/{u}/items/A-1", body: `{"quantity":1}{"quantity":2}`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "array body", method: "PUT", path: "/carts/{u}/items/A-1", body: `[{"quantity":1}]`, wantStatus: 400, wantCode: "wrong_type"},
		{name: "body over 1 MiB", method: "PUT", path: "/carts/{u}/items/A-1", body: hugeBody, wantStatus: 413, wantCode: "body_too_large"},
		{name: "curl -d content type, JSON body", method: "PUT", path: "/carts/{u}/items/A-1", contentType: "application/x-www-form-urlencoded", body: `{"quantity":1}`, wantStatus: 200, wantCart: map[string]int{"A-1": 1}},
		{name: "form body", method: "PUT", path: "/carts/{u}/items/A-1", contentType: "application/x-www-form-urlencoded", body: `quantity=1`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "over-long user and SKU", method: "PUT", path: "/carts/" + long + "/items/" + long, body: `{"quantity":1}`, wantStatus: 422, wantCode: "invalid",
			wantFields: map[string]string{
				"user_id": "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
				"sku":     "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
			}},
		{name: "bad SKU and bad quantity together", method: "PUT", path: "/carts/{u}/items/%3Cscript%3E", body: `{"quantity":-5}`, wantStatus: 422, wantCode: "invalid",
			wantFields: map[string]string{
				"sku":      "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
				"quantity": "must be 0 to 10000 (0 removes the line)",
			}},
		{name: "encoded slash in SKU", method: "PUT", path: "/carts/{u}/items/A%2F1", body: `{"quantity":1}`, wantStatus: 422, wantCode: "invalid"},
		{name: "non-ASCII SKU", method: "PUT", path: "/carts/{u}/items/%C3%A9", body: `{"quantity":1}`, wantStatus: 422, wantCode: "invalid"},
		{name: "SQL in SKU", method: "PUT", path: "/carts/{u}/items/A'%20OR%201=1", body: `{"quantity":1}`, wantStatus: 422, wantCode: "invalid"},

		// Deleting a line.
		{name: "delete a line", method: "DELETE", path: "/carts/{u}/items/A-1", wantStatus: 200, wantCart: map[string]int{}},
		{name: "delete a missing line", method: "DELETE", path: "/carts/{u}/items/NOPE", wantStatus: 200, wantCart: map[string]int{"A-1": 3}},
		{name: "delete with a bad SKU", method: "DELETE", path: "/carts/{u}/items/" + long, wantStatus: 422, wantCode: "invalid"},

		// Routing.
		{name: "unknown route", method: "GET", path: "/nope", wantStatus: 404, wantCode: "not_found"},
		{name: "missing SKU", method: "PUT", path: "/carts/{u}/items/", body: `{"quantity":1}`, wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method", method: "POST", path: "/carts/{u}", body: `{}`, wantStatus: 405, wantCode: "method_not_allowed"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("user-%d", i)
			if err := st.SetLine(context.Background(), user, "A-1", 3, time.Now()); err != nil {
				t.Fatal(err)
			}
			path := strings.ReplaceAll(tc.path, "{u}", user)
			ct := tc.contentType
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			status, body := do(t, tc.method, srv.URL+path, ct, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %.300s", status, tc.wantStatus, body)
			}

			if status == http.StatusOK {
				var got cartBody
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("answer is not a cart: %v: %s", err, body)
				}
				if got.Items == nil {
					t.Errorf("items is null, want a list: %s", body)
				}
				if diff := cmp.Diff(tc.wantCart, got.asMap()); diff != "" {
					t.Errorf("answered cart (-want +got):\n%s", diff)
				}
				if strings.Contains(path, user) {
					if diff := cmp.Diff(tc.wantCart, storedCart(t, st, user)); diff != "" {
						t.Errorf("stored cart differs from the answer (-want +got):\n%s", diff)
					}
				}
				return
			}

			var got errorBody
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer is not an error envelope: %v: %s", err, body)
			}
			if got.Error.Code != tc.wantCode || got.Error.Message == "" {
				t.Errorf("error code %q message %q, want code %q", got.Error.Code, got.Error.Message, tc.wantCode)
			}
			if tc.wantFields != nil {
				if diff := cmp.Diff(tc.wantFields, got.Error.Fields); diff != "" {
					t.Errorf("error fields (-want +got):\n%s", diff)
				}
			}
			// A refused request writes nothing.
			if diff := cmp.Diff(map[string]int{"A-1": 3}, storedCart(t, st, user)); diff != "" {
				t.Errorf("a refused request changed the cart (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppliedOrderEndpoint(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	srv := newServer(t, st, nil)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	applied := created.Add(1234 * time.Millisecond)
	if err := st.InsertProcessedOrder(context.Background(), store.ProcessedOrder{OrderID: "o-1", UserID: "u1", OrderCreatedAt: &created, AppliedAt: applied}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"applied", "/carts/u1/orders/o-1", 200,
			`{"order_id":"o-1","user_id":"u1","order_created_at":"2026-03-01T12:00:00Z","applied_at":"2026-03-01T12:00:01.234Z"}`},
		{"not applied (yet)", "/carts/u1/orders/o-2", 404, ""},
		{"another user's order", "/carts/u2/orders/o-1", 404, ""},
		{"bad order ID", "/carts/u1/orders/o%201", 422, ""},
	}
	for _, tc := range tests {
		status, body := do(t, "GET", srv.URL+tc.path, "", "")
		if status != tc.wantStatus {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, status, tc.wantStatus, body)
			continue
		}
		if tc.wantBody != "" && strings.TrimSpace(string(body)) != tc.wantBody {
			t.Errorf("%s: body\n%s\nwant\n%s", tc.name, body, tc.wantBody)
		}
	}
}

func TestHealthReadinessMetrics(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ok := newServer(t, st, map[string]httpx.Check{"mysql": st.Ping, "consumer": func(context.Context) error { return nil }})
	notReady := newServer(t, st, map[string]httpx.Check{"mysql": st.Ping, "consumer": func(context.Context) error { return errors.New("not started") }})

	tests := []struct {
		name       string
		url        string
		wantStatus int
		wantIn     string
	}{
		{"healthz", ok.URL + "/healthz", 200, `"status":"ok"`},
		{"readyz when ready", ok.URL + "/readyz", 200, `"ready":true`},
		{"readyz names what is not ready", notReady.URL + "/readyz", 503, `"consumer":"not started"`},
		{"metrics from the service's own registry", ok.URL + "/metrics", 200, "cart_test_marker_total 0"},
	}
	for _, tc := range tests {
		status, body := do(t, "GET", tc.url, "", "")
		if status != tc.wantStatus || !strings.Contains(string(body), tc.wantIn) {
			t.Errorf("%s: status %d, body %.300s; want %d containing %q", tc.name, status, body, tc.wantStatus, tc.wantIn)
		}
	}
}
