package mysqldb_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"gorm.io/gorm"

	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/testenv"
)

const schema = `
-- a comment line
CREATE TABLE IF NOT EXISTS t (
  id VARCHAR(8) NOT NULL PRIMARY KEY,
  code VARCHAR(8) NOT NULL,
  UNIQUE KEY uk_code (code)
) ENGINE=InnoDB;
`

func open(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := mysqldb.Open(context.Background(), testenv.NewDatabase(t, "mysqldb"), schema,
		mysqldb.Options{ConnectWait: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

func TestSchemaIsIdempotent(t *testing.T) {
	t.Parallel()
	db := open(t)
	if err := mysqldb.ApplySchema(context.Background(), db, schema); err != nil {
		t.Fatalf("second apply: %v", err)
	}
}

func TestInTxAndDuplicateKeys(t *testing.T) {
	t.Parallel()
	db, ctx := open(t), context.Background()
	insert := func(tx *gorm.DB, id, code string) error {
		return tx.Exec("INSERT INTO t (id, code) VALUES (?, ?)", id, code).Error
	}
	if err := mysqldb.InTx(ctx, db, func(tx *gorm.DB) error { return insert(tx, "a", "x") }); err != nil {
		t.Fatal(err)
	}
	// A failing unit of work rolls back everything it wrote, and its error comes back as is.
	err := mysqldb.InTx(ctx, db, func(tx *gorm.DB) error {
		if err := insert(tx, "b", "y"); err != nil {
			return err
		}
		return insert(tx, "c", "x") // duplicate code
	})
	if !mysqldb.IsDuplicateKey(err, "uk_code") || mysqldb.IsDuplicateKey(err, "PRIMARY") || errors.Is(err, mysqldb.ErrCommitUnknown) {
		t.Fatalf("err = %v, want a duplicate on uk_code only", err)
	}
	var n int64
	db.Raw("SELECT COUNT(*) FROM t").Scan(&n)
	if n != 1 {
		t.Fatalf("rows = %d, want 1 (the failed transaction's row rolled back)", n)
	}
	err = insert(db, "a", "z")
	if !mysqldb.IsDuplicateKey(err, "PRIMARY") || !mysqldb.IsDuplicateKey(err, "") {
		t.Fatalf("err = %v, want a duplicate on PRIMARY", err)
	}
	if mysqldb.IsDuplicateKey(errors.New("other"), "") {
		t.Fatal("a plain error is not a duplicate key")
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"cut here", 3, "cut"},
		{"ééé", 2, "éé"},           // characters, not bytes: never half an é
		{"a\xffb", 10, "a\uFFFDb"}, // invalid UTF-8, which a utf8mb4 column refuses
	}
	for _, tc := range tests {
		if got := mysqldb.Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
