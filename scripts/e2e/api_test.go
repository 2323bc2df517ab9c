package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/pkg/testenv"
)

// TestAPI checks, against real processes, what the REST contract promises beyond the flow: each
// service serves its OpenAPI document, a user's orders come a page at a time, a 500 names the
// order it was about, and old timeline rows are purged. Every request goes through the suite's
// client, which validates it and its answer against the documents (openapi_test.go).
func TestAPI(t *testing.T) {
	s := newSuite(t)

	t.Run("GET /openapi.json serves the repository's document", func(t *testing.T) {
		for _, c := range []struct {
			p    *proc
			file string
		}{
			{s.orders[0], apiDocuments["order-service"]},
			{s.orders[1], apiDocuments["order-service"]},
			{s.cart, apiDocuments["cart-service"]},
		} {
			want, err := os.ReadFile(filepath.Join(root, c.file))
			if err != nil {
				t.Fatal(err)
			}
			status, got := get(t, c.p, "/openapi.json")
			if status != 200 || !bytes.Equal(got, want) {
				t.Errorf("%s: GET /openapi.json = %d, %d bytes; want 200 and %s (%d bytes)", c.p.name, status, len(got), c.file, len(want))
			}
		}
	})

	t.Run("a user's orders a page at a time", func(t *testing.T) {
		u := testenv.Unique("pages")
		var placed []string // newest first
		for i := range 5 {
			a := place(s.orders[i%2], orderBody(u, map[string]int{fmt.Sprintf("P-%d", i): 1}), nil)
			if a.status != 201 {
				t.Fatalf("POST = %+v", a)
			}
			placed = append([]string{a.order.OrderID}, placed...)
		}
		var got []string
		pages := 0
		path := "/orders?user_id=" + u + "&limit=2"
		for {
			var page struct {
				Orders []orderJSON `json:"orders"`
				Next   *string     `json:"next"`
			}
			getJSON(t, s.orders[pages%2], path, 200, &page) // either instance continues a page
			pages++
			for _, o := range page.Orders {
				got = append(got, o.OrderID)
			}
			if page.Next == nil || pages > 5 {
				break
			}
			path = "/orders?user_id=" + u + "&limit=2&before=" + url.QueryEscape(*page.Next)
		}
		if d := cmp.Diff(placed, got); d != "" || pages != 3 {
			t.Errorf("%d pages of 2; orders (-want +got):\n%s", pages, d)
		}
		for _, query := range []string{"&limit=0", "&limit=101", "&limit=two", "&before=no-such-order"} {
			var e errorJSON
			getJSON(t, s.orders[0], "/orders?user_id="+u+query, 400, &e)
			if e.Error.Code != "invalid_query" {
				t.Errorf("GET /orders?user_id=…%s: code %q, want invalid_query", query, e.Error.Code)
			}
		}
	})

	t.Run("a 500 names the order, whose timeline says why", func(t *testing.T) {
		u := testenv.Unique("failed")
		s.fill(t, u, map[string]int{"F-1": 3})
		a := placeRaw(t, s.orders[0], orderBody(u, map[string]int{"F-1": 1}), map[string]string{"X-Fault": "fail-local-tx"})
		var e errorJSON
		if err := json.Unmarshal(a.body, &e); err != nil || a.status != 500 || e.Error.Code != "order_not_placed" || e.Error.OrderID == "" {
			t.Fatalf("POST with fail-local-tx = %d %s, want 500 order_not_placed with the order ID", a.status, a.body)
		}
		id := e.Error.OrderID
		var nf errorJSON
		getJSON(t, s.orders[1], "/orders/"+id, 404, &nf)
		var tl struct {
			OrderID string `json:"order_id"`
			Steps   []struct {
				Step string `json:"step"`
			} `json:"steps"`
		}
		// Steps are written in the background, within moments.
		testenv.Eventually(t, 30*time.Second, "the failed order's timeline", func() bool {
			status, body := get(t, s.orders[1], "/orders/"+id+"/timeline")
			return status == 200 && json.Unmarshal(body, &tl) == nil && len(tl.Steps) > 0
		})
		t.Logf("order %s, not placed: %+v", id, tl.Steps)
		var cartTL struct {
			AppliedAt *string `json:"applied_at"`
			Steps     []any   `json:"steps"`
		}
		getJSON(t, s.cart, "/orders/"+id+"/timeline", 200, &cartTL)
		if cartTL.AppliedAt != nil || len(cartTL.Steps) != 0 {
			t.Errorf("cart-service heard of the order that was not placed: %+v", cartTL)
		}
		if got := s.cartOf(t, u); got["F-1"] != 3 {
			t.Errorf("cart = %v, want F-1 untouched at 3", got)
		}
	})

	t.Run("old timeline rows are purged, young ones kept", func(t *testing.T) {
		u := testenv.Unique("kept")
		a := place(s.orders[0], orderBody(u, map[string]int{"K-1": 1}), nil)
		if a.status != 201 {
			t.Fatalf("POST = %+v", a)
		}
		old, young := "old-"+u, "young-"+u
		now := time.Now().UTC()
		for _, row := range []struct {
			id string
			at time.Time
		}{{old, now.Add(-30 * 24 * time.Hour)}, {young, now.Add(-8 * 24 * time.Hour)}} {
			if _, err := s.ordersDB.Exec(`INSERT INTO order_timeline (order_id, step, detail, instance, at) VALUES (?, 'local_tx_committed', 'inserted by the test', 'e2e', ?)`, row.id, row.at); err != nil {
				t.Fatal(err)
			}
			if _, err := s.cartsDB.Exec(`INSERT INTO order_deliveries (order_id, step, detail, reconsume_times, msg_id, at) VALUES (?, 'applied', 'inserted by the test', 0, 'm', ?)`, row.id, row.at); err != nil {
				t.Fatal(err)
			}
			if _, err := s.cartsDB.Exec(`INSERT INTO rejected_messages (msg_id, msg_key, reason, body_snippet, rejected_at) VALUES (?, 'k', 'inserted by the test', '', ?)`, row.id, row.at); err != nil {
				t.Fatal(err)
			}
		}
		// The purge runs at start, then every tenth of the retention: restart with 10 days, so
		// that the 30-day-old rows go and the 8-day-old ones (past the 7-day default) stay.
		for _, p := range []*proc{s.orders[0], s.cart} {
			p.stop(t)
			p.env = append(p.env, "TIMELINE_RETENTION=10d")
			p.start(t)
		}
		testenv.Eventually(t, 30*time.Second, "the 30-day-old rows purged", func() bool {
			return s.count(t, s.ordersDB, "SELECT COUNT(*) FROM order_timeline WHERE order_id = ?", old)+
				s.count(t, s.cartsDB, "SELECT COUNT(*) FROM order_deliveries WHERE order_id = ?", old)+
				s.count(t, s.cartsDB, "SELECT COUNT(*) FROM rejected_messages WHERE msg_id = ?", old) == 0
		})
		for _, c := range []struct{ db, table, column string }{
			{"orders", "order_timeline", "order_id"}, {"carts", "order_deliveries", "order_id"}, {"carts", "rejected_messages", "msg_id"},
		} {
			db := s.ordersDB
			if c.db == "carts" {
				db = s.cartsDB
			}
			if n := s.count(t, db, "SELECT COUNT(*) FROM "+c.table+" WHERE "+c.column+" = ?", young); n != 1 {
				t.Errorf("%s: the 8-day-old row is gone (%d left); the retention is 10 days", c.table, n)
			}
		}
		var tl struct {
			Steps []any `json:"steps"`
		}
		getJSON(t, s.orders[0], "/orders/"+a.order.OrderID+"/timeline", 200, &tl)
		if len(tl.Steps) == 0 {
			t.Errorf("the new order's timeline lost its steps")
		}
	})
}

type errorJSON struct {
	Error struct {
		Code    string            `json:"code"`
		Fields  map[string]string `json:"fields"`
		OrderID string            `json:"order_id"`
	} `json:"error"`
}

// get sends GET path to p through the suite's client.
func get(t *testing.T, p *proc, path string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(p.url(path))
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, p.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, p.name, err)
	}
	return resp.StatusCode, body
}

// getJSON sends GET path and decodes the answer, which must have status want.
func getJSON(t *testing.T, p *proc, path string, want int, v any) {
	t.Helper()
	status, body := get(t, p, path)
	if status != want {
		t.Fatalf("GET %s on %s = %d %s, want %d", path, p.name, status, body, want)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s on %s: %v in %s", path, p.name, err, body)
	}
}

type rawAnswer struct {
	status int
	body   []byte
}

// placeRaw is POST /orders, answering the whole body.
func placeRaw(t *testing.T, p *proc, body string, headers map[string]string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest("POST", p.url("/orders"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /orders on %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{status: resp.StatusCode, body: raw}
}
