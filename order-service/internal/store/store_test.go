package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// TestOrdersBeforePagesWithoutGapsOrRepeats walks a user's orders page by page, with several
// orders sharing an instant across page boundaries: every order comes exactly once, newest first
// (by time, then by ID), and another user's orders never show.
func TestOrdersBeforePagesWithoutGapsOrRepeats(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t), context.Background()
	base := time.Now().UTC().Truncate(time.Microsecond)
	// Newest first: e and d share the newest instant, c, b and a the one before.
	want := []string{"e", "d", "c", "b", "a"}
	at := map[string]time.Time{"e": base, "d": base, "c": base.Add(-time.Second), "b": base.Add(-time.Second), "a": base.Add(-time.Second)}
	for id, t0 := range at {
		o := orderRow(id)
		o.CreatedAt = t0
		if err := s.InsertOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	other := orderRow("z")
	other.UserID = "u2"
	other.CreatedAt = base.Add(-time.Second)
	if err := s.InsertOrder(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 3, 5} {
		rows, err := s.OrdersByUser(ctx, "u1", limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(rows) > 0 {
			for _, r := range rows {
				got = append(got, r.OrderID)
			}
			last := rows[len(rows)-1]
			if rows, err = s.OrdersBefore(ctx, "u1", last.CreatedAt, last.OrderID, limit); err != nil {
				t.Fatal(err)
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("pages of %d (-want +got):\n%s", limit, d)
		}
	}
}
