package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/testenv"
)

// With its one slot taken, the API refuses with 503 overloaded, Retry-After and the error
// envelope, and writes nothing; /readyz says so and /healthz does not. The slot is held by a PUT
// waiting for a row lock that the test holds in a transaction of its own.
func TestOverloadedAPIRefusesAndWritesNothing(t *testing.T) {
	t.Parallel()
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "carthttp"), store.Schema)
	st := store.New(db)
	srv := newBoundedServer(t, st, nil, 1)
	if status, body := do(t, "PUT", srv.URL+"/carts/u1/items/A-1", "", `{"quantity":1}`); status != http.StatusOK {
		t.Fatalf("first PUT = %d %s", status, body)
	}

	lock := db.Begin()
	if err := lock.Exec("SELECT quantity FROM cart_items WHERE user_id = 'u1' AND sku = 'A-1' FOR UPDATE").Error; err != nil {
		t.Fatal(err)
	}
	held := make(chan int)
	go func() {
		req, _ := http.NewRequest("PUT", srv.URL+"/carts/u1/items/A-1", strings.NewReader(`{"quantity":2}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	testenv.Eventually(t, 30*time.Second, "the held PUT to take the slot", func() bool {
		_, body := do(t, "GET", srv.URL+"/metrics", "", "")
		return strings.Contains(string(body), "http_admission_in_flight 1\n")
	})

	resp, err := http.DefaultClient.Do(mustRequest(t, "PUT", srv.URL+"/carts/u-refused/items/B-1", `{"quantity":3}`))
	if err != nil {
		t.Fatal(err)
	}
	var e errorBody
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "overloaded" || e.Error.Message == "" {
		t.Fatalf("PUT over the bound = %d %+v (%v), want 503 overloaded", resp.StatusCode, e, err)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1", ra)
	}
	if status, body := do(t, "GET", srv.URL+"/carts/u1", "", ""); status != http.StatusServiceUnavailable {
		t.Fatalf("GET over the bound = %d %s", status, body)
	}
	if status, body := do(t, "GET", srv.URL+"/healthz", "", ""); status != http.StatusOK {
		t.Fatalf("healthz while overloaded = %d %s", status, body)
	}
	if status, body := do(t, "GET", srv.URL+"/readyz", "", ""); status != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), `"admission":"overloaded`) {
		t.Fatalf("readyz while overloaded = %d %s", status, body)
	}
	if _, body := do(t, "GET", srv.URL+"/metrics", "", ""); !strings.Contains(string(body), "http_admission_refused_total 2\n") {
		t.Fatalf("metrics while overloaded lack http_admission_refused_total 2:\n%.2000s", body)
	}

	if err := lock.Rollback().Error; err != nil {
		t.Fatal(err)
	}
	if code := <-held; code != http.StatusOK {
		t.Fatalf("held PUT = %d, want 200", code)
	}
	if got := storedCart(t, st, "u-refused"); len(got) != 0 {
		t.Fatalf("cart of the refused PUT = %v, want empty", got)
	}
	if got := storedCart(t, st, "u1"); got["A-1"] != 2 {
		t.Fatalf("cart u1 = %v, want A-1: 2 (the held PUT)", got)
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}
