// Package events is the contract between order-service and cart-service: the OrderCreated event
// and where it travels. Both services compile against this one definition.
//
// Evolve it by adding fields, never by renaming or removing one: a message published by an old
// order-service may be consumed by a new cart-service and the other way round, and messages wait
// in the broker across deployments.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Defaults for the names both services agree on. Each may be overridden by configuration.
const (
	// DefaultTopic carries OrderCreated events.
	DefaultTopic = "order-events"
	// TagOrderCreated is the message tag of an OrderCreated event, so consumers can filter by type.
	TagOrderCreated = "OrderCreated"

	// PropertyFault carries a cart-side fault point (docs/design.md, fault injection) from
	// order-service to cart-service as a message property, so the event body stays pure business.
	PropertyFault = "RMQTX_FAULT"
)

// Limits shared by the producer's validation and the consumer's, so that an event order-service
// accepts is one cart-service accepts.
const (
	MaxIDLen       = 64
	MaxItems       = 100
	MaxQuantity    = 10_000
	MaxPriceCents  = 100_000_000 // 1,000,000.00 in the smallest currency unit
	CurrentVersion = 1
)

// OrderCreated is published, through a RocketMQ transactional message, once an order is durable
// in the orders database. Its OrderID is the consumer's deduplication key: it is the same in every
// message about the order, including one published again as a new message, which the broker's
// message ID is not.
type OrderCreated struct {
	Version    int       `json:"version"`
	OrderID    string    `json:"order_id"`
	UserID     string    `json:"user_id"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	CreatedAt  time.Time `json:"created_at"`
}

// Item is one ordered line.
type Item struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// IDs: user IDs, SKUs, order IDs and idempotency keys end up in URLs, logs and database keys, so
// they are 1 to MaxIDLen characters of A-Z a-z 0-9 . _ : - and nothing else (no spaces, quotes,
// slashes or control characters). Both services check them with CheckID: anything else is
// refused at the edge rather than escaped everywhere.
var (
	ErrIDEmpty   = errors.New("is required")
	ErrIDTooLong = fmt.Errorf("must be at most %d characters", MaxIDLen)
	ErrIDChars   = errors.New("may only contain letters, digits, '.', '_', ':' and '-'")
)

// CheckID says what is wrong with an ID (one of the ErrID* errors), or nil if it is one.
func CheckID(s string) error {
	switch {
	case s == "":
		return ErrIDEmpty
	case len(s) > MaxIDLen:
		return ErrIDTooLong
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return ErrIDChars
		}
	}
	return nil
}

// ErrInvalid marks an event that can never be applied, however often it is redelivered.
var ErrInvalid = errors.New("invalid OrderCreated event")

// Decode parses and validates a message body. Any error wraps ErrInvalid: the consumer records
// such a message and acknowledges it instead of retrying it for ever.
func Decode(body []byte) (OrderCreated, error) {
	var e OrderCreated
	if err := json.Unmarshal(body, &e); err != nil {
		return OrderCreated{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := e.Validate(); err != nil {
		return OrderCreated{}, err
	}
	return e, nil
}

// Validate checks the invariants every consumer relies on: the same rules order-service checks
// before it sends the event.
func (e OrderCreated) Validate() error {
	switch {
	case e.Version < 1:
		return fmt.Errorf("%w: version %d", ErrInvalid, e.Version)
	case CheckID(e.OrderID) != nil:
		return fmt.Errorf("%w: order_id %v", ErrInvalid, CheckID(e.OrderID))
	case CheckID(e.UserID) != nil:
		return fmt.Errorf("%w: user_id %v", ErrInvalid, CheckID(e.UserID))
	case len(e.Items) == 0 || len(e.Items) > MaxItems:
		return fmt.Errorf("%w: must have 1 to %d items", ErrInvalid, MaxItems)
	}
	seen := make(map[string]bool, len(e.Items))
	for i, it := range e.Items {
		switch {
		case CheckID(it.SKU) != nil:
			return fmt.Errorf("%w: items[%d].sku %v", ErrInvalid, i, CheckID(it.SKU))
		case seen[it.SKU]:
			return fmt.Errorf("%w: items[%d].sku %q appears twice", ErrInvalid, i, it.SKU)
		case it.Quantity < 1 || it.Quantity > MaxQuantity:
			return fmt.Errorf("%w: items[%d].quantity must be 1 to %d", ErrInvalid, i, MaxQuantity)
		}
		seen[it.SKU] = true
	}
	return nil
}
