package order

import (
	"errors"
	"fmt"
)

// The package's errors besides *ValidationError (from Place, Get, List and Timeline). The HTTP
// layer maps each to a status, in one place (httpapi.toHTTP).
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

// AttemptError is an error of Place about an order it had already given an ID: the half message
// may have reached the broker, and the timeline may have steps. The HTTP answer carries the ID,
// so that a client (the web page) can show what happened to that attempt.
type AttemptError struct {
	OrderID string
	Err     error // wraps ErrNotPlaced or ErrBrokerUnavailable
}

func (e *AttemptError) Error() string { return fmt.Sprintf("order %s: %v", e.OrderID, e.Err) }
func (e *AttemptError) Unwrap() error { return e.Err }

// PageError is a page of List that cannot be served: a limit out of range, or a before that names
// no order of the user (400). Fields says which and why.
type PageError struct {
	Fields map[string]string
}

func (e *PageError) Error() string { return fmt.Sprintf("bad page: %v", e.Fields) }
