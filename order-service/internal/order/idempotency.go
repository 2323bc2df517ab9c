package order

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// An Idempotency-Key lets a client repeat POST /orders safely: the first request with a key
// creates the order, and a repeat with the same body answers with that order instead of placing a
// second one. The key is stored on the order under a unique index (store.KeyIdempotency), which
// also settles two concurrent first uses: one commits, the other rolls back on the duplicate key
// and is answered as a replay (place.go, step 4).

// hash identifies a request's content for Idempotency-Key replays: the same key with a different
// body is a client bug, answered 409. Item order does not matter.
func (r Request) hash() string {
	items := slices.Clone(r.Items)
	slices.SortFunc(items, func(a, b RequestItem) int { return strings.Compare(a.SKU, b.SKU) })
	b, _ := json.Marshal(Request{UserID: r.UserID, Items: items}) // plain structs: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// replay answers a request whose Idempotency-Key created an order already: the same order if the
// request is the same, ErrIdempotencyConflict if not, store.ErrNotFound if the key is unused.
func (s *Service) replay(ctx context.Context, req Request, key string) (Placed, error) {
	prev, err := s.store.OrderByIdempotencyKey(ctx, req.UserID, key)
	if err != nil {
		return Placed{}, err
	}
	if prev.RequestHash == nil || *prev.RequestHash != req.hash() {
		s.metrics.placedAs(OutcomeConflict)
		return Placed{}, ErrIdempotencyConflict
	}
	s.metrics.placedAs(OutcomeReplayed)
	return Placed{Order: fromRow(prev, StatusCreated), Replayed: true}, nil
}
