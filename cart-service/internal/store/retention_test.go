package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/retention"
	"rmqtx/pkg/testenv"
)

// TestPurgeDeliveriesAndRejections runs the service's purge (store.Purged) against MariaDB with the
// real schema: deliveries and rejected messages older than the retention go, younger ones stay,
// and the schema already has the indexes the purge needs.
func TestPurgeDeliveriesAndRejections(t *testing.T) {
	t.Parallel()
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "cartstore"), store.Schema)
	s := store.New(db)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	retention7d := 7 * 24 * time.Hour
	old, young := now.Add(-retention7d-time.Second), now.Add(-6*24*time.Hour)

	for _, tbl := range store.Purged {
		var n int64
		err := db.Raw(`SELECT COUNT(*) FROM information_schema.statistics
			WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? AND column_name = ?`,
			tbl.Name, tbl.Index, tbl.Column).Scan(&n).Error
		if err != nil || n != 1 {
			t.Errorf("schema.sql: index %s on %s(%s): found %d, err %v", tbl.Index, tbl.Name, tbl.Column, n, err)
		}
	}
	err := s.RecordDeliveries(ctx,
		store.Delivery{OrderID: "old", Step: "applied", Detail: "d", MsgID: "m1", At: old},
		store.Delivery{OrderID: "new", Step: "applied", Detail: "d", MsgID: "m2", At: young},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.RejectedMessage{
		{MsgID: "old", MsgKey: "k", Reason: "r", BodySnippet: "b", RejectedAt: old},
		{MsgID: "new", MsgKey: "k", Reason: "r", BodySnippet: "b", RejectedAt: young},
	} {
		if err := s.RecordRejection(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	p, err := retention.New(ctx, db, testenv.Logger(t), retention7d, retention.Batch, func() time.Time { return now }, store.Purged...)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := p.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int64{"order_deliveries": 1, "rejected_messages": 1}, deleted); d != "" {
		t.Errorf("deleted (-want +got):\n%s", d)
	}
	for id, want := range map[string]int{"old": 0, "new": 1} {
		ds, err := s.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != want {
			t.Errorf("order %s: %d deliveries left, want %d", id, len(ds), want)
		}
	}
	rejected, err := s.Rejections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 1 || rejected[0].MsgID != "new" {
		t.Errorf("rejections left: %+v, want only the young one", rejected)
	}
}
