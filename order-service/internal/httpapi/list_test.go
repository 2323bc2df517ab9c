package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type listBody struct {
	Orders []struct {
		OrderID string `json:"order_id"`
	} `json:"orders"`
	Next *string `json:"next"`
}

// TestListPages walks GET /orders?user_id= page by page with limit and before: every order once,
// newest first, next null on the last page; without limit, one page holds up to 100.
func TestListPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	var placed []string // oldest first
	for i := range 5 {
		rec := f.do("POST", "/orders", fmt.Sprintf(`{"user_id":"u-page","items":[{"sku":"S-%d","quantity":1,"unit_price_cents":5}]}`, i), nil)
		var b orderBody
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Code != 201 {
			t.Fatalf("POST = %d %s", rec.Code, rec.Body)
		}
		placed = append([]string{b.Order.OrderID}, placed...)
	}
	f.do("POST", "/orders", good, nil) // another user's order, never listed

	get := func(query string) listBody {
		t.Helper()
		rec := f.do("GET", "/orders?"+query, "", nil)
		var b listBody
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Code != 200 {
			t.Fatalf("GET /orders?%s = %d %s", query, rec.Code, rec.Body)
		}
		return b
	}
	for _, limit := range []int{1, 2, 5} {
		var got []string
		var pages int
		query := fmt.Sprintf("user_id=u-page&limit=%d", limit)
		for {
			b := get(query)
			pages++
			for _, o := range b.Orders {
				got = append(got, o.OrderID)
			}
			if b.Next == nil {
				break
			}
			if pages > 5 {
				t.Fatalf("limit %d: more pages than orders", limit)
			}
			query = fmt.Sprintf("user_id=u-page&limit=%d&before=%s", limit, url.QueryEscape(*b.Next))
		}
		if d := cmp.Diff(placed, got); d != "" {
			t.Errorf("limit %d: orders over %d pages (-want +got):\n%s", limit, pages, d)
		}
		if want := (5 + limit - 1) / limit; pages != want {
			t.Errorf("limit %d: %d pages, want %d (no empty last page)", limit, pages, want)
		}
	}
	if b := get("user_id=u-page"); len(b.Orders) != 5 || b.Next != nil {
		t.Errorf("default page: %d orders, next %v; want all 5 and no next", len(b.Orders), b.Next)
	}
	if b := get("user_id=nobody"); b.Orders == nil || len(b.Orders) != 0 || b.Next != nil {
		t.Errorf("a user without orders: %+v, want [] and no next", b)
	}
}

// TestListRejectsBadPages: a bad limit or before is a 400 invalid_query naming the parameter.
func TestListRejectsBadPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	rec := f.do("POST", "/orders", good, nil) // user u1
	var mine orderBody
	if err := json.Unmarshal(rec.Body.Bytes(), &mine); err != nil || rec.Code != 201 {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	for _, tt := range []struct{ query, field string }{
		{"user_id=u1&limit=0", "limit"},
		{"user_id=u1&limit=101", "limit"},
		{"user_id=u1&limit=-1", "limit"},
		{"user_id=u1&limit=ten", "limit"},
		{"user_id=u1&limit=", "limit"},
		{"user_id=u1&before=", "before"},
		{"user_id=u1&before=no-such-order", "before"},
		{"user_id=u1&before=" + url.QueryEscape("bad id!"), "before"},
		{"user_id=u2&before=" + mine.Order.OrderID, "before"}, // another user's order
	} {
		rec := f.do("GET", "/orders?"+tt.query, "", nil)
		var e errorBody
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 400 || e.Error.Code != "invalid_query" || e.Error.Fields[tt.field] == "" {
			t.Errorf("GET /orders?%s = %d %s, want 400 invalid_query naming %s", tt.query, rec.Code, rec.Body, tt.field)
		}
	}
}
