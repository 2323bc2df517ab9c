package invariants

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"rmqtx/pkg/testenv"
)

const (
	ordersSchema = "../../../order-service/internal/store/schema.sql"
	cartsSchema  = "../../../cart-service/internal/store/schema.sql"
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

func exec(t *testing.T, db execer, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

type execer interface {
	Exec(query string, args ...any) (sql.Result, error)
}

// planter writes rows the way the services do, and the ways they must not.
type planter struct {
	t             *testing.T
	orders, carts *sql.DB
	now           time.Time
}

func newPlanter(t *testing.T) *planter {
	return &planter{t: t, orders: openWithSchema(t, ordersSchema), carts: openWithSchema(t, cartsSchema), now: time.Now().UTC()}
}

// order writes an order of user with items (SKU → quantity) and, unless txlog is "", its tx_log row.
func (p *planter) order(id, user, txlog string, items map[string]int) {
	exec(p.t, p.orders, "INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES (?, ?, 1, ?)", id, user, p.now)
	for sku, q := range items {
		exec(p.t, p.orders, "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) VALUES (?, ?, ?, 1)", id, sku, q)
	}
	if txlog != "" {
		p.txlog(id, txlog)
	}
}

func (p *planter) txlog(id, outcome string) {
	exec(p.t, p.orders, "INSERT INTO tx_log (order_id, outcome, created_at) VALUES (?, ?, ?)", id, outcome, p.now)
}

// put is a user's change of a cart line: the line and its ledger row.
func (p *planter) put(user, sku string, before, after int) {
	if after > 0 {
		exec(p.t, p.carts, `INSERT INTO cart_items (user_id, sku, quantity, updated_at) VALUES (?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE quantity = ?`, user, sku, after, p.now, after)
	} else {
		exec(p.t, p.carts, "DELETE FROM cart_items WHERE user_id = ? AND sku = ?", user, sku)
	}
	p.ledger(user, sku, "", 0, before, after)
}

func (p *planter) ledger(user, sku, orderID string, ordered, before, after int) {
	var oid, ord any
	if orderID != "" {
		oid, ord = orderID, ordered
	}
	exec(p.t, p.carts, `INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, user, sku, oid, ord, before, after, p.now)
}

func (p *planter) marker(id, user string) {
	exec(p.t, p.carts, "INSERT INTO processed_orders (order_id, user_id, applied_at) VALUES (?, ?, ?)", id, user, p.now)
}

// take is an order's decrement of one line as cart-service does it: the line and its ledger row.
func (p *planter) take(id, user, sku string, ordered, before int) {
	after := max(before-ordered, 0)
	if after > 0 {
		exec(p.t, p.carts, "UPDATE cart_items SET quantity = ? WHERE user_id = ? AND sku = ?", after, user, sku)
	} else {
		exec(p.t, p.carts, "DELETE FROM cart_items WHERE user_id = ? AND sku = ?", user, sku)
	}
	p.ledger(user, sku, id, ordered, before, after)
}

func (p *planter) check() Report {
	p.t.Helper()
	r, err := Check(context.Background(), p.orders, p.carts)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

func TestCheckPassesWhatTheServicesDo(t *testing.T) {
	t.Parallel()
	p := newPlanter(t)
	p.put("u1", "A", 0, 5)
	p.put("u1", "B", 0, 1)
	p.order("o1", "u1", "committed", map[string]int{"A": 2, "B": 3, "Z": 1})
	p.marker("o1", "u1")
	p.take("o1", "u1", "A", 2, 5) // 5 -> 3
	p.take("o1", "u1", "B", 3, 1) // less in the cart than ordered: 1 -> 0
	p.take("o1", "u1", "Z", 1, 0) // not in the cart
	p.put("u1", "B", 0, 4)        // added back after the order: must survive
	p.txlog("rb", "rolled_back")  // an order that never was
	p.put("u2", "A", 0, 2)
	p.put("u2", "A", 2, 0)

	r := p.check()
	want := Report{Orders: 1, Applied: 1, Committed: 1, RolledBack: 1, CartLines: 2, Changes: 8}
	if d := cmp.Diff(want, r, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("report (-want +got):\n%s", d)
	}
	if !r.OK() {
		t.Fatalf("OK() = false:\n%s", r)
	}
}

// Each violation the wrong ways can produce, planted once, is reported naming its order, user and
// SKU.
func TestCheckFindsEachViolation(t *testing.T) {
	t.Parallel()
	p := newPlanter(t)
	one := map[string]int{"A": 1}

	p.order("good", "u0", "committed", one)
	p.put("u0", "A", 0, 3)
	p.marker("good", "u0")
	p.take("good", "u0", "A", 1, 3)

	p.order("not-applied", "u1", "committed", one) // I1
	p.marker("phantom", "u1")                      // I2
	p.ledger("u1", "A", "phantom", 1, 0, 0)        //

	p.order("no-txlog", "u2", "", one) // I4
	p.marker("no-txlog", "u2")
	p.ledger("u2", "A", "no-txlog", 1, 0, 0)
	p.txlog("lost", "committed")                   // I4: committed, no order
	p.order("rb-beside", "u2", "rolled_back", one) // I4: rolled back, yet the order exists
	p.marker("rb-beside", "u2")
	p.ledger("u2", "A", "rb-beside", 1, 0, 0)

	// Applied twice: the second application took again.
	p.order("twice", "u3", "committed", map[string]int{"A": 2})
	p.put("u3", "A", 0, 5)
	p.marker("twice", "u3")
	p.take("twice", "u3", "A", 2, 5)
	p.take("twice", "u3", "A", 2, 3)

	// A marker without its decrement.
	p.order("no-decrement", "u4", "committed", one)
	p.put("u4", "A", 0, 2)
	p.marker("no-decrement", "u4")

	// A decrement without its marker (the order also counts as not applied).
	p.order("no-marker", "u5", "committed", one)
	p.put("u5", "A", 0, 2)
	p.take("no-marker", "u5", "A", 1, 2)

	// Applied to another user's cart, and marked as that user's.
	p.order("other-user", "u6", "committed", one)
	p.put("u7", "A", 0, 2)
	p.marker("other-user", "u7")
	p.take("other-user", "u7", "A", 1, 2)

	// Wiped: the order asked 1 and the line (with later additions) went from 5 to 0.
	p.order("wipe", "u8", "committed", one)
	p.put("u8", "A", 0, 5)
	p.marker("wipe", "u8")
	p.ledger("u8", "A", "wipe", 1, 5, 0)
	exec(t, p.carts, "DELETE FROM cart_items WHERE user_id = 'u8'")

	// One item of the order not applied, another item the order does not have.
	p.order("partial", "u9", "committed", map[string]int{"A": 1, "B": 1})
	p.put("u9", "A", 0, 2)
	p.marker("partial", "u9")
	p.take("partial", "u9", "A", 1, 2)
	p.take("partial", "u9", "C", 1, 0)

	// Cart arithmetic: a decrement the ledger does not know (a phantom decrement, or a double
	// decrement that recorded one), a line gone with no record, a line stored at zero.
	p.put("u10", "A", 0, 4)
	exec(t, p.carts, "UPDATE cart_items SET quantity = 2 WHERE user_id = 'u10' AND sku = 'A'")
	p.put("u10", "B", 0, 1)
	exec(t, p.carts, "DELETE FROM cart_items WHERE user_id = 'u10' AND sku = 'B'")
	exec(t, p.carts, "INSERT INTO cart_items (user_id, sku, quantity, updated_at) VALUES ('u10', 'C', 0, ?)", p.now)

	r := p.check()
	want := Report{
		Orders: 10, Applied: 9, Committed: 9, RolledBack: 1, CartLines: 8, Changes: 20,
		Missing: []string{"no-marker", "not-applied"},
		Phantom: []string{"phantom"},
		WrongUser: []string{
			"order other-user of user u6, sku A: taken from the cart of user u7",
			"order other-user of user u6: processed_orders says user u7",
		},
		Application: []string{
			"order no-decrement of user u4 is in processed_orders but took nothing from the cart (no ledger rows)",
			"order no-marker decremented the cart of user u5 without a processed_orders row",
			"order partial of user u9, sku B: ordered but not applied (no ledger row)",
			"order partial of user u9, sku C: changed the cart (0 -> 0) but the order has no such item",
			"order twice of user u3, sku A: applied more than once",
			"order wipe of user u8, sku A: ordered 1, the cart went from 5 to 0 (want 4)",
		},
		Cart: []string{
			"user u10, sku A: the cart holds 2, the ledger says 4",
			"user u10, sku B: the cart holds nothing, the ledger says 1",
			"user u10, sku C: the cart line holds 0 (a line exists only above zero)",
		},
		Disagreeing: []string{
			"order lost: tx_log 'committed' but the order does not exist",
			"order no-txlog exists without a tx_log row",
			`order rb-beside exists but tx_log says "rolled_back"`,
		},
	}
	if d := cmp.Diff(want, r, cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("report (-want +got):\n%s", d)
	}
	if r.OK() {
		t.Fatal("OK() with violations")
	}
	// The human report names each offender.
	out := r.String()
	for _, l := range [][]string{want.Missing, want.Phantom, want.WrongUser, want.Application, want.Cart, want.Disagreeing} {
		for _, o := range l {
			if !strings.Contains(out, o) {
				t.Errorf("the report does not show %q:\n%s", o, out)
			}
		}
	}
	if strings.Contains(out, "predates the ledger") {
		t.Errorf("a database with a ledger is said to predate it:\n%s", out)
	}
}

// A carts database from before the ledger fails, and the report says why.
func TestCheckSaysWhenTheLedgerIsMissing(t *testing.T) {
	t.Parallel()
	p := newPlanter(t)
	p.order("o1", "u1", "committed", map[string]int{"A": 1})
	p.marker("o1", "u1")
	exec(t, p.carts, "INSERT INTO cart_items (user_id, sku, quantity, updated_at) VALUES ('u1', 'A', 2, ?)", p.now)
	r := p.check()
	if r.OK() || !strings.Contains(r.String(), "predates the ledger") {
		t.Fatalf("a pre-ledger database: OK() = %v\n%s", r.OK(), r)
	}
}

// Each kind of violation alone makes OK() false, and all but I1 stop WaitSettled at once.
func TestEveryKindFails(t *testing.T) {
	for name, r := range map[string]Report{
		"missing": {Missing: []string{"x"}}, "phantom": {Phantom: []string{"x"}}, "wrong user": {WrongUser: []string{"x"}},
		"application": {Application: []string{"x"}}, "cart": {Cart: []string{"x"}}, "disagreeing": {Disagreeing: []string{"x"}},
	} {
		if r.OK() {
			t.Errorf("%s: OK() = true", name)
		}
		if name != "missing" && r.settledOK() {
			t.Errorf("%s: settledOK() = true", name)
		}
	}
	if !(Report{}).OK() {
		t.Error("an empty report is not OK")
	}
}

// WaitSettled waits for an order to reach the cart, and returns as soon as it has.
func TestWaitSettled(t *testing.T) {
	t.Parallel()
	p := newPlanter(t)
	p.put("u", "A", 0, 2)
	p.order("x", "u", "committed", map[string]int{"A": 1})
	go func() {
		time.Sleep(700 * time.Millisecond) // the cart catches up while we wait
		tx, err := p.carts.Begin()
		if err != nil {
			return
		}
		tx.Exec("INSERT INTO processed_orders (order_id, user_id, applied_at) VALUES ('x', 'u', ?)", p.now)
		tx.Exec("UPDATE cart_items SET quantity = 1 WHERE user_id = 'u' AND sku = 'A'")
		tx.Exec(`INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at)
			VALUES ('u', 'A', 'x', 1, 2, 1, ?)`, p.now)
		tx.Commit()
	}()
	r, err := WaitSettled(context.Background(), p.orders, p.carts, 20*time.Second)
	if err != nil || !r.OK() || r.Orders != 1 || r.Applied != 1 {
		t.Fatalf("settled report = %+v, %v", r, err)
	}
}

// A check while orders commit and apply must not report what is only in flight: each database is
// read in one snapshot. (Read table by table, an order committing between the reads of tx_log and
// orders, or an application between the reads of cart_items and cart_changes, shows as a violation.)
func TestCheckOnALiveSystem(t *testing.T) {
	t.Parallel()
	p := newPlanter(t)
	const users = 4
	for u := range users {
		p.put(fmt.Sprintf("u%d", u), "A", 0, 1_000_000)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var placed atomic.Int64
	try := func(_ sql.Result, err error) bool {
		if err != nil {
			t.Error(err)
		}
		return err == nil
	}
	for w := range users {
		wg.Go(func() {
			user := fmt.Sprintf("u%d", w)
			qty := 1_000_000
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("o-%d-%d", w, i)
				// order-service: tx_log, the order and its items in one transaction.
				tx, err := p.orders.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				if !try(tx.Exec("INSERT INTO tx_log (order_id, outcome, created_at) VALUES (?, 'committed', ?)", id, p.now)) {
					return
				}
				if !try(tx.Exec("INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES (?, ?, 1, ?)", id, user, p.now)) {
					return
				}
				if !try(tx.Exec("INSERT INTO order_items (order_id, sku, quantity, unit_price_cents) VALUES (?, 'A', 1, 1)", id)) {
					return
				}
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
				// cart-service: the marker, the decrement and its ledger row in one transaction.
				tx, err = p.carts.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				if !try(tx.Exec("INSERT INTO processed_orders (order_id, user_id, applied_at) VALUES (?, ?, ?)", id, user, p.now)) {
					return
				}
				if !try(tx.Exec("UPDATE cart_items SET quantity = quantity - 1 WHERE user_id = ? AND sku = 'A'", user)) {
					return
				}
				if !try(tx.Exec(`INSERT INTO cart_changes (user_id, sku, order_id, ordered, quantity_before, quantity_after, at)
					VALUES (?, 'A', ?, 1, ?, ?, ?)`, user, id, qty, qty-1, p.now)) {
					return
				}
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
				qty--
				placed.Add(1)
			}
		})
	}
	checks := 0
	for ; checks < 40 || placed.Load() < 200; checks++ {
		r := p.check()
		if !r.settledOK() {
			t.Errorf("check %d reported what was only in flight:\n%s", checks, r)
			break
		}
	}
	stop()
	wg.Wait()
	r, err := WaitSettled(context.Background(), p.orders, p.carts, 10*time.Second)
	if err != nil || !r.OK() {
		t.Fatalf("after the writers stopped: %v\n%s", err, r)
	}
	t.Logf("%d checks while %d orders committed and applied", checks, placed.Load())
}
