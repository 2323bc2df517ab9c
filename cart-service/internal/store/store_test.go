package store_test

// These tests run against the real MariaDB started by scripts/infra-up.sh, each in a database of
// its own.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/testenv"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "cartstore"), store.Schema)
	// Applying the schema again must change nothing: every start of the service does it.
	if err := mysqldb.ApplySchema(ctx, db, store.Schema); err != nil {
		t.Fatalf("schema is not idempotent: %v", err)
	}
	return store.New(db)
}

// lines reads a user's cart as SKU → quantity.
func lines(t *testing.T, s *store.Store, userID string) map[string]int {
	t.Helper()
	items, err := s.Cart(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, it := range items {
		got[it.SKU] = it.Quantity
	}
	return got
}

func setLines(t *testing.T, s *store.Store, userID string, want map[string]int) {
	t.Helper()
	for sku, q := range want {
		if err := s.SetLine(context.Background(), userID, sku, q, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetLineAndDeleteLine(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now()

	steps := []struct {
		name string
		do   func() error
		want map[string]int
	}{
		{"add a line", func() error { return s.SetLine(ctx, "u1", "A-1", 3, now) }, map[string]int{"A-1": 3}},
		{"add another", func() error { return s.SetLine(ctx, "u1", "B-2", 1, now) }, map[string]int{"A-1": 3, "B-2": 1}},
		{"overwrite, not add", func() error { return s.SetLine(ctx, "u1", "A-1", 5, now) }, map[string]int{"A-1": 5, "B-2": 1}},
		{"SKUs are case-sensitive", func() error { return s.SetLine(ctx, "u1", "a-1", 2, now) }, map[string]int{"A-1": 5, "a-1": 2, "B-2": 1}},
		{"quantity 0 removes", func() error { return s.SetLine(ctx, "u1", "a-1", 0, now) }, map[string]int{"A-1": 5, "B-2": 1}},
		{"delete", func() error { return s.DeleteLine(ctx, "u1", "B-2") }, map[string]int{"A-1": 5}},
		{"delete a missing line", func() error { return s.DeleteLine(ctx, "u1", "B-2") }, map[string]int{"A-1": 5}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, lines(t, s, "u1")); diff != "" {
			t.Fatalf("%s: cart (-want +got):\n%s", st.name, diff)
		}
	}
	if got := lines(t, s, "u2"); len(got) != 0 {
		t.Fatalf("another user's cart is %v, want empty", got)
	}
}

func TestCartIsOrderedAndEmptyIsNotNil(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	items, err := s.Cart(ctx, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if items == nil || len(items) != 0 {
		t.Fatalf("empty cart = %#v, want a non-nil empty slice", items)
	}
	setLines(t, s, "u1", map[string]int{"C": 1, "A": 2, "B": 3})
	items, err = s.Cart(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.CartItem{{UserID: "u1", SKU: "A", Quantity: 2}, {UserID: "u1", SKU: "B", Quantity: 3}, {UserID: "u1", SKU: "C", Quantity: 1}}
	if diff := cmp.Diff(want, items, cmpopts.IgnoreFields(store.CartItem{}, "UpdatedAt")); diff != "" {
		t.Fatalf("cart (-want +got):\n%s", diff)
	}
}

func TestDecrementLines(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	tests := []struct {
		name    string
		cart    map[string]int
		ordered []store.Line
		want    map[string]int
	}{
		{"partial quantity", map[string]int{"A": 5}, []store.Line{{"A", 2}}, map[string]int{"A": 3}},
		{"exactly to zero removes the line", map[string]int{"A": 2, "B": 1}, []store.Line{{"A", 2}}, map[string]int{"B": 1}},
		{"below zero floors at removal", map[string]int{"A": 1}, []store.Line{{"A", 4}}, map[string]int{}},
		{"SKU not in the cart is fine", map[string]int{"A": 1}, []store.Line{{"Z", 4}, {"A", 1}}, map[string]int{}},
		{"empty cart is fine", map[string]int{}, []store.Line{{"A", 1}}, map[string]int{}},
		{"several lines, unsorted", map[string]int{"A": 3, "B": 3, "C": 3}, []store.Line{{"C", 1}, {"A", 3}}, map[string]int{"B": 3, "C": 2}},
	}
	for i, tc := range tests {
		// One user per case: the cases share a database.
		user := "u" + string(rune('a'+i))
		setLines(t, s, user, tc.cart)
		if err := s.DecrementLines(context.Background(), "o-"+user, user, tc.ordered, time.Now()); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, lines(t, s, user)); diff != "" {
			t.Errorf("%s: cart (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestDecrementLinesLeavesOtherUsersAlone(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	setLines(t, s, "u1", map[string]int{"A": 1})
	setLines(t, s, "u2", map[string]int{"A": 1})
	if err := s.DecrementLines(context.Background(), "o1", "u1", []store.Line{{"A", 1}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"A": 1}, lines(t, s, "u2")); diff != "" {
		t.Fatalf("u2's cart (-want +got):\n%s", diff)
	}
}

func TestInsertProcessedOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	applied := created.Add(1500 * time.Millisecond)
	p := store.ProcessedOrder{OrderID: "o1", UserID: "u1", OrderCreatedAt: &created, AppliedAt: applied}
	if err := s.InsertProcessedOrder(ctx, p); err != nil {
		t.Fatal(err)
	}
	err := s.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o1", UserID: "u1", OrderCreatedAt: &created, AppliedAt: time.Now()})
	if !errors.Is(err, store.ErrAlreadyProcessed) {
		t.Fatalf("second insert: err = %v, want ErrAlreadyProcessed", err)
	}
	// Order IDs are case-sensitive: 'O1' is another order.
	if err := s.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "O1", UserID: "u1", OrderCreatedAt: &created, AppliedAt: applied}); err != nil {
		t.Fatalf("insert O1: %v", err)
	}

	// An event without a creation time is still an order: it must be recordable.
	if err := s.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o2", UserID: "u1", AppliedAt: applied}); err != nil {
		t.Fatalf("insert without order_created_at: %v", err)
	}

	got, err := s.ProcessedOrder(ctx, "u1", "o1")
	if err != nil {
		t.Fatal(err)
	}
	// Microseconds survive the round trip (DATETIME(6)), which the order-to-cart time relies on.
	if diff := cmp.Diff(p, got); diff != "" {
		t.Fatalf("processed order (-want +got):\n%s", diff)
	}
	for _, q := range []struct{ user, order string }{{"u2", "o1"}, {"u1", "nope"}} {
		if _, err := s.ProcessedOrder(ctx, q.user, q.order); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ProcessedOrder(%s, %s): err = %v, want ErrNotFound", q.user, q.order, err)
		}
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	setLines(t, s, "u1", map[string]int{"A": 3})
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *store.Store) error {
		if err := tx.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o1", UserID: "u1", AppliedAt: time.Now()}); err != nil {
			return err
		}
		if err := tx.DecrementLines(ctx, "o1", "u1", []store.Line{{"A", 1}}, time.Now()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx err = %v, want boom", err)
	}
	if diff := cmp.Diff(map[string]int{"A": 3}, lines(t, s, "u1")); diff != "" {
		t.Fatalf("cart after rollback (-want +got):\n%s", diff)
	}
	if _, err := s.ProcessedOrder(ctx, "u1", "o1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("processed order after rollback: err = %v, want ErrNotFound", err)
	}
}

// Two transactions insert the same order ID at once. InnoDB makes the second insert wait for the
// first transaction's row lock; exactly one of them may commit its decrement.
func TestConcurrentInsertOfOneOrderAppliesOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	setLines(t, s, "u1", map[string]int{"A": 10})

	const n = 8
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = s.InTx(ctx, func(tx *store.Store) error {
				if err := tx.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o1", UserID: "u1", AppliedAt: time.Now()}); err != nil {
					return err
				}
				return tx.DecrementLines(ctx, "o1", "u1", []store.Line{{"A", 1}}, time.Now())
			})
		})
	}
	close(start)
	wg.Wait()

	applied := 0
	for i, err := range results {
		switch {
		case err == nil:
			applied++
		case errors.Is(err, store.ErrAlreadyProcessed):
		default:
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if applied != 1 {
		t.Fatalf("%d transactions applied the order, want 1", applied)
	}
	if diff := cmp.Diff(map[string]int{"A": 9}, lines(t, s, "u1")); diff != "" {
		t.Fatalf("cart (-want +got):\n%s", diff)
	}
}

func TestRecordRejection(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	if n, err := s.CountRejections(ctx); err != nil || n != 0 {
		t.Fatalf("CountRejections = %d, %v; want 0", n, err)
	}
	hostile := store.RejectedMessage{
		MsgID:       strings.Repeat("m", 500),
		MsgKey:      strings.Repeat("k", 500),
		Reason:      "bad \xff reason",
		BodySnippet: "\xff\xfe" + strings.Repeat("é", 5000),
		RejectedAt:  time.Now(),
	}
	if err := s.RecordRejection(ctx, hostile); err != nil {
		t.Fatalf("a hostile message must still be recorded: %v", err)
	}
	if err := s.RecordRejection(ctx, store.RejectedMessage{MsgID: "m2", Reason: "r2", RejectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountRejections(ctx); err != nil || n != 2 {
		t.Fatalf("CountRejections = %d, %v; want 2", n, err)
	}
	rs, err := s.Rejections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := rs[0]
	if len([]rune(got.BodySnippet)) != store.MaxSnippet || !strings.HasPrefix(got.BodySnippet, "\uFFFD") {
		t.Errorf("snippet has %d characters and starts %q; want %d, starting with U+FFFD",
			len([]rune(got.BodySnippet)), got.BodySnippet[:8], store.MaxSnippet)
	}
	if got.Reason != "bad \uFFFD reason" || len(got.MsgID) != 128 || len(got.MsgKey) != 255 {
		t.Errorf("reason %q, msg_id %d chars, key %d chars", got.Reason, len(got.MsgID), len(got.MsgKey))
	}
	if rs[1].MsgID != "m2" {
		t.Errorf("second rejection msg_id = %q, want m2", rs[1].MsgID)
	}
}
