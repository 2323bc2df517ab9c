package order

import "errors"

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
