package store_test

import (
	"context"
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

// The barrier's two writes, one after the other: once the check-back has claimed an order ID,
// ClaimCommitted fails on tx_log's primary key. (The local transaction itself, and its races with
// the check-back, are tested in package order, on the code that runs.)
func TestClaimCommittedAfterResolveCheckFails(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	outcome, err := s.ResolveCheck(ctx, "o1", time.Now())
	if err != nil || outcome != store.RolledBack {
		t.Fatalf("ResolveCheck = %q, %v; want rolled_back", outcome, err)
	}
	if err := s.ClaimCommitted(ctx, "o1", time.Now()); !mysqldb.IsDuplicateKey(err, store.KeyTxLog) {
		t.Fatalf("ClaimCommitted after the check-back: err = %v, want duplicate key on tx_log", err)
	}
	if outcome, err := s.TxOutcome(ctx, "o1"); err != nil || outcome != store.RolledBack {
		t.Fatalf("tx_log = %q, %v; want rolled_back", outcome, err)
	}
}

func TestOrdersByUserNewestFirst(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i, id := range []string{"a", "b", "c"} {
		o := orderRow(id)
		o.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if err := s.InsertOrder(ctx, o); err != nil {
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
