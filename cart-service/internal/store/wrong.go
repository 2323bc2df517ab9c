package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"rmqtx/pkg/mysqldb"
)

// The queries below serve only the consumers that are wrong on purpose (internal/cart/wrong.go,
// CONSUMER other than correct) and the fault points. The right consumer never calls them.

// ErrMessageProcessed means a message ID is already in processed_messages.
var ErrMessageProcessed = errors.New("message already applied to the cart")

// InsertProcessedMessage records that a message has been applied, keyed by its message ID: the
// deduplication of CONSUMER=dedup-by-message-id. If the message ID is already there it returns
// ErrMessageProcessed.
func (s *Store) InsertProcessedMessage(ctx context.Context, msgID, orderID string, at time.Time) error {
	err := s.db.WithContext(ctx).Exec(`INSERT INTO processed_messages (msg_id, order_id, applied_at) VALUES (?, ?, ?)`,
		msgID, orderID, at).Error
	if mysqldb.IsDuplicateKey(err, "PRIMARY") {
		return fmt.Errorf("message %s: %w", msgID, ErrMessageProcessed)
	}
	if err != nil {
		return fmt.Errorf("insert processed message %s: %w", msgID, err)
	}
	return nil
}

// NoteAppliedOrder writes the processed_orders row of an order if it has none, and says whether it
// had one already. It decides nothing (a consumer deduplicating by message ID keeps the row so
// that GET /carts/{user}/orders/{order} and the invariant checker see the order as applied); the
// answer only lets that consumer say that it applied an order twice.
func (s *Store) NoteAppliedOrder(ctx context.Context, p ProcessedOrder) (already bool, err error) {
	res := s.db.WithContext(ctx).Exec(
		`INSERT INTO processed_orders (order_id, user_id, order_created_at, applied_at) VALUES (?, ?, ?, ?)
		 ON DUPLICATE KEY UPDATE order_id = order_id`, p.OrderID, p.UserID, p.OrderCreatedAt, p.AppliedAt)
	if res.Error != nil {
		return false, fmt.Errorf("note applied order %s: %w", p.OrderID, res.Error)
	}
	// 1: inserted; 0: the row was there and the update changed nothing.
	return res.RowsAffected == 0, nil
}

// DeleteOrderedLines removes each ordered SKU's line from the user's cart, whatever it holds: the
// apply of CONSUMER=delete-lines. It returns the quantities the lines held, by SKU (a SKU not in
// the cart is absent). Lines are locked and removed in SKU order, as DecrementLines does, and the
// ledger (cart_changes) gets one row per ordered SKU, as DecrementLines writes it: what the order
// asked, and what the line held before and after. The rows tell the truth, so the ledger shows an
// order that took more than it asked.
func (s *Store) DeleteOrderedLines(ctx context.Context, orderID, userID string, lines []Line, now time.Time) (map[string]int, error) {
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b Line) int { return strings.Compare(a.SKU, b.SKU) })
	db := s.db.WithContext(ctx)
	held := map[string]int{}
	for _, l := range sorted {
		var present []CartItem
		if err := db.Raw(`SELECT sku, quantity FROM cart_items WHERE user_id = ? AND sku = ? FOR UPDATE`,
			userID, l.SKU).Scan(&present).Error; err != nil {
			return nil, fmt.Errorf("read cart line %s/%s: %w", userID, l.SKU, err)
		}
		before := 0
		if len(present) > 0 {
			before = present[0].Quantity
			held[l.SKU] = before
			if err := db.Exec(`DELETE FROM cart_items WHERE user_id = ? AND sku = ?`, userID, l.SKU).Error; err != nil {
				return nil, fmt.Errorf("delete cart line %s/%s: %w", userID, l.SKU, err)
			}
		}
		if err := db.Exec(`INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at)
			VALUES (?, ?, ?, ?, ?, 0, ?)`, userID, l.SKU, orderID, l.Quantity, before, now).Error; err != nil {
			return nil, fmt.Errorf("record order %s in the cart ledger: %w", orderID, err)
		}
	}
	return held, nil
}

// FireOnce records that a fault point has fired for an order and reports whether this is the
// first time. The insert commits at once (it is not meant to run inside a transaction), so the
// answer survives the crash the fault point causes.
func (s *Store) FireOnce(ctx context.Context, orderID, point string, at time.Time) (first bool, err error) {
	err = s.db.WithContext(ctx).Exec(`INSERT INTO fault_points_fired (order_id, point, fired_at) VALUES (?, ?, ?)`,
		orderID, point, at).Error
	if mysqldb.IsDuplicateKey(err, "PRIMARY") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record fault point %s of order %s: %w", point, orderID, err)
	}
	return true, nil
}
