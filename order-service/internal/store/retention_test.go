package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/retention"
	"rmqtx/pkg/testenv"
)

// TestPurgeTimeline runs the service's purge (store.Purged) against MariaDB with the real schema:
// steps older than the retention go, younger ones stay, and the schema already has the index the
// purge needs.
func TestPurgeTimeline(t *testing.T) {
	t.Parallel()
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "orders"), store.Schema)
	s := store.New(db)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	retention7d := 7 * 24 * time.Hour

	for _, tbl := range store.Purged {
		var n int64
		err := db.Raw(`SELECT COUNT(*) FROM information_schema.statistics
			WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? AND column_name = ?`,
			tbl.Name, tbl.Index, tbl.Column).Scan(&n).Error
		if err != nil || n != 1 {
			t.Errorf("schema.sql: index %s on %s(%s): found %d, err %v", tbl.Index, tbl.Name, tbl.Column, n, err)
		}
	}
	err := s.InsertTimeline(ctx, []store.TimelineStep{
		{OrderID: "old", Step: "local_tx", Detail: "eight days ago", Instance: "i", At: now.Add(-8 * 24 * time.Hour)},
		{OrderID: "old", Step: "answer", Detail: "just past the retention", Instance: "i", At: now.Add(-retention7d - time.Second)},
		{OrderID: "new", Step: "local_tx", Detail: "six days ago", Instance: "i", At: now.Add(-6 * 24 * time.Hour)},
		{OrderID: "new", Step: "answer", Detail: "now", Instance: "i", At: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := retention.New(ctx, db, testenv.Logger(t), retention7d, retention.Batch, func() time.Time { return now }, store.Purged...)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := p.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int64{"order_timeline": 2}, deleted); d != "" {
		t.Errorf("deleted (-want +got):\n%s", d)
	}
	for id, want := range map[string]int{"old": 0, "new": 2} {
		steps, err := s.Timeline(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != want {
			t.Errorf("order %s: %d steps left, want %d", id, len(steps), want)
		}
	}
}
