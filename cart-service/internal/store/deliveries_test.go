package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"rmqtx/cart-service/internal/store"
)

func TestDeliveriesAreReadBackInOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

	written := []store.Delivery{
		{OrderID: "o-1", Step: "retry_requested", Detail: "fault", ReconsumeTimes: 0, MsgID: "m1", At: at},
		{OrderID: "o-2", Step: "applied", Detail: "other order", ReconsumeTimes: 0, MsgID: "m9", At: at},
		{OrderID: "o-1", Step: "applied", Detail: "cart lines decremented", ReconsumeTimes: 1, MsgID: "m1", At: at.Add(time.Second)},
		// Written later but stamped earlier (clocks of two deliveries): the order written wins.
		{OrderID: "o-1", Step: "duplicate_acknowledged", Detail: strings.Repeat("é", 300), ReconsumeTimes: 2, MsgID: strings.Repeat("m", 200), At: at},
	}
	// One batch, then one more step: the order written wins, whatever the times say.
	if err := s.RecordDeliveries(ctx, written[:3]...); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, written[3]); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx); err != nil {
		t.Fatalf("no steps: %v", err)
	}
	got, err := s.Deliveries(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Delivery{
		{OrderID: "o-1", Step: "retry_requested", Detail: "fault", ReconsumeTimes: 0, MsgID: "m1", At: at.Truncate(time.Microsecond)},
		{OrderID: "o-1", Step: "applied", Detail: "cart lines decremented", ReconsumeTimes: 1, MsgID: "m1", At: at.Add(time.Second).Truncate(time.Microsecond)},
		// Over-long text is cut to the columns, not refused.
		{OrderID: "o-1", Step: "duplicate_acknowledged", Detail: strings.Repeat("é", 255), ReconsumeTimes: 2, MsgID: strings.Repeat("m", 128), At: at.Truncate(time.Microsecond)},
	}
	if d := cmp.Diff(want, got, cmpopts.IgnoreFields(store.Delivery{}, "ID")); d != "" {
		t.Errorf("deliveries of o-1 (-want +got):\n%s", d)
	}

	none, err := s.Deliveries(ctx, "never-seen")
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("deliveries of an unknown order = %#v, %v; want an empty slice", none, err)
	}
}

func TestAppliedAt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *store.Store) error {
		if err := tx.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o-rolled-back", UserID: "u1", AppliedAt: now}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	if err := s.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o-applied", UserID: "u1", AppliedAt: now}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		orderID     string
		wantApplied bool
	}{
		{"o-rolled-back", false},
		{"o-applied", true},
		{"never-seen", false},
	}
	for _, tt := range tests {
		appliedAt, err := s.AppliedAt(ctx, tt.orderID)
		if err != nil {
			t.Fatal(err)
		}
		if (appliedAt != nil) != tt.wantApplied {
			t.Errorf("%s: applied_at %v, want applied %v", tt.orderID, appliedAt, tt.wantApplied)
		}
		if appliedAt != nil && !appliedAt.Equal(now.Truncate(time.Microsecond)) {
			t.Errorf("%s: applied_at %v, want %v", tt.orderID, appliedAt, now)
		}
	}
}
