package order

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// ValidationError lists what is wrong with a request, per field. Nothing was written or sent.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid order: " + strings.Join(parts, "; ")
}

// checkID adds to fields what is wrong with the ID v, if anything (events.CheckID is the rule both
// services share).
func checkID(fields map[string]string, name, v string) {
	if err := events.CheckID(v); err != nil {
		fields[name] = err.Error()
	}
}

// Validate checks a request against the limits of the event contract, so that every order
// order-service accepts is one cart-service can apply.
func (r Request) Validate() error {
	f := map[string]string{}
	checkID(f, "user_id", r.UserID)
	switch {
	case len(r.Items) == 0:
		f["items"] = "must have at least one item"
	case len(r.Items) > events.MaxItems:
		f["items"] = fmt.Sprintf("must have at most %d items", events.MaxItems)
	}
	seen := map[string]int{}
	for i, it := range r.Items {
		p := fmt.Sprintf("items[%d].", i)
		checkID(f, p+"sku", it.SKU)
		if j, dup := seen[it.SKU]; dup && it.SKU != "" {
			f[p+"sku"] = fmt.Sprintf("duplicates items[%d].sku; order each SKU once", j)
		}
		seen[it.SKU] = i
		if it.Quantity < 1 || it.Quantity > events.MaxQuantity {
			f[p+"quantity"] = fmt.Sprintf("must be from 1 to %d", events.MaxQuantity)
		}
		if it.UnitPriceCents < 0 || it.UnitPriceCents > events.MaxPriceCents {
			f[p+"unit_price_cents"] = fmt.Sprintf("must be from 0 to %d", events.MaxPriceCents)
		}
	}
	if len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}

// ValidateIdempotencyKey checks an Idempotency-Key header value ("" means none).
func ValidateIdempotencyKey(key string) error {
	if key == "" {
		return nil
	}
	f := map[string]string{}
	checkID(f, "Idempotency-Key", key)
	if len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}

// hash identifies a request's content for Idempotency-Key replays: the same key with a different
// body is a client bug, answered 409. Item order does not matter.
func (r Request) hash() string {
	items := slices.Clone(r.Items)
	slices.SortFunc(items, func(a, b RequestItem) int { return strings.Compare(a.SKU, b.SKU) })
	b, _ := json.Marshal(Request{UserID: r.UserID, Items: items}) // plain structs: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

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

// Errors that Place returns besides *ValidationError. The HTTP layer maps each to a status.
var (
	// ErrIdempotencyConflict: the Idempotency-Key was used with a different body (409).
	ErrIdempotencyConflict = errors.New("idempotency key already used with a different request")
	// ErrBrokerUnavailable: the half message was not stored; nothing was written (503).
	ErrBrokerUnavailable = errors.New("message broker unavailable")
	// ErrNotPlaced: the local transaction rolled back; its half message is rolled back too (500).
	ErrNotPlaced = errors.New("order not placed")
	// ErrNotFound: no such order.
	ErrNotFound = errors.New("order not found")
	// ErrRolledBack: no such order, and there never will be: its transaction was rolled back.
	ErrRolledBack = errors.New("order was rolled back")
)
