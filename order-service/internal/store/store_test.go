package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/testenv"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	return store.New(testenv.OpenDB(t, testenv.NewDatabase(t, "orders"), store.Schema))
}

func orderRow(id string) store.OrderRow {
	return store.OrderRow{
		OrderID: id, UserID: "u1", TotalCents: 300, CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
		Items: []store.ItemRow{{OrderID: id, SKU: "A", Quantity: 1, UnitPriceCents: 100}, {OrderID: id, SKU: "B", Quantity: 2, UnitPriceCents: 100}},
	}
}

// localTx is ExecuteLocalTransaction's unit of work, with a hook to hold it open.
func localTx(ctx context.Context, s *store.Store, o store.OrderRow, inside func() error) error {
	return s.InTx(ctx, func(tx *store.Store) error {
		if err := tx.ClaimCommitted(ctx, o.OrderID, o.CreatedAt); err != nil {
			return err
		}
		if err := tx.InsertOrder(ctx, o); err != nil {
			return err
		}
		if inside != nil {
			return inside()
		}
		return nil
	})
}

// exists reports whether the order row and its tx_log outcome exist.
func state(t *testing.T, s *store.Store, id string) (orderExists bool, outcome store.Outcome) {
	t.Helper()
	_, err := s.Order(context.Background(), id)
	switch {
	case err == nil:
		orderExists = true
	case !errors.Is(err, store.ErrNotFound):
		t.Fatal(err)
	}
	outcome, err = s.TxOutcome(context.Background(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return orderExists, outcome
}

func TestLocalTxCommitWritesOrderAndBarrier(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	if err := localTx(ctx, s, orderRow("o1"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Order(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 2 || got.TotalCents != 300 {
		t.Fatalf("order = %+v", got)
	}
	if exists, outcome := state(t, s, "o1"); !exists || outcome != store.Committed {
		t.Fatalf("exists=%v outcome=%q, want order and committed", exists, outcome)
	}
	// The check-back of a committed order answers commit and changes nothing.
	outcome, err := s.ResolveCheck(ctx, "o1", time.Now())
	if err != nil || outcome != store.Committed {
		t.Fatalf("ResolveCheck = %q, %v; want committed", outcome, err)
	}
}

func TestLocalTxRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	boom := errors.New("boom")
	err := localTx(ctx, s, orderRow("o1"), func() error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if exists, outcome := state(t, s, "o1"); exists || outcome != "" {
		t.Fatalf("after rollback: order exists=%v, tx_log=%q; want neither", exists, outcome)
	}
	// The check-back then claims the ID as rolled back for good.
	outcome, err := s.ResolveCheck(ctx, "o1", time.Now())
	if err != nil || outcome != store.RolledBack {
		t.Fatalf("ResolveCheck = %q, %v; want rolled_back", outcome, err)
	}
}

func TestCheckBackFirstMakesLateLocalTxFail(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	outcome, err := s.ResolveCheck(ctx, "o1", time.Now())
	if err != nil || outcome != store.RolledBack {
		t.Fatalf("ResolveCheck = %q, %v; want rolled_back", outcome, err)
	}
	err = localTx(ctx, s, orderRow("o1"), nil)
	if !mysqldb.IsDuplicateKey(err, store.KeyTxLog) {
		t.Fatalf("late local tx: err = %v, want duplicate key on tx_log", err)
	}
	if exists, outcome := state(t, s, "o1"); exists || outcome != store.RolledBack {
		t.Fatalf("order exists=%v, tx_log=%q; want no order, rolled_back", exists, outcome)
	}
}

// A check-back that arrives while the local transaction holds its tx_log row must wait for it and
// then agree with it, whichever way it ends.
func TestCheckBackWaitsForInFlightLocalTx(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("local tx commits=%v", commit), func(t *testing.T) {
			t.Parallel()
			s, ctx := newStore(t), context.Background()
			holding, release := make(chan struct{}), make(chan struct{})
			txErr := make(chan error, 1)
			go func() {
				err := localTx(ctx, s, orderRow("o1"), func() error {
					close(holding)
					<-release
					if !commit {
						return errors.New("rolled back on purpose")
					}
					return nil
				})
				txErr <- err
			}()
			<-holding

			type result struct {
				outcome store.Outcome
				err     error
				at      time.Time
			}
			checked := make(chan result, 1)
			go func() {
				o, err := s.ResolveCheck(ctx, "o1", time.Now())
				checked <- result{o, err, time.Now()}
			}()
			time.Sleep(300 * time.Millisecond) // let the check reach the lock
			released := time.Now()
			close(release)
			err := <-txErr
			r := <-checked
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.at.Before(released) {
				t.Fatalf("check-back answered %q while the local transaction still held its row", r.outcome)
			}
			want := store.RolledBack
			if commit {
				want = store.Committed
				if err != nil {
					t.Fatalf("local tx: %v", err)
				}
			}
			if r.outcome != want {
				t.Fatalf("check-back = %q, want %q", r.outcome, want)
			}
			if exists, outcome := state(t, s, "o1"); exists != commit || outcome != want {
				t.Fatalf("order exists=%v tx_log=%q; want exists=%v %q", exists, outcome, commit, want)
			}
		})
	}
}

// Many local transactions racing their check-backs at random moments: every pair must agree with
// the final state (I4: committed <=> the order exists).
func TestCheckBackRaceAlwaysAgrees(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	const n = 60
	type pair struct {
		localErr error
		check    store.Outcome
		checkErr error
	}
	results := make([]pair, n)
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("race-%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			results[i].localErr = localTx(ctx, s, orderRow(id), func() error {
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
				return nil
			})
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
			results[i].check, results[i].checkErr = s.ResolveCheck(ctx, id, time.Now())
		}()
	}
	wg.Wait()
	var committed, rolledBack int
	for i, r := range results {
		id := fmt.Sprintf("race-%d", i)
		if r.checkErr != nil {
			t.Fatalf("%s: check-back: %v", id, r.checkErr)
		}
		exists, outcome := state(t, s, id)
		if outcome != r.check {
			t.Errorf("%s: check-back answered %q, tx_log says %q", id, r.check, outcome)
		}
		if exists != (outcome == store.Committed) {
			t.Errorf("%s: order exists=%v but tx_log=%q", id, exists, outcome)
		}
		if (r.localErr == nil) != exists {
			t.Errorf("%s: local tx err=%v but order exists=%v", id, r.localErr, exists)
		}
		if r.localErr != nil && !mysqldb.IsDuplicateKey(r.localErr, store.KeyTxLog) {
			t.Errorf("%s: local tx failed for another reason than losing the race: %v", id, r.localErr)
		}
		if exists {
			committed++
		} else {
			rolledBack++
		}
	}
	t.Logf("%d pairs: %d committed first, %d claimed by the check-back first", n, committed, rolledBack)
}

func TestOrdersByUserNewestFirst(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i, id := range []string{"a", "b", "c"} {
		o := orderRow(id)
		o.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if err := localTx(ctx, s, o, nil); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.OrdersByUser(ctx, "u1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].OrderID != "c" || rows[1].OrderID != "b" || len(rows[0].Items) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
}
