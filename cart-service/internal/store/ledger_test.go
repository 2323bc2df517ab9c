package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"rmqtx/cart-service/internal/store"
)

// ledgerSums adds up quantity_after - quantity_before per SKU of a user's ledger: what the cart
// must hold if the ledger is true.
func ledgerSums(t *testing.T, s *store.Store, userID string) map[string]int {
	t.Helper()
	cs, err := s.CartChanges(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]int{}
	for _, c := range cs {
		sums[c.SKU] += c.QuantityAfter - c.QuantityBefore
		if sums[c.SKU] == 0 {
			delete(sums, c.SKU)
		}
	}
	return sums
}

func ptr[T any](v T) *T { return &v }

// Every change of a cart line, by the user or by an order, is in the ledger with the quantities
// before and after; an order records what it asked and what it found.
func TestLedgerRecordsEveryChange(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetLine(ctx, "u1", "A", 3, now))
	must(s.SetLine(ctx, "u1", "A", 3, now)) // no change, no row
	must(s.SetLine(ctx, "u1", "B", 1, now))
	must(s.SetLine(ctx, "u1", "A", 5, now))
	must(s.DeleteLine(ctx, "u1", "C")) // not there: no row
	must(s.SetLine(ctx, "u1", "C", 0, now))
	// The order asks 2 A (there are 5), 4 B (there is 1) and 1 Z (not in the cart).
	must(s.DecrementLines(ctx, "o1", "u1", []store.Line{{"Z", 1}, {"B", 4}, {"A", 2}}, now))
	must(s.SetLine(ctx, "u1", "B", 2, now))
	must(s.DeleteLine(ctx, "u1", "A"))
	must(s.SetLine(ctx, "u2", "A", 1, now)) // another user's ledger

	cs, err := s.CartChanges(ctx, "u1")
	must(err)
	user := func(sku string, before, after int) store.CartChange {
		return store.CartChange{UserID: "u1", SKU: sku, QuantityBefore: before, QuantityAfter: after}
	}
	order := func(sku string, ordered, before, after int) store.CartChange {
		return store.CartChange{UserID: "u1", SKU: sku, OrderID: ptr("o1"), Ordered: ptr(ordered), QuantityBefore: before, QuantityAfter: after}
	}
	want := []store.CartChange{
		user("A", 0, 3), user("B", 0, 1), user("A", 3, 5),
		order("A", 2, 5, 3), order("B", 4, 1, 0), order("Z", 1, 0, 0),
		user("B", 0, 2), user("A", 3, 0),
	}
	if d := cmp.Diff(want, cs, cmpopts.IgnoreFields(store.CartChange{}, "ID", "At")); d != "" {
		t.Fatalf("ledger (-want +got):\n%s", d)
	}
	if d := cmp.Diff(lines(t, s, "u1"), ledgerSums(t, s, "u1")); d != "" {
		t.Fatalf("cart (-) and ledger sums (+) disagree:\n%s", d)
	}
}

// The order's ledger rows belong to its transaction: rolled back, they are gone with the
// decrement.
func TestLedgerRollsBackWithTheOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	setLines(t, s, "u1", map[string]int{"A": 3})
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *store.Store) error {
		if err := tx.DecrementLines(ctx, "o1", "u1", []store.Line{{"A", 1}}, time.Now()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx err = %v, want boom", err)
	}
	if d := cmp.Diff(map[string]int{"A": 3}, ledgerSums(t, s, "u1")); d != "" {
		t.Fatalf("ledger after rollback (-want +got):\n%s", d)
	}
}

// Users changing lines while orders take from them, all at once: the ledger still explains every
// line, and no change fails (two changes of a missing line do not deadlock each other).
func TestLedgerAgreesUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	const workers, rounds = 6, 15
	skus := []string{"A", "B", "C"}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				sku := skus[(w+i)%len(skus)]
				var err error
				switch {
				case w%2 == 0 && i%5 == 4:
					err = s.DeleteLine(ctx, "u1", sku)
				case w%2 == 0:
					err = s.SetLine(ctx, "u1", sku, 1+(w*i)%7, time.Now())
				default:
					id := fmt.Sprintf("o-%d-%d", w, i)
					err = s.InTx(ctx, func(tx *store.Store) error {
						if err := tx.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: id, UserID: "u1", AppliedAt: time.Now()}); err != nil {
							return err
						}
						return tx.DecrementLines(ctx, id, "u1", []store.Line{{sku, 2}, {skus[(w+i+1)%len(skus)], 1}}, time.Now())
					})
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a change failed: %v", err)
	}
	if d := cmp.Diff(lines(t, s, "u1"), ledgerSums(t, s, "u1")); d != "" {
		t.Fatalf("cart (-) and ledger sums (+) disagree:\n%s", d)
	}
}
