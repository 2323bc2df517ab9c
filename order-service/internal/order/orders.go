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

// MaxPage is the most orders one page of List holds.
const MaxPage = 100

// LimitReason says what a page's limit may be.
const LimitReason = "must be a whole number from 1 to 100"

// Page asks List for one page of a user's orders: at most Limit (1 to MaxPage), older than the
// order *Before, or the newest when Before is nil. (A pointer, so that a before that was given
// empty is refused like any other bad value, after the user ID has been checked.)
type Page struct {
	Limit  int
	Before *string
}

// OrderPage is one page of a user's orders, newest first. Next is the Before of the next page:
// the last order's ID, or "" when there are no older orders.
type OrderPage struct {
	Orders []Order
	Next   string
}

// List returns one page of a user's orders, newest first. An invalid user ID is a
// *ValidationError; a Limit out of range, or a Before that names no order of this user, a
// *PageError.
func (s *Service) List(ctx context.Context, userID string, page Page) (OrderPage, error) {
	f := map[string]string{}
	checkID(f, "user_id", userID)
	if len(f) > 0 {
		return OrderPage{}, &ValidationError{Fields: f}
	}
	if page.Limit < 1 || page.Limit > MaxPage {
		return OrderPage{}, &PageError{Fields: map[string]string{"limit": LimitReason}}
	}
	// One more than asked for says whether there is a next page.
	var (
		rows []store.OrderRow
		err  error
	)
	switch {
	case page.Before == nil:
		rows, err = s.store.OrdersByUser(ctx, userID, page.Limit+1)
	case *page.Before == "":
		return OrderPage{}, &PageError{Fields: map[string]string{"before": "must not be empty"}}
	default:
		var last store.OrderRow
		last, err = s.store.Order(ctx, *page.Before)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && last.UserID != userID):
			return OrderPage{}, &PageError{Fields: map[string]string{"before": "must be the ID of one of this user's orders (the next of a previous page)"}}
		case err != nil:
			return OrderPage{}, err
		}
		rows, err = s.store.OrdersBefore(ctx, userID, last.CreatedAt, last.OrderID, page.Limit+1)
	}
	if err != nil {
		return OrderPage{}, err
	}
	var out OrderPage
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		out.Next = rows[len(rows)-1].OrderID
	}
	out.Orders = make([]Order, len(rows))
	for i, r := range rows {
		out.Orders[i] = fromRow(r, StatusCreated)
	}
	return out, nil
}
