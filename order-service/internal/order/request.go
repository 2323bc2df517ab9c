package order

import (
	"slices"
	"strings"
	"time"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/events"
)

// Request is the body of POST /orders.
type Request struct {
	UserID string        `json:"user_id"`
	Items  []RequestItem `json:"items"`
}

// RequestItem is one line of a Request.
type RequestItem struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is an order as the API shows it.
type Order struct {
	OrderID    string        `json:"order_id"`
	UserID     string        `json:"user_id"`
	Items      []RequestItem `json:"items"`
	TotalCents int64         `json:"total_cents"`
	Status     string        `json:"status"` // "created", or "pending" while the outcome is unknown
	CreatedAt  time.Time     `json:"created_at"`
}

// Status values.
const (
	StatusCreated = "created"
	StatusPending = "pending"
)

// row builds the database rows of a new order.
func (r Request) row(orderID string, now time.Time, idemKey string) store.OrderRow {
	o := store.OrderRow{OrderID: orderID, UserID: r.UserID, CreatedAt: now}
	for _, it := range r.Items {
		o.TotalCents += int64(it.Quantity) * it.UnitPriceCents
		o.Items = append(o.Items, store.ItemRow{OrderID: orderID, SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents})
	}
	slices.SortFunc(o.Items, func(a, b store.ItemRow) int { return strings.Compare(a.SKU, b.SKU) })
	if idemKey != "" {
		h := r.hash()
		o.IdempotencyKey, o.RequestHash = &idemKey, &h
	}
	return o
}

// event is the OrderCreated event of an order row.
func event(o store.OrderRow) events.OrderCreated {
	e := events.OrderCreated{
		Version: events.CurrentVersion, OrderID: o.OrderID, UserID: o.UserID,
		TotalCents: o.TotalCents, CreatedAt: o.CreatedAt,
	}
	for _, it := range o.Items {
		e.Items = append(e.Items, events.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents})
	}
	return e
}

// fromRow is the API view of a stored order.
func fromRow(o store.OrderRow, status string) Order {
	out := Order{OrderID: o.OrderID, UserID: o.UserID, TotalCents: o.TotalCents, Status: status, CreatedAt: o.CreatedAt}
	for _, it := range o.Items {
		out.Items = append(out.Items, RequestItem{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents})
	}
	return out
}
