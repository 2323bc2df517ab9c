// Package store is cart-service's database: carts, the orders already applied to them, and the
// messages rejected as poison. The schema is explicit SQL (schema.sql) because its primary keys
// carry the correctness of the service; the queries are small and each says what it does.
package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/retention"
)

// Schema is applied at start by mysqldb.Open; every statement in it is idempotent.
//
//go:embed schema.sql
var Schema string

// Purged are the tables whose rows older than TIMELINE_RETENTION main purges in the background:
// they describe what happened, and nothing reads them to decide anything.
var Purged = []retention.Table{
	{Name: "order_deliveries", Column: "at", Index: "idx_order_deliveries_at"},
	{Name: "rejected_messages", Column: "rejected_at", Index: "idx_rejected_messages_at"},
}

var (
	// ErrAlreadyProcessed means the order's event has been applied before: its order ID is in
	// processed_orders.
	ErrAlreadyProcessed = errors.New("order already applied to the cart")
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
)

// CartItem is one row of cart_items.
type CartItem struct {
	UserID    string `gorm:"primaryKey"`
	SKU       string `gorm:"column:sku;primaryKey"`
	Quantity  int
	UpdatedAt time.Time
}

// ProcessedOrder is one row of processed_orders.
type ProcessedOrder struct {
	OrderID        string `gorm:"primaryKey"`
	UserID         string
	OrderCreatedAt *time.Time // nil when the event carried no usable creation time
	AppliedAt      time.Time
}

// RejectedMessage is one row of rejected_messages.
type RejectedMessage struct {
	ID          int64 `gorm:"primaryKey"`
	MsgID       string
	MsgKey      string
	Reason      string
	BodySnippet string
	RejectedAt  time.Time
}

// Line is a quantity of one SKU, as ordered or as decremented.
type Line struct {
	SKU      string
	Quantity int
}

// Store runs cart-service's queries on a database handle, or on a transaction inside InTx.
type Store struct {
	db *gorm.DB
}

// New wraps an open database (mysqldb.Open with Schema).
func New(db *gorm.DB) *Store { return &Store{db: db} }

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("mysql handle: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping mysql: %w", err)
	}
	return nil
}

// InTx runs fn in one transaction; the Store handed to fn runs every query inside it. An error
// from fn rolls back and is returned as is; an error from COMMIT wraps mysqldb.ErrCommitUnknown.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return mysqldb.InTx(ctx, s.db, func(tx *gorm.DB) error { return fn(&Store{db: tx}) })
}

// Cart returns a user's cart lines ordered by SKU; an empty cart is an empty slice.
func (s *Store) Cart(ctx context.Context, userID string) ([]CartItem, error) {
	items := []CartItem{}
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("sku").Find(&items).Error
	if err != nil {
		return nil, fmt.Errorf("read cart of %s: %w", userID, err)
	}
	return items, nil
}

// SetLine sets the quantity of one cart line, creating it if needed; a quantity of 0 or less
// removes the line, so that no line ever stores a quantity of zero. The change is recorded in the
// cart ledger (cart_changes) in the same transaction.
func (s *Store) SetLine(ctx context.Context, userID, sku string, quantity int, now time.Time) error {
	return s.userChange(ctx, userID, sku, max(quantity, 0), now)
}

// DeleteLine removes one cart line. Removing a line that is not there is not an error.
func (s *Store) DeleteLine(ctx context.Context, userID, sku string) error {
	return s.userChange(ctx, userID, sku, 0, time.Now())
}

// userChange sets a line to quantity (0 removes it) and records the change in the ledger, in a
// transaction of its own. The first statement creates the line with quantity 0 if it is missing,
// so that the line's row is locked from then on whether it existed or not: the quantity read next
// is the one this change replaces, and a concurrent change of the same line waits. The
// placeholder never commits: the line is then updated or deleted.
//
// Two changes of the same missing line can still deadlock on InnoDB's gap locks (a line just
// deleted, or an order's locking read of a SKU the cart does not hold, leaves one); InnoDB then
// rolls one of them back, and it is run again, as InnoDB's documentation asks of applications.
func (s *Store) userChange(ctx context.Context, userID, sku string, quantity int, now time.Time) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = s.userChangeOnce(ctx, userID, sku, quantity, now)
		var me *mysql.MySQLError
		if attempt == maxDeadlockRetries || !errors.As(err, &me) || me.Number != errDeadlock {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("set cart line %s/%s to %d: %w", userID, sku, quantity, err)
	}
	return nil
}

const (
	errDeadlock        = 1213 // ER_LOCK_DEADLOCK: InnoDB rolled the transaction back
	maxDeadlockRetries = 5
)

func (s *Store) userChangeOnce(ctx context.Context, userID, sku string, quantity int, now time.Time) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO cart_items (user_id, sku, quantity, updated_at) VALUES (?, ?, 0, ?)
			ON DUPLICATE KEY UPDATE quantity = quantity`, userID, sku, now).Error; err != nil {
			return err
		}
		var before int
		if err := tx.Raw(`SELECT quantity FROM cart_items WHERE user_id = ? AND sku = ? FOR UPDATE`,
			userID, sku).Scan(&before).Error; err != nil {
			return err
		}
		if quantity > 0 {
			// updated_at changes even when the quantity does not, as it always has.
			if err := tx.Exec(`UPDATE cart_items SET quantity = ?, updated_at = ? WHERE user_id = ? AND sku = ?`,
				quantity, now, userID, sku).Error; err != nil {
				return err
			}
		} else if err := tx.Exec(`DELETE FROM cart_items WHERE user_id = ? AND sku = ?`, userID, sku).Error; err != nil {
			return err
		}
		if before == quantity {
			return nil
		}
		return tx.Exec(`INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at)
			VALUES (?, ?, NULL, NULL, ?, ?, ?)`, userID, sku, before, quantity, now).Error
	})
}

// InsertProcessedOrder records that an order has been applied. If the order ID is already there
// it returns ErrAlreadyProcessed; inside a transaction, a concurrent insert of the same ID waits
// for the other transaction and then fails the same way if that one commits.
func (s *Store) InsertProcessedOrder(ctx context.Context, p ProcessedOrder) error {
	err := s.db.WithContext(ctx).Create(&p).Error
	if mysqldb.IsDuplicateKey(err, "PRIMARY") {
		return fmt.Errorf("order %s: %w", p.OrderID, ErrAlreadyProcessed)
	}
	if err != nil {
		return fmt.Errorf("insert processed order %s: %w", p.OrderID, err)
	}
	return nil
}

// ProcessedOrder returns the processed_orders row of a user's order, or ErrNotFound.
func (s *Store) ProcessedOrder(ctx context.Context, userID, orderID string) (ProcessedOrder, error) {
	var p ProcessedOrder
	err := s.db.WithContext(ctx).Where("order_id = ? AND user_id = ?", orderID, userID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ProcessedOrder{}, fmt.Errorf("processed order %s of %s: %w", orderID, userID, ErrNotFound)
	}
	if err != nil {
		return ProcessedOrder{}, fmt.Errorf("read processed order %s: %w", orderID, err)
	}
	return p, nil
}

// DecrementLines takes each line's quantity off the user's cart and removes the lines that reach
// zero or less. SKUs that are not in the cart are skipped: the user may have removed them after
// ordering. It decrements rather than deletes, so items added after the order survive. What it
// took is recorded in the cart ledger (cart_changes), one row per ordered SKU, tagged with
// orderID; it must run inside the transaction that inserts the order into processed_orders.
//
// One locking read of the ordered SKUs comes first: it gives the quantities before (for the
// ledger) and locks the user's lines in SKU order (an IN list walks the primary key in order), so
// that two transactions decrementing the same cart lock its rows in the same order and cannot
// deadlock on each other. Knowing the quantities, each line then takes one statement by its full
// primary key, which locks that row and nothing else: a decrement if the line stays above zero, a
// delete if it does not, nothing if it is not there. (One "delete the user's emptied lines"
// statement may scan, and lock, the user's other lines too, which a concurrent order of the same
// user holds; InnoDB then breaks the cycle by failing one of the two orders: a retry, and a
// second's delay for a good order.)
func (s *Store) DecrementLines(ctx context.Context, orderID, userID string, lines []Line, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b Line) int { return strings.Compare(a.SKU, b.SKU) })
	db := s.db.WithContext(ctx)
	skus := make([]string, len(sorted))
	for i, l := range sorted {
		skus[i] = l.SKU
	}
	var present []CartItem
	if err := db.Raw(`SELECT sku, quantity FROM cart_items WHERE user_id = ? AND sku IN ? ORDER BY sku FOR UPDATE`,
		userID, skus).Scan(&present).Error; err != nil {
		return fmt.Errorf("read cart lines of %s: %w", userID, err)
	}
	before := make(map[string]int, len(present))
	for _, it := range present {
		before[it.SKU] = it.Quantity
	}
	var q strings.Builder
	args := make([]any, 0, 7*len(sorted))
	q.WriteString(`INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at) VALUES `)
	for i, l := range sorted {
		b, ok := before[l.SKU]
		after := max(b-l.Quantity, 0)
		var err error
		switch {
		case !ok: // not in the cart
		case after > 0:
			err = db.Exec(`UPDATE cart_items SET quantity = quantity - ?, updated_at = ? WHERE user_id = ? AND sku = ?`,
				l.Quantity, now, userID, l.SKU).Error
		default:
			err = db.Exec(`DELETE FROM cart_items WHERE user_id = ? AND sku = ?`, userID, l.SKU).Error
		}
		if err != nil {
			return fmt.Errorf("decrement cart line %s/%s: %w", userID, l.SKU, err)
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, userID, l.SKU, orderID, l.Quantity, b, after, now)
	}
	if err := db.Exec(q.String(), args...).Error; err != nil {
		return fmt.Errorf("record order %s in the cart ledger: %w", orderID, err)
	}
	return nil
}

// CartChange is one row of the cart ledger, cart_changes.
type CartChange struct {
	ID             int64 `gorm:"primaryKey"`
	UserID         string
	SKU            string  `gorm:"column:sku"`
	OrderID        *string // nil: a change by the user
	Ordered        *int
	QuantityBefore int
	QuantityAfter  int
	At             time.Time
}

// CartChanges returns a user's ledger rows, oldest first.
func (s *Store) CartChanges(ctx context.Context, userID string) ([]CartChange, error) {
	var cs []CartChange
	if err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("id").Find(&cs).Error; err != nil {
		return nil, fmt.Errorf("read cart ledger of %s: %w", userID, err)
	}
	return cs, nil
}

// Column limits of rejected_messages; a poison message can carry anything, so its fields are cut
// to fit instead of making the insert fail (which would turn the poison message into a retry loop).
const (
	maxMsgIDLen  = 128
	maxMsgKeyLen = 255
	// MaxSnippet is how much of a rejected body is kept: enough to recognise it.
	MaxSnippet = 1024
)

// RecordRejection stores a message that can never be applied.
func (s *Store) RecordRejection(ctx context.Context, r RejectedMessage) error {
	r.MsgID = mysqldb.Truncate(r.MsgID, maxMsgIDLen)
	r.MsgKey = mysqldb.Truncate(r.MsgKey, maxMsgKeyLen)
	r.BodySnippet = mysqldb.Truncate(r.BodySnippet, MaxSnippet)
	r.Reason = strings.ToValidUTF8(r.Reason, "\uFFFD")
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("record rejected message %s: %w", r.MsgID, err)
	}
	return nil
}

// CountRejections is the number of rows in rejected_messages.
func (s *Store) CountRejections(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&RejectedMessage{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count rejected messages: %w", err)
	}
	return n, nil
}

// Rejections returns the recorded rejections, oldest first.
func (s *Store) Rejections(ctx context.Context) ([]RejectedMessage, error) {
	var rs []RejectedMessage
	if err := s.db.WithContext(ctx).Order("id").Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("read rejected messages: %w", err)
	}
	return rs, nil
}
