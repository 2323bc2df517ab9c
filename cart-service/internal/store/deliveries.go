package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"rmqtx/pkg/mysqldb"
)

// Delivery is one row of order_deliveries: what one delivery of an order's event did. It is for
// people watching (the cart side of an order's timeline); no decision is ever taken from it.
type Delivery struct {
	ID             int64 `gorm:"primaryKey"`
	OrderID        string
	Step           string
	Detail         string
	ReconsumeTimes int // how often the broker had delivered the message before
	MsgID          string
	At             time.Time
}

// TableName is order_deliveries (gorm would guess "deliveries").
func (Delivery) TableName() string { return "order_deliveries" }

// Column limits of order_deliveries.
const (
	maxOrderIDLen = 64
	maxDetailLen  = 255
)

// RecordDeliveries writes steps. Over-long text is cut rather than refused: a step must never fail
// for its description.
func (s *Store) RecordDeliveries(ctx context.Context, ds ...Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	rows := make([]Delivery, len(ds))
	for i, d := range ds {
		d.OrderID = mysqldb.Truncate(d.OrderID, maxOrderIDLen)
		d.Detail = mysqldb.Truncate(d.Detail, maxDetailLen)
		d.MsgID = mysqldb.Truncate(d.MsgID, maxMsgIDLen)
		d.At = d.At.UTC().Truncate(time.Microsecond) // DATETIME(6)
		rows[i] = d
	}
	if err := s.db.WithContext(ctx).Create(&rows).Error; err != nil {
		return fmt.Errorf("record %d delivery steps: %w", len(rows), err)
	}
	return nil
}

// Deliveries returns an order's steps in the order they were written; none is an empty slice.
func (s *Store) Deliveries(ctx context.Context, orderID string) ([]Delivery, error) {
	ds := []Delivery{}
	if err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Order("id").Find(&ds).Error; err != nil {
		return nil, fmt.Errorf("read deliveries of order %s: %w", orderID, err)
	}
	return ds, nil
}

// AppliedAt says when an order was applied to its cart (from processed_orders, the truth), or
// nil if it has not been.
func (s *Store) AppliedAt(ctx context.Context, orderID string) (*time.Time, error) {
	var p ProcessedOrder
	err := s.db.WithContext(ctx).Select("applied_at").Where("order_id = ?", orderID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read processed order %s: %w", orderID, err)
	}
	return &p.AppliedAt, nil
}
