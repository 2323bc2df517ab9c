// Package invariants reads both services' databases and checks the invariants of docs/design.md:
//
//	I1: every order has been applied to the cart (a row in processed_orders), eventually;
//	I2: every applied order exists (no phantom effect);
//	I4: tx_log agrees with the orders: 'committed' if and only if the order exists.
//
// I3 (cart quantities = what was added minus what committed orders took, each once) needs to know
// what was added, so the tests that add it check it; the checker reports the per-order data it
// rests on (I1 and I2 together mean each existing order was applied, and the primary key of
// processed_orders means at most once).
package invariants

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of one check.
type Report struct {
	Orders      int      // rows in orders
	Applied     int      // rows in processed_orders
	Committed   int      // tx_log rows 'committed'
	RolledBack  int      // tx_log rows 'rolled_back'
	Rejected    int      // rejected_messages rows (poison messages; not a violation)
	Missing     []string // I1: orders not applied (yet)
	Phantom     []string // I2: applied orders that do not exist
	Disagreeing []string // I4: tx_log and orders disagree
}

// OK reports whether every invariant holds.
func (r Report) OK() bool {
	return len(r.Missing) == 0 && len(r.Phantom) == 0 && len(r.Disagreeing) == 0
}

// String is a human report, offenders listed (at most 20 per kind).
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "orders=%d applied=%d tx_log committed=%d rolled_back=%d rejected_messages=%d\n",
		r.Orders, r.Applied, r.Committed, r.RolledBack, r.Rejected)
	line := func(name string, ids []string) {
		verdict := "ok"
		if len(ids) > 0 {
			verdict = "VIOLATED"
		}
		fmt.Fprintf(&b, "%-48s %-8s %d", name, verdict, len(ids))
		if len(ids) > 0 {
			shown := ids[:min(len(ids), 20)]
			fmt.Fprintf(&b, "  %s", strings.Join(shown, " "))
			if len(ids) > len(shown) {
				fmt.Fprintf(&b, " ... (+%d)", len(ids)-len(shown))
			}
		}
		b.WriteString("\n")
	}
	line("I1 every order applied to the cart (missing)", r.Missing)
	line("I2 every applied order exists (phantom)", r.Phantom)
	line("I4 tx_log committed <=> order exists", r.Disagreeing)
	return b.String()
}

func ids(ctx context.Context, db *sql.DB, query string) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

func sorted(m map[string]bool, keep func(string) bool) []string {
	var out []string
	for id := range m {
		if keep(id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Check reads both databases once.
func Check(ctx context.Context, ordersDB, cartsDB *sql.DB) (Report, error) {
	// Read the cart side first: an order committed between the two reads then shows as "missing"
	// (which waiting resolves), never as a phantom.
	applied, err := ids(ctx, cartsDB, "SELECT order_id FROM processed_orders")
	if err != nil {
		return Report{}, err
	}
	var rejected int
	if err := cartsDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM rejected_messages").Scan(&rejected); err != nil {
		return Report{}, fmt.Errorf("count rejected_messages: %w", err)
	}
	committed, err := ids(ctx, ordersDB, "SELECT order_id FROM tx_log WHERE outcome = 'committed'")
	if err != nil {
		return Report{}, err
	}
	rolledBack, err := ids(ctx, ordersDB, "SELECT order_id FROM tx_log WHERE outcome = 'rolled_back'")
	if err != nil {
		return Report{}, err
	}
	orders, err := ids(ctx, ordersDB, "SELECT order_id FROM orders")
	if err != nil {
		return Report{}, err
	}
	r := Report{
		Orders: len(orders), Applied: len(applied), Committed: len(committed), RolledBack: len(rolledBack),
		Rejected: rejected,
		Missing:  sorted(orders, func(id string) bool { return !applied[id] }),
		Phantom:  sorted(applied, func(id string) bool { return !orders[id] }),
	}
	r.Disagreeing = append(sorted(orders, func(id string) bool { return !committed[id] }),
		sorted(committed, func(id string) bool { return !orders[id] })...)
	return r, nil
}

// WaitSettled checks repeatedly until no order is missing from the cart side or wait passes, and
// returns the last report. Phantoms and tx_log disagreements never settle: they are reported at
// once.
func WaitSettled(ctx context.Context, ordersDB, cartsDB *sql.DB, wait time.Duration) (Report, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := Check(ctx, ordersDB, cartsDB)
		if err != nil || len(r.Missing) == 0 || len(r.Phantom) > 0 || len(r.Disagreeing) > 0 || time.Now().After(deadline) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
