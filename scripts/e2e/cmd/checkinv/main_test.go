package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"rmqtx/pkg/testenv"
)

// database creates a database with a service's real schema and returns its DSN.
func database(t *testing.T, schemaFile string) (string, func(query string, args ...any)) {
	t.Helper()
	schema, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	dsn := testenv.NewDatabase(t, "checkinv")
	db := testenv.OpenDB(t, dsn, string(schema))
	return dsn, func(query string, args ...any) {
		t.Helper()
		if err := db.Exec(query, args...).Error; err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
}

// checkinv's exit code is what the scenario scripts rely on: 0 all hold, 1 violated, 2 could not
// check.
func TestExitCode(t *testing.T) {
	t.Parallel()
	ordersDSN, orders := database(t, "../../../../order-service/internal/store/schema.sql")
	cartsDSN, carts := database(t, "../../../../cart-service/internal/store/schema.sql")
	env := map[string]string{"ORDERS_DSN": ordersDSN, "CARTS_DSN": cartsDSN}
	run := func(env map[string]string, args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := run(args, func(k string) string { return env[k] }, &out, &errs)
		return code, out.String() + errs.String()
	}
	now := time.Now().UTC()

	// One order, applied as cart-service does.
	carts("INSERT INTO cart_items (user_id, sku, quantity, updated_at) VALUES ('u', 'A', 2, ?)", now)
	carts("INSERT INTO cart_changes (user_id, sku, quantity_before, quantity_after, at) VALUES ('u', 'A', 0, 3, ?)", now)
	orders("INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES ('o1', 'u', 1, ?)", now)
	orders("INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) VALUES ('o1', 'A', 1, 1)")
	orders("INSERT INTO tx_log (order_id, outcome, created_at) VALUES ('o1', 'committed', ?)", now)
	carts("INSERT INTO processed_orders (order_id, user_id, applied_at) VALUES ('o1', 'u', ?)", now)
	carts("INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at) VALUES ('u', 'A', 'o1', 1, 3, 2, ?)", now)
	if code, out := run(env, "-wait", "1s"); code != 0 || !strings.Contains(out, "verdict: all invariants hold") {
		t.Fatalf("clean databases: exit %d\n%s", code, out)
	}

	// The same order decremented once more, behind the ledger's back.
	carts("UPDATE cart_items SET quantity = 1 WHERE user_id = 'u' AND sku = 'A'")
	if code, out := run(env, "-wait", "1s"); code != 1 || !strings.Contains(out, "user u, sku A: the cart holds 1, the ledger says 2") {
		t.Fatalf("a violation: exit %d, want 1 naming the line\n%s", code, out)
	}
	carts("UPDATE cart_items SET quantity = 2 WHERE user_id = 'u' AND sku = 'A'")

	// An order that never reaches the cart: 1 once the wait is over.
	orders("INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES ('o2', 'u', 1, ?)", now)
	orders("INSERT INTO tx_log (order_id, outcome, created_at) VALUES ('o2', 'committed', ?)", now)
	if code, out := run(env, "-wait", "1s"); code != 1 || !strings.Contains(out, "o2") {
		t.Fatalf("an order never applied: exit %d, want 1 naming o2\n%s", code, out)
	}

	// Could not check: 2.
	if code, out := run(map[string]string{"ORDERS_DSN": ordersDSN, "CARTS_DSN": "rmqtx:rmqtx@tcp(127.0.0.1:1)/carts"}, "-wait", "1s"); code != 2 {
		t.Fatalf("unreachable database: exit %d, want 2\n%s", code, out)
	}
	if code, out := run(env, "-no-such-flag"); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2\n%s", code, out)
	}
}
