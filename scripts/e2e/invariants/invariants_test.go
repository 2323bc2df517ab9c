package invariants

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"rmqtx/pkg/testenv"
)

// openWithSchema creates a database with a service's real schema file.
func openWithSchema(t *testing.T, schemaFile string) *sql.DB {
	t.Helper()
	schema, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	dsn := testenv.NewDatabase(t, "inv")
	db, err := testenv.OpenDB(t, dsn, string(schema)).DB()
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestCheckFindsEachViolation(t *testing.T) {
	t.Parallel()
	orders := openWithSchema(t, "../../../order-service/internal/store/schema.sql")
	carts := openWithSchema(t, "../../../cart-service/internal/store/schema.sql")
	now := time.Now().UTC()
	order := func(id string, txlog string) {
		exec(t, orders, "INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES (?, 'u', 1, ?)", id, now)
		if txlog != "" {
			exec(t, orders, "INSERT INTO tx_log (order_id, outcome, created_at) VALUES (?, ?, ?)", id, txlog, now)
		}
	}
	applied := func(id string) {
		exec(t, carts, "INSERT INTO processed_orders (order_id, user_id, applied_at) VALUES (?, 'u', ?)", id, now)
	}

	order("good", "committed")
	applied("good")
	order("not-applied", "committed")                                                                          // I1
	applied("phantom")                                                                                         // I2
	order("no-txlog", "")                                                                                      // I4
	applied("no-txlog")                                                                                        //
	exec(t, orders, "INSERT INTO tx_log (order_id, outcome, created_at) VALUES ('lost', 'committed', ?)", now) // I4
	exec(t, orders, "INSERT INTO tx_log (order_id, outcome, created_at) VALUES ('rb', 'rolled_back', ?)", now)

	r, err := Check(context.Background(), orders, carts)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{
		Orders: 3, Applied: 3, Committed: 3, RolledBack: 1,
		Missing: []string{"not-applied"}, Phantom: []string{"phantom"}, Disagreeing: []string{"no-txlog", "lost"},
	}
	if d := cmp.Diff(want, r, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("report (-want +got):\n%s", d)
	}
	if r.OK() {
		t.Fatal("OK() with violations")
	}

	// A clean pair of databases passes, and WaitSettled returns as soon as it does.
	orders2 := openWithSchema(t, "../../../order-service/internal/store/schema.sql")
	carts2 := openWithSchema(t, "../../../cart-service/internal/store/schema.sql")
	exec(t, orders2, "INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES ('x', 'u', 1, ?)", now)
	exec(t, orders2, "INSERT INTO tx_log (order_id, outcome, created_at) VALUES ('x', 'committed', ?)", now)
	go func() {
		time.Sleep(700 * time.Millisecond) // the cart catches up while we wait
		carts2.Exec("INSERT INTO processed_orders (order_id, user_id, applied_at) VALUES ('x', 'u', ?)", now)
	}()
	r, err = WaitSettled(context.Background(), orders2, carts2, 20*time.Second)
	if err != nil || !r.OK() || r.Orders != 1 || r.Applied != 1 {
		t.Fatalf("settled report = %+v, %v", r, err)
	}
}
