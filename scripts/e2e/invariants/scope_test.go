package invariants

import (
	"context"
	"testing"
)

// Narrowed to some users, the checker judges their orders and carts only: another user's damage
// is neither reported nor hidden when that user is asked for.
func TestCheckNarrowedToUsers(t *testing.T) {
	t.Parallel()
	p := newPlanter(t)
	// "wrong": an order applied twice, and an order never applied.
	p.put("wrong", "A", 0, 5)
	p.order("o-twice", "wrong", "committed", map[string]int{"A": 2})
	p.marker("o-twice", "wrong")
	p.take("o-twice", "wrong", "A", 2, 5)
	p.take("o-twice", "wrong", "A", 2, 3)
	p.order("o-lost", "wrong", "committed", map[string]int{"A": 1})
	// "right": the same order, applied once.
	p.put("right", "A", 0, 5)
	p.order("o-once", "right", "committed", map[string]int{"A": 2})
	p.marker("o-once", "right")
	p.take("o-once", "right", "A", 2, 5)
	p.txlog("rb", "rolled_back") // names no user

	check := func(users ...string) Report {
		t.Helper()
		r, err := Check(context.Background(), p.orders, p.carts, users...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := check("right"); !r.OK() || r.Orders != 1 || r.Applied != 1 || r.RolledBack != 0 {
		t.Errorf("narrowed to right: want one clean order, got\n%s", r)
	}
	r := check("wrong")
	if r.OK() || len(r.Missing) != 1 || r.Missing[0] != "o-lost" || len(r.Application) != 1 || r.Orders != 2 {
		t.Errorf("narrowed to wrong: want o-lost missing and o-twice applied twice, got\n%s", r)
	}
	if all, both := check(), check("wrong", "right"); all.OK() || len(all.Missing) != len(both.Missing) || len(all.Application) != len(both.Application) {
		t.Errorf("everything:\n%s\nboth users:\n%s\nwant the same violations", all, both)
	}
}
