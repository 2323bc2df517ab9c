package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/cart-service/internal/store"
)

// Orders of one user applied at the same time, each in its own transaction as the consumer does
// it, with overlapping SKUs: none may fail (a deadlock would be a retry and a delay for a
// perfectly good order), and the cart ends up with exactly what they all took off it.
func TestConcurrentOrdersOfOneUserDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const workers, perWorker = 8, 40
	setLines(t, s, "u1", map[string]int{"A": 1000, "B": 1000, "C": 1000, "D": 1000})
	// Each worker orders a different mix: one SKU, two neighbours, or three.
	orders := [][]store.Line{
		{{SKU: "A", Quantity: 1}},
		{{SKU: "B", Quantity: 1}, {SKU: "A", Quantity: 1}},
		{{SKU: "B", Quantity: 1}, {SKU: "C", Quantity: 1}},
		{{SKU: "D", Quantity: 1}, {SKU: "C", Quantity: 1}, {SKU: "A", Quantity: 1}},
	}
	want := map[string]int{"A": 1000, "B": 1000, "C": 1000, "D": 1000}
	for w := range workers {
		for _, l := range orders[w%len(orders)] {
			want[l.SKU] -= l.Quantity * perWorker
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				err := s.InTx(context.Background(), func(tx *store.Store) error {
					id := fmt.Sprintf("o-%d-%d", w, i)
					if err := tx.InsertProcessedOrder(context.Background(), store.ProcessedOrder{
						OrderID: id, UserID: "u1", AppliedAt: time.Now(),
					}); err != nil {
						return err
					}
					return tx.DecrementLines(context.Background(), id, "u1", orders[w%len(orders)], time.Now())
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an order failed: %v", err)
	}
	if diff := cmp.Diff(want, lines(t, s, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
}
