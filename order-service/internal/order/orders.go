package order

import (
	"context"
	"errors"

	"rmqtx/order-service/internal/store"
)

// Get returns one order. An order that does not exist is ErrRolledBack if its transaction is
// known to have rolled back (so a "pending" order can be told apart from one never seen).
func (s *Service) Get(ctx context.Context, orderID string) (Order, error) {
	row, err := s.store.Order(ctx, orderID)
	if err == nil {
		return fromRow(row, StatusCreated), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return Order{}, err
	}
	outcome, err := s.store.TxOutcome(ctx, orderID)
	switch {
	case err == nil && outcome == store.RolledBack:
		return Order{}, ErrRolledBack
	case err == nil || errors.Is(err, store.ErrNotFound):
		return Order{}, ErrNotFound
	default:
		return Order{}, err
	}
}

// List returns a user's orders, newest first.
func (s *Service) List(ctx context.Context, userID string, limit int) ([]Order, error) {
	f := map[string]string{}
	checkID(f, "user_id", userID)
	if len(f) > 0 {
		return nil, &ValidationError{Fields: f}
	}
	rows, err := s.store.OrdersByUser(ctx, userID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Order, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r, StatusCreated)
	}
	return out, nil
}
