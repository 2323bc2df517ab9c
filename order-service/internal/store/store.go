// Package store is order-service's database: the orders, their items, and tx_log, the barrier
// table that makes the broker's check-back safe to race with a local transaction.
package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/retention"
)

// Schema is applied at start by mysqldb.Open.
//
//go:embed schema.sql
var Schema string

// Purged are the tables whose rows older than TIMELINE_RETENTION main purges in the background:
// they describe what happened, and nothing reads them to decide anything.
var Purged = []retention.Table{
	{Name: "order_timeline", Column: "at", Index: "idx_order_timeline_at"},
}

// Outcome is what tx_log says about an order's local transaction.
type Outcome string

const (
	Committed  Outcome = "committed"
	RolledBack Outcome = "rolled_back"
)

// Keys whose duplicates mean something to the caller.
const (
	KeyTxLog       = "PRIMARY"               // on tx_log: the check-back decided first
	KeyIdempotency = "uk_orders_idempotency" // on orders: the Idempotency-Key was used already
)

// ErrNotFound means no such row.
var ErrNotFound = errors.New("not found")

// OrderRow is a row of orders.
type OrderRow struct {
	OrderID        string `gorm:"primaryKey"`
	UserID         string
	TotalCents     int64
	IdempotencyKey *string
	RequestHash    *string
	CreatedAt      time.Time
	Items          []ItemRow `gorm:"-"`
}

func (OrderRow) TableName() string { return "orders" }

// ItemRow is a row of order_items.
type ItemRow struct {
	OrderID        string `gorm:"primaryKey"`
	SKU            string `gorm:"primaryKey;column:sku"`
	Quantity       int
	UnitPriceCents int64
}

func (ItemRow) TableName() string { return "order_items" }

type txLogRow struct {
	OrderID   string `gorm:"primaryKey"`
	Outcome   Outcome
	CreatedAt time.Time
}

func (txLogRow) TableName() string { return "tx_log" }

// Store reads and writes the orders database. Inside InTx it is bound to the transaction.
type Store struct {
	db *gorm.DB
}

// New wraps an open database.
func New(db *gorm.DB) *Store { return &Store{db: db} }

// InTx runs fn in one transaction; see mysqldb.InTx for what its errors mean.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return mysqldb.InTx(ctx, s.db, func(tx *gorm.DB) error { return fn(&Store{db: tx}) })
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// ClaimCommitted inserts the tx_log row of a local transaction. It must run inside the same
// transaction as the order: the row lock it takes makes a concurrent check-back wait for the
// outcome, and a check-back that came first makes this insert fail on the primary key.
func (s *Store) ClaimCommitted(ctx context.Context, orderID string, now time.Time) error {
	err := s.db.WithContext(ctx).Create(&txLogRow{OrderID: orderID, Outcome: Committed, CreatedAt: now}).Error
	if err != nil {
		return fmt.Errorf("insert tx_log %s: %w", orderID, err)
	}
	return nil
}

// InsertOrder writes an order and its items.
func (s *Store) InsertOrder(ctx context.Context, o OrderRow) error {
	db := s.db.WithContext(ctx)
	if err := db.Create(&o).Error; err != nil {
		return fmt.Errorf("insert order %s: %w", o.OrderID, err)
	}
	if err := db.Create(&o.Items).Error; err != nil {
		return fmt.Errorf("insert items of order %s: %w", o.OrderID, err)
	}
	return nil
}

// ResolveCheck answers a broker check-back for orderID from the database alone.
//
// The naive answer ("the order row exists, so commit; otherwise roll back") is wrong: the check
// can arrive while the local transaction is still running (slow disk, lock wait, GC pause), see no
// row, answer rollback, and then the local transaction commits an order whose message is gone for
// good. Instead we try to claim the order ID as rolled back:
//
//   - no local transaction ever wrote the row: our insert wins, the order is rolled back for good,
//     and a local transaction that comes later fails on the duplicate key;
//   - a local transaction holds the row uncommitted: InnoDB makes our insert wait for it, then
//     ignores our insert if it committed, or lets it through if it rolled back;
//   - the local transaction committed: our insert is ignored.
//
// Reading the row back then gives the one true outcome. (dtm calls this a barrier.)
func (s *Store) ResolveCheck(ctx context.Context, orderID string, now time.Time) (Outcome, error) {
	db := s.db.WithContext(ctx)
	// INSERT IGNORE INTO tx_log (order_id, outcome, created_at) VALUES (?, 'rolled_back', ?)
	err := db.Clauses(clause.Insert{Modifier: "IGNORE"}).
		Create(&txLogRow{OrderID: orderID, Outcome: RolledBack, CreatedAt: now}).Error
	if err != nil {
		return "", fmt.Errorf("claim tx_log %s: %w", orderID, err)
	}
	var row txLogRow
	if err := db.Take(&row, "order_id = ?", orderID).Error; err != nil {
		return "", fmt.Errorf("read tx_log %s: %w", orderID, err)
	}
	return row.Outcome, nil
}

// TxOutcome reads tx_log without writing; ErrNotFound if no outcome was recorded yet.
func (s *Store) TxOutcome(ctx context.Context, orderID string) (Outcome, error) {
	outcome, _, err := s.TxRecord(ctx, orderID)
	return outcome, err
}

// TxRecord reads an order's tx_log row: its outcome and the time stored with it (for a committed
// order, when the order was built). ErrNotFound if no outcome was recorded yet.
func (s *Store) TxRecord(ctx context.Context, orderID string) (Outcome, time.Time, error) {
	var row txLogRow
	err := s.db.WithContext(ctx).Take(&row, "order_id = ?", orderID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read tx_log %s: %w", orderID, err)
	}
	return row.Outcome, row.CreatedAt, nil
}

// Order reads one order with its items.
func (s *Store) Order(ctx context.Context, orderID string) (OrderRow, error) {
	var o OrderRow
	err := s.db.WithContext(ctx).Take(&o, "order_id = ?", orderID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return OrderRow{}, ErrNotFound
	}
	if err != nil {
		return OrderRow{}, fmt.Errorf("read order %s: %w", orderID, err)
	}
	return o, s.loadItems(ctx, []*OrderRow{&o})
}

// OrderByIdempotencyKey finds the order a user created with an Idempotency-Key.
func (s *Store) OrderByIdempotencyKey(ctx context.Context, userID, key string) (OrderRow, error) {
	var o OrderRow
	err := s.db.WithContext(ctx).Take(&o, "user_id = ? AND idempotency_key = ?", userID, key).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return OrderRow{}, ErrNotFound
	}
	if err != nil {
		return OrderRow{}, fmt.Errorf("read order of key %s: %w", key, err)
	}
	return o, s.loadItems(ctx, []*OrderRow{&o})
}

// OrdersByUser lists a user's orders, newest first.
func (s *Store) OrdersByUser(ctx context.Context, userID string, limit int) ([]OrderRow, error) {
	return s.listOrders(ctx, s.db.WithContext(ctx).Where("user_id = ?", userID), userID, limit)
}

// OrdersBefore is the page of OrdersByUser after the order (beforeAt, beforeID): the user's orders
// created before beforeAt, or at the same instant with a smaller ID, newest first. Pages never
// overlap or skip an order, however many share an instant; the range is on
// idx_orders_user_created, whose entries end with the primary key.
func (s *Store) OrdersBefore(ctx context.Context, userID string, beforeAt time.Time, beforeID string, limit int) ([]OrderRow, error) {
	q := s.db.WithContext(ctx).Where("user_id = ? AND created_at <= ? AND (created_at < ? OR order_id < ?)",
		userID, beforeAt, beforeAt, beforeID)
	return s.listOrders(ctx, q, userID, limit)
}

func (s *Store) listOrders(ctx context.Context, q *gorm.DB, userID string, limit int) ([]OrderRow, error) {
	var rows []OrderRow
	err := q.Order("created_at DESC").Order("order_id DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list orders of %s: %w", userID, err)
	}
	ptrs := make([]*OrderRow, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	return rows, s.loadItems(ctx, ptrs)
}

func (s *Store) loadItems(ctx context.Context, orders []*OrderRow) error {
	if len(orders) == 0 {
		return nil
	}
	ids := make([]string, len(orders))
	byID := make(map[string]*OrderRow, len(orders))
	for i, o := range orders {
		ids[i], byID[o.OrderID] = o.OrderID, o
	}
	var items []ItemRow
	if err := s.db.WithContext(ctx).Where("order_id IN ?", ids).Order("sku").Find(&items).Error; err != nil {
		return fmt.Errorf("read order items: %w", err)
	}
	for _, it := range items {
		byID[it.OrderID].Items = append(byID[it.OrderID].Items, it)
	}
	return nil
}

// TimelineStep is a row of order_timeline (see package timeline).
type TimelineStep struct {
	ID       int64 `gorm:"primaryKey"`
	OrderID  string
	Step     string
	Detail   string
	Instance string
	At       time.Time
}

func (TimelineStep) TableName() string { return "order_timeline" }

// maxDetailLen is the width of order_timeline.detail.
const maxDetailLen = 255

// InsertTimeline writes timeline steps, cutting a detail too long for its column.
func (s *Store) InsertTimeline(ctx context.Context, steps []TimelineStep) error {
	if len(steps) == 0 {
		return nil
	}
	for i := range steps {
		steps[i].Detail = mysqldb.Truncate(steps[i].Detail, maxDetailLen)
	}
	if err := s.db.WithContext(ctx).Create(&steps).Error; err != nil {
		return fmt.Errorf("insert %d timeline steps: %w", len(steps), err)
	}
	return nil
}

// Timeline returns an order's steps in time order.
func (s *Store) Timeline(ctx context.Context, orderID string) ([]TimelineStep, error) {
	var steps []TimelineStep
	err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Order("at").Order("id").Find(&steps).Error
	if err != nil {
		return nil, fmt.Errorf("read timeline of %s: %w", orderID, err)
	}
	return steps, nil
}
