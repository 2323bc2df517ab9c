package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"rmqtx/pkg/mysqldb"
)

// OutboxRow is a row of outbox (PLACEMENT=outbox): an event owed to the broker.
type OutboxRow struct {
	ID         int64 `gorm:"primaryKey;autoIncrement"`
	OrderID    string
	Topic      string
	Tag        string
	Properties string // JSON object of the message's properties
	Body       []byte
	Fault      string // a relay-side fault point, or ""
	CreatedAt  time.Time
}

func (OutboxRow) TableName() string { return "outbox" }

// InsertOutbox writes an event into the outbox. It must run inside the order's transaction: that
// is the whole point of an outbox.
func (s *Store) InsertOutbox(ctx context.Context, r OutboxRow) error {
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert outbox row of order %s: %w", r.OrderID, err)
	}
	return nil
}

// InRelayTx is InTx at READ COMMITTED, for the relay's claim-publish-delete transaction. At the
// default REPEATABLE READ, a locking read also locks the gaps it scanned: the claim of the newest
// rows would block every order's insert into the outbox until the batch is published, and two
// relays deleting next to each other's gaps can deadlock. READ COMMITTED
// locks the claimed rows alone, which is all the claim needs.
func (s *Store) InRelayTx(ctx context.Context, fn func(tx *Store) error) error {
	tx := s.db.WithContext(ctx).Begin(&sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if tx.Error != nil {
		return fmt.Errorf("begin: %w", tx.Error)
	}
	if err := fn(&Store{db: tx}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("%w: %w", mysqldb.ErrCommitUnknown, err)
	}
	return nil
}

// ClaimOutbox locks up to limit of the oldest outbox rows that no other transaction has locked,
// and returns them. It must run inside InRelayTx: the locks are the claim, held until the transaction
// ends. SKIP LOCKED lets several relays work side by side, each on rows the others have not
// claimed, instead of queueing behind one another (MySQL 8.0+, MariaDB 10.6+).
func (s *Store) ClaimOutbox(ctx context.Context, limit int) ([]OutboxRow, error) {
	var rows []OutboxRow
	err := s.db.WithContext(ctx).Raw(
		"SELECT id, order_id, topic, tag, properties, body, fault, created_at FROM outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
		limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	return rows, nil
}

// DeleteOutbox deletes the outbox rows with the given ids: their events are with the broker. One
// statement per row, each a primary-key lookup: a single DELETE ... WHERE id IN (...) may be run
// as a scan (the optimiser's choice on a small table), which waits on rows another relay has
// claimed, and two relays doing that deadlock (the package tests saw it).
func (s *Store) DeleteOutbox(ctx context.Context, ids []int64) error {
	db := s.db.WithContext(ctx)
	for _, id := range ids {
		if err := db.Exec("DELETE FROM outbox WHERE id = ?", id).Error; err != nil {
			return fmt.Errorf("delete outbox row %d: %w", id, err)
		}
	}
	return nil
}

// ClearOutboxFault clears the relay-side fault point of one row, so that it fires once.
func (s *Store) ClearOutboxFault(ctx context.Context, id int64) error {
	if err := s.db.WithContext(ctx).Exec("UPDATE outbox SET fault = '' WHERE id = ?", id).Error; err != nil {
		return fmt.Errorf("clear fault of outbox row %d: %w", id, err)
	}
	return nil
}

// OutboxSize counts the outbox rows: events not yet handed to the broker.
func (s *Store) OutboxSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&OutboxRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count outbox rows: %w", err)
	}
	return n, nil
}
