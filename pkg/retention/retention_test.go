package retention

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/pkg/testenv"
)

// schema is a table like the services' timelines, created without the index on its time column,
// as in a database made before the purge existed.
const schema = `CREATE TABLE steps (
  id BIGINT NOT NULL AUTO_INCREMENT,
  at DATETIME(6) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB;
`

var steps = Table{Name: "steps", Column: "at", Index: "idx_steps_at"}

// TestOncePurgesOldRowsInBatches runs against MariaDB: rows older than the retention go, in
// DELETEs of at most the batch size; younger rows, and the one exactly at the cutoff, stay.
func TestOncePurgesOldRowsInBatches(t *testing.T) {
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "retention"), schema)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	retention := 24 * time.Hour
	cutoff := now.Add(-retention)

	var keep []int64
	for i := range 11 { // 11 old rows: batches of 3, 3, 3, 2
		if err := db.Exec("INSERT INTO steps (at) VALUES (?)", cutoff.Add(-time.Duration(i+1)*time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []time.Time{cutoff, cutoff.Add(time.Microsecond), now} {
		if err := db.Exec("INSERT INTO steps (at) VALUES (?)", at).Error; err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := db.Raw("SELECT LAST_INSERT_ID()").Scan(&id).Error; err != nil {
			t.Fatal(err)
		}
		keep = append(keep, id)
	}

	p, err := New(ctx, db, testenv.Logger(t), retention, 3, func() time.Time { return now }, steps)
	if err != nil {
		t.Fatal(err)
	}
	var batches []int64
	p.onBatch = func(table string, n int64) {
		if table != "steps" {
			t.Errorf("purged table %q", table)
		}
		batches = append(batches, n)
	}
	deleted, err := p.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int64{"steps": 11}, deleted); d != "" {
		t.Errorf("deleted (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int64{3, 3, 3, 2}, batches); d != "" {
		t.Errorf("rows per DELETE (-want +got):\n%s", d)
	}
	var left []int64
	if err := db.Raw("SELECT id FROM steps ORDER BY id").Scan(&left).Error; err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(keep, left); d != "" {
		t.Errorf("rows left (-want +got):\n%s", d)
	}

	// Nothing old left: one DELETE that finds nothing.
	batches = nil
	if deleted, err := p.Once(ctx); err != nil || deleted["steps"] != 0 {
		t.Fatalf("second purge: deleted %v, err %v", deleted, err)
	}
	if d := cmp.Diff([]int64{0}, batches); d != "" {
		t.Errorf("second purge, rows per DELETE (-want +got):\n%s", d)
	}
}

// TestNewAddsTheIndexOnce: the DELETEs must find old rows through an index, not a table scan
// holding locks on every row it reads; New adds the index to a table made without it, and a
// second New (another instance) leaves it be.
func TestNewAddsTheIndexOnce(t *testing.T) {
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "retention"), schema)
	ctx := context.Background()
	for range 2 {
		if _, err := New(ctx, db, testenv.Logger(t), time.Hour, Batch, time.Now, steps); err != nil {
			t.Fatal(err)
		}
	}
	var cols []string
	err := db.Raw(`SELECT column_name FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND table_name = 'steps' AND index_name = 'idx_steps_at'`).Scan(&cols).Error
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"at"}, cols); d != "" {
		t.Errorf("columns of idx_steps_at (-want +got):\n%s", d)
	}
	var plan []struct {
		Key *string `gorm:"column:key"`
	}
	if err := db.Raw("EXPLAIN DELETE FROM steps WHERE at < ? ORDER BY at LIMIT 500", time.Now()).Scan(&plan).Error; err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Key == nil || *plan[0].Key != "idx_steps_at" {
		t.Errorf("the purge's DELETE does not use idx_steps_at: %+v", plan)
	}
}

// TestStartStops: the background loop purges at once and ends when stopped.
func TestStartStops(t *testing.T) {
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "retention"), schema)
	ctx := context.Background()
	if err := db.Exec("INSERT INTO steps (at) VALUES (?)", time.Now().Add(-48*time.Hour)).Error; err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, db, testenv.Logger(t), 24*time.Hour, Batch, time.Now, steps)
	if err != nil {
		t.Fatal(err)
	}
	stop := p.Start(ctx)
	testenv.Eventually(t, 30*time.Second, "the old row purged", func() bool {
		var n int64
		return db.Raw("SELECT COUNT(*) FROM steps").Scan(&n).Error == nil && n == 0
	})
	stop() // returns only once the loop has ended; a hang fails the test by its timeout
}

func TestEvery(t *testing.T) {
	for retention, want := range map[time.Duration]time.Duration{
		7 * 24 * time.Hour: time.Hour,
		2 * time.Hour:      12 * time.Minute,
		time.Minute:        6 * time.Second,
		5 * time.Second:    time.Second,
	} {
		if got := (&Purger{retention: retention}).Every(); got != want {
			t.Errorf("Every() with retention %v = %v, want %v", retention, got, want)
		}
	}
}
