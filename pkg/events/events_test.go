package events

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeRoundTrip(t *testing.T) {
	body := `{"version":1,"order_id":"o1","user_id":"u1","items":[{"sku":"A","quantity":2,"unit_price_cents":5}],"total_cents":10,"created_at":"2026-01-02T03:04:05.000006Z","added_later":"ignored"}`
	got, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := OrderCreated{Version: 1, OrderID: "o1", UserID: "u1", TotalCents: 10,
		Items:     []Item{{SKU: "A", Quantity: 2, UnitPriceCents: 5}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestDecodeRejectsWhatCanNeverApply(t *testing.T) {
	long := strings.Repeat("x", MaxIDLen+1)
	item := `{"sku":"A","quantity":1}`
	tests := map[string]string{
		"not json":          `{`,
		"wrong type":        `{"version":"1"}`,
		"no version":        `{"order_id":"o","user_id":"u","items":[` + item + `]}`,
		"no order id":       `{"version":1,"user_id":"u","items":[` + item + `]}`,
		"long order id":     `{"version":1,"order_id":"` + long + `","user_id":"u","items":[` + item + `]}`,
		"no user":           `{"version":1,"order_id":"o","items":[` + item + `]}`,
		"no items":          `{"version":1,"order_id":"o","user_id":"u","items":[]}`,
		"space in order id": `{"version":1,"order_id":"o 1","user_id":"u","items":[` + item + `]}`,
		"quote in user id":  `{"version":1,"order_id":"o","user_id":"u'1","items":[` + item + `]}`,
		"slash in sku":      `{"version":1,"order_id":"o","user_id":"u","items":[{"sku":"A/1","quantity":1}]}`,
		"empty sku":         `{"version":1,"order_id":"o","user_id":"u","items":[{"sku":"","quantity":1}]}`,
		"duplicate sku":     `{"version":1,"order_id":"o","user_id":"u","items":[` + item + `,` + item + `]}`,
		"zero quantity":     `{"version":1,"order_id":"o","user_id":"u","items":[{"sku":"A","quantity":0}]}`,
		"negative quantity": `{"version":1,"order_id":"o","user_id":"u","items":[{"sku":"A","quantity":-1}]}`,
		"huge quantity":     `{"version":1,"order_id":"o","user_id":"u","items":[{"sku":"A","quantity":10001}]}`,
	}
	for name, body := range tests {
		if _, err := Decode([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
