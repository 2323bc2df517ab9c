package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Delivery is one row of order_deliveries: what one delivery of an order's event did. It is for
// people watching (the cart side of an order's timeline); no decision is ever taken from it.
type Delivery struct {
	ID             int64     `json:"-" gorm:"primaryKey"`
	OrderID        string    `json:"-"`
	Step           string    `json:"step"`
	Detail         string    `json:"detail"`
	ReconsumeTimes int       `json:"reconsume_times"`
	MsgID          string    `json:"msg_id"`
	At             time.Time `json:"at"`
}

// TableName is order_deliveries (gorm would guess "deliveries").
func (Delivery) TableName() string { return "order_deliveries" }

// Column limits of order_deliveries.
const (
	maxOrderIDLen = 64
	maxDetailLen  = 255
)

// RecordDelivery writes one step. Inside InTx it commits or rolls back with the transaction.
// Over-long text is cut rather than refused: a step must never fail the work it describes.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) error {
	d.OrderID = truncate(d.OrderID, maxOrderIDLen)
	d.Detail = truncate(d.Detail, maxDetailLen)
	d.MsgID = truncate(d.MsgID, maxMsgIDLen)
	d.At = d.At.UTC().Truncate(time.Microsecond) // DATETIME(6)
	if err := s.db.WithContext(ctx).Create(&d).Error; err != nil {
		return fmt.Errorf("record delivery %s of order %s: %w", d.Step, d.OrderID, err)
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
