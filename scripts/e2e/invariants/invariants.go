// Package invariants reads both services' databases and checks the invariants of docs/design.md:
//
//	I1: every order has been applied to the cart (a row in processed_orders), eventually;
//	I2: every applied order exists (no phantom effect);
//	I3: each applied order took from its own user's cart exactly what it ordered (or what was
//	    left, if the cart held less), once; and every cart line equals what its user put in minus
//	    what the applied orders took;
//	I4: tx_log agrees with the orders: 'committed' if and only if the order exists.
//
// I3 rests on cart-service's ledger (cart_changes), which records every change of a cart line in
// the transaction that makes it: a user's change with the quantities before and after, an order's
// application with one row per ordered SKU. The checker compares, for each applied order, its
// ledger rows with the order's items and user, and for each (user, SKU) the cart line with the sum
// of the ledger's changes.
//
// Each database is read in one consistent snapshot (a read-only REPEATABLE READ transaction), the
// carts database first: an order that commits meanwhile can then only show as "not applied yet"
// (I1, which waiting resolves), never as a phantom, a disagreement or a wrong cart.
package invariants

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of one check. Each violation names its order (and user and SKU where
// they matter).
type Report struct {
	Orders     int // rows in orders
	Applied    int // rows in processed_orders
	Committed  int // tx_log rows 'committed'
	RolledBack int // tx_log rows 'rolled_back'
	Rejected   int // rejected_messages rows (poison messages; not a violation)
	CartLines  int // rows in cart_items
	Changes    int // rows in cart_changes (the cart ledger)

	Missing     []string // I1: orders not applied (yet), by order ID
	Phantom     []string // I2: applied orders that do not exist, by order ID
	WrongUser   []string // I3: orders applied to another user's cart
	Application []string // I3: applications that do not match their order (twice, without a decrement, ...)
	Cart        []string // I3: cart lines that differ from what their user put in minus what orders took
	Disagreeing []string // I4: tx_log and orders disagree
}

// OK reports whether every invariant holds.
func (r Report) OK() bool { return len(r.Missing) == 0 && r.settledOK() }

// settledOK reports whether every invariant but I1 holds: those never resolve by waiting.
func (r Report) settledOK() bool {
	return len(r.Phantom) == 0 && len(r.WrongUser) == 0 && len(r.Application) == 0 &&
		len(r.Cart) == 0 && len(r.Disagreeing) == 0
}

// String is a human report, offenders listed (at most 20 per kind).
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "orders=%d applied=%d tx_log committed=%d rolled_back=%d rejected_messages=%d cart_lines=%d cart_changes=%d\n",
		r.Orders, r.Applied, r.Committed, r.RolledBack, r.Rejected, r.CartLines, r.Changes)
	line := func(name string, offenders []string) {
		verdict := "ok"
		if len(offenders) > 0 {
			verdict = "VIOLATED"
		}
		fmt.Fprintf(&b, "%-52s %-8s %d\n", name, verdict, len(offenders))
		for _, o := range offenders[:min(len(offenders), 20)] {
			fmt.Fprintf(&b, "    %s\n", o)
		}
		if len(offenders) > 20 {
			fmt.Fprintf(&b, "    ... (+%d)\n", len(offenders)-20)
		}
	}
	if r.Changes == 0 && (r.Applied > 0 || r.CartLines > 0) {
		b.WriteString("note: the cart ledger is empty but carts and applied orders exist: this carts database\n" +
			"      predates the ledger (cart_changes), so I3 cannot hold; recreate the databases\n")
	}
	line("I1 every order applied to the cart (missing)", r.Missing)
	line("I2 every applied order exists (phantom)", r.Phantom)
	line("I3 applied to its own user's cart", r.WrongUser)
	line("I3 each application took what its order asked, once", r.Application)
	line("I3 cart = put in by the user - taken by orders", r.Cart)
	line("I4 tx_log committed <=> order exists", r.Disagreeing)
	return b.String()
}

// The rows the checker reads.
type (
	order struct {
		user  string
		items map[string]int // SKU → quantity
	}
	change struct {
		user, sku, orderID string // orderID "" for a change by the user
		before, after      int
	}
	lineKey struct{ user, sku string }
)

type cartSide struct {
	applied  map[string]string // order ID → user ID (processed_orders)
	rejected int
	lines    map[lineKey]int // cart_items
	changes  []change        // cart_changes, in id order
}

type orderSide struct {
	orders map[string]*order
	txlog  map[string]string // order ID → outcome
}

// snapshot runs read in one read-only REPEATABLE READ transaction: every query in it sees the
// database as of its first read.
func snapshot(ctx context.Context, db *sql.DB, read func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback()
	if err := read(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// each runs query and calls scan for every row.
func each(ctx context.Context, tx *sql.Tx, query string, scan func(rows *sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%s: %w", query, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", query, err)
	}
	return nil
}

func readCarts(ctx context.Context, db *sql.DB) (cartSide, error) {
	c := cartSide{applied: map[string]string{}, lines: map[lineKey]int{}}
	err := snapshot(ctx, db, func(tx *sql.Tx) error {
		if err := each(ctx, tx, "SELECT order_id, user_id FROM processed_orders", func(rows *sql.Rows) error {
			var id, user string
			err := rows.Scan(&id, &user)
			c.applied[id] = user
			return err
		}); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM rejected_messages").Scan(&c.rejected); err != nil {
			return fmt.Errorf("count rejected_messages: %w", err)
		}
		if err := each(ctx, tx, "SELECT user_id, sku, quantity FROM cart_items", func(rows *sql.Rows) error {
			var k lineKey
			var q int
			err := rows.Scan(&k.user, &k.sku, &q)
			c.lines[k] = q
			return err
		}); err != nil {
			return err
		}
		return each(ctx, tx, "SELECT user_id, sku, order_id, quantity_before, quantity_after FROM cart_changes ORDER BY id",
			func(rows *sql.Rows) error {
				var ch change
				var orderID sql.NullString
				err := rows.Scan(&ch.user, &ch.sku, &orderID, &ch.before, &ch.after)
				ch.orderID = orderID.String
				c.changes = append(c.changes, ch)
				return err
			})
	})
	return c, err
}

func readOrders(ctx context.Context, db *sql.DB) (orderSide, error) {
	o := orderSide{orders: map[string]*order{}, txlog: map[string]string{}}
	err := snapshot(ctx, db, func(tx *sql.Tx) error {
		if err := each(ctx, tx, "SELECT order_id, outcome FROM tx_log", func(rows *sql.Rows) error {
			var id, outcome string
			err := rows.Scan(&id, &outcome)
			o.txlog[id] = outcome
			return err
		}); err != nil {
			return err
		}
		if err := each(ctx, tx, "SELECT order_id, user_id FROM orders", func(rows *sql.Rows) error {
			var id, user string
			err := rows.Scan(&id, &user)
			o.orders[id] = &order{user: user, items: map[string]int{}}
			return err
		}); err != nil {
			return err
		}
		return each(ctx, tx, "SELECT order_id, sku, quantity FROM order_items", func(rows *sql.Rows) error {
			var id, sku string
			var q int
			if err := rows.Scan(&id, &sku, &q); err != nil {
				return err
			}
			if ord := o.orders[id]; ord != nil {
				ord.items[sku] = q
			}
			return nil
		})
	})
	return o, err
}

// Check reads both databases once, each in one snapshot, the carts database first. users, if any,
// narrow the check to those users (scope.go).
func Check(ctx context.Context, ordersDB, cartsDB *sql.DB, users ...string) (Report, error) {
	c, err := readCarts(ctx, cartsDB)
	if err != nil {
		return Report{}, err
	}
	o, err := readOrders(ctx, ordersDB)
	if err != nil {
		return Report{}, err
	}
	if len(users) > 0 {
		c, o = only(c, o, users)
	}
	return judge(c, o), nil
}

func judge(c cartSide, o orderSide) Report {
	r := Report{Orders: len(o.orders), Applied: len(c.applied), Rejected: c.rejected,
		CartLines: len(c.lines), Changes: len(c.changes)}
	for _, outcome := range o.txlog {
		switch outcome {
		case "committed":
			r.Committed++
		case "rolled_back":
			r.RolledBack++
		}
	}

	// I4.
	for id := range o.orders {
		switch outcome, ok := o.txlog[id]; {
		case !ok:
			r.Disagreeing = append(r.Disagreeing, fmt.Sprintf("order %s exists without a tx_log row", id))
		case outcome != "committed":
			r.Disagreeing = append(r.Disagreeing, fmt.Sprintf("order %s exists but tx_log says %q", id, outcome))
		}
	}
	for id, outcome := range o.txlog {
		if _, ok := o.orders[id]; !ok && outcome == "committed" {
			r.Disagreeing = append(r.Disagreeing, fmt.Sprintf("order %s: tx_log 'committed' but the order does not exist", id))
		}
	}

	// I1, I2, and the applying user.
	for id := range o.orders {
		if _, ok := c.applied[id]; !ok {
			r.Missing = append(r.Missing, id)
		}
	}
	for id, user := range c.applied {
		ord, ok := o.orders[id]
		if !ok {
			r.Phantom = append(r.Phantom, id)
			continue
		}
		if user != ord.user {
			r.WrongUser = append(r.WrongUser, fmt.Sprintf("order %s of user %s: processed_orders says user %s", id, ord.user, user))
		}
	}

	// I3, each application against its order.
	byOrder := map[string][]change{}
	sums := map[lineKey]int{}
	for _, ch := range c.changes {
		k := lineKey{ch.user, ch.sku}
		sums[k] += ch.after - ch.before
		if ch.orderID != "" {
			byOrder[ch.orderID] = append(byOrder[ch.orderID], ch)
		}
	}
	for id, chs := range byOrder {
		if _, ok := c.applied[id]; !ok {
			r.Application = append(r.Application, fmt.Sprintf("order %s decremented the cart of user %s without a processed_orders row", id, chs[0].user))
		}
	}
	for id := range c.applied {
		ord, ok := o.orders[id]
		if !ok {
			continue // a phantom, reported above
		}
		chs := byOrder[id]
		if len(chs) == 0 {
			r.Application = append(r.Application, fmt.Sprintf("order %s of user %s is in processed_orders but took nothing from the cart (no ledger rows)", id, ord.user))
			continue
		}
		seen := map[string]int{}
		for _, ch := range chs {
			seen[ch.sku]++
			where := fmt.Sprintf("order %s of user %s, sku %s", id, ord.user, ch.sku)
			if ch.user != ord.user {
				r.WrongUser = append(r.WrongUser, fmt.Sprintf("%s: taken from the cart of user %s", where, ch.user))
			}
			want, ordered := ord.items[ch.sku]
			switch {
			case !ordered:
				r.Application = append(r.Application, fmt.Sprintf("%s: changed the cart (%d -> %d) but the order has no such item", where, ch.before, ch.after))
			case seen[ch.sku] == 2:
				r.Application = append(r.Application, fmt.Sprintf("%s: applied more than once", where))
			case ch.before < 0 || ch.after != max(ch.before-want, 0):
				r.Application = append(r.Application, fmt.Sprintf("%s: ordered %d, the cart went from %d to %d (want %d)", where, want, ch.before, ch.after, max(ch.before-want, 0)))
			}
		}
		for sku := range ord.items {
			if seen[sku] == 0 {
				r.Application = append(r.Application, fmt.Sprintf("order %s of user %s, sku %s: ordered but not applied (no ledger row)", id, ord.user, sku))
			}
		}
	}

	// I3, each cart line against the ledger.
	for k, q := range c.lines {
		if q <= 0 {
			r.Cart = append(r.Cart, fmt.Sprintf("user %s, sku %s: the cart line holds %d (a line exists only above zero)", k.user, k.sku, q))
		}
		if sums[k] != q {
			r.Cart = append(r.Cart, fmt.Sprintf("user %s, sku %s: the cart holds %d, the ledger says %d", k.user, k.sku, q, sums[k]))
		}
	}
	for k, sum := range sums {
		if _, ok := c.lines[k]; !ok && sum != 0 {
			r.Cart = append(r.Cart, fmt.Sprintf("user %s, sku %s: the cart holds nothing, the ledger says %d", k.user, k.sku, sum))
		}
	}

	for _, l := range []*[]string{&r.Missing, &r.Phantom, &r.WrongUser, &r.Application, &r.Cart, &r.Disagreeing} {
		slices.Sort(*l)
	}
	return r
}

// WaitSettled checks repeatedly until no order is missing from the cart side or wait passes, and
// returns the last report. Every other violation never settles: it is reported at once. users, if
// any, narrow the check as in Check.
func WaitSettled(ctx context.Context, ordersDB, cartsDB *sql.DB, wait time.Duration, users ...string) (Report, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := Check(ctx, ordersDB, cartsDB, users...)
		if err != nil || len(r.Missing) == 0 || !r.settledOK() || time.Now().After(deadline) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
