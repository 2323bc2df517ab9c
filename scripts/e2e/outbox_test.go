package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rmqtx/e2e/invariants"
	"rmqtx/pkg/testenv"
)

// The failure windows of the transactional outbox (PLACEMENT=outbox,
// order-service/internal/order/outbox.go), against real processes, judged at the end by the same
// invariant checker as the transactional flow.
func TestOutboxFailureWindows(t *testing.T) {
	s := newSuite(t, map[string]string{"PLACEMENT": "outbox"})
	start := map[string]int{"A-1": 5, "B-2": 2}
	order := map[string]int{"A-1": 2}
	after := map[string]int{"A-1": 3, "B-2": 2}
	scenario := 0
	user := func() string { scenario++; return fmt.Sprintf("ob%d-%s", scenario, testenv.Unique("e2e")) }
	outboxRows := func() int { return s.count(t, s.ordersDB, "SELECT COUNT(*) FROM outbox") }
	duplicates := func() float64 { return s.cart.metric(t, `cart_messages_total{outcome="duplicate"}`) }

	t.Run("happy path", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		a := place(s.orders[0], orderBody(u, order), nil)
		if a.status != 201 || a.order.Status != "created" {
			t.Fatalf("POST = %+v", a)
		}
		took := s.waitCart(t, u, after, t0, 30*time.Second)
		t.Logf("order -> cart updated in %v", took.Round(time.Millisecond))
		testenv.Eventually(t, 10*time.Second, "an empty outbox", func() bool { return outboxRows() == 0 })
		s.cartStays(t, u, after, 2*time.Second)
	})

	// The broker-down window is the scenario script's (scripts/scenarios/outbox-broker-down.sh), run
	// here on this suite and its own broker: the order is accepted with 201 and its event waits in
	// the outbox, /readyz stays 200, the cart is untouched until the broker is back, then updated
	// once, the outbox empties, and the checker finds every invariant holding for that user.
	t.Run("broker down: the order is accepted and its event waits in the outbox", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(root, "scripts", "scenarios", "outbox-broker-down.sh"))
		cmd.Env = append(e2eInfraEnv(),
			"SUITE=local",
			"ORDER_URL="+s.orders[0].url(""), "ORDER_URL_2="+s.orders[1].url(""), "CART_URL="+s.cart.url(""),
			"ORDERS_DSN="+s.ordersDSN, "CARTS_DSN="+s.cartsDSN)
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("outbox-broker-down.sh: %v\n%s", err, tail(string(out), 60))
		}
		var said []string // what the script measured
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "broker ") || strings.HasPrefix(line, "cart updated") || strings.HasPrefix(line, "outbox_rows") {
				said = append(said, line)
			}
		}
		t.Logf("outbox-broker-down.sh: ok in %v: %s", time.Since(t0).Round(time.Second), strings.Join(said, "; "))
	})

	t.Run("crash-after-local-commit", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "crash-after-local-commit"})
		if a.err == nil {
			t.Fatalf("got an HTTP answer %+v from a process that should have died", a)
		}
		s.orders[0].waitExit(t, 10*time.Second)
		if got := s.ordersOf(t, u); len(got) != 1 {
			t.Fatalf("orders of %s = %v, want the committed one", u, got)
		}
		// The live instance's relay finds the row at its next poll.
		took := s.waitCart(t, u, after, t0, 60*time.Second)
		t.Logf("crash after local commit -> cart updated in %v (published by the live instance's relay)", took.Round(time.Millisecond))
		s.orders[0].start(t)
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("crash-after-relay-publish", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		dupBefore := duplicates()
		t0 := time.Now()
		// The relay may kill its process before or after the HTTP answer has left: the order is
		// committed either way.
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "crash-after-relay-publish"})
		if a.err == nil && a.status != 201 {
			t.Fatalf("POST = %+v, want 201 or no answer", a)
		}
		// Either instance's relay may have claimed the row; the one that did dies.
		var dead *proc
		testenv.Eventually(t, 30*time.Second, "a relay dying after publishing", func() bool {
			for _, p := range s.orders {
				if p.exited() {
					dead = p
					return true
				}
			}
			return false
		})
		t.Logf("%s died after publishing (HTTP answer: %v)", dead.name, a.status)
		took := s.waitCart(t, u, after, t0, 60*time.Second)
		dead.start(t)
		// The row outlived the publish: a relay publishes it again, and cart-service
		// acknowledges the second delivery as a duplicate.
		testenv.Eventually(t, 60*time.Second, "the second publish, acknowledged as a duplicate", func() bool {
			return duplicates() >= dupBefore+1
		})
		testenv.Eventually(t, 30*time.Second, "an empty outbox", func() bool { return outboxRows() == 0 })
		t.Logf("crash after relay publish: cart updated in %v, republished and deduplicated %v after the order",
			took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("fail-local-tx", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		a := place(s.orders[1], orderBody(u, order), map[string]string{"X-Fault": "fail-local-tx"})
		if a.status != 500 || a.code != "order_not_placed" {
			t.Fatalf("POST = %+v, want 500 order_not_placed", a)
		}
		if got := s.ordersOf(t, u); len(got) != 0 {
			t.Fatalf("orders of %s = %v, want none", u, got)
		}
		if n := outboxRows(); n != 0 {
			t.Errorf("outbox holds %d rows, want none", n)
		}
		s.cartStays(t, u, start, 3*time.Second)
	})

	t.Run("cart-crash-after-commit", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		a := place(s.orders[1], orderBody(u, order), map[string]string{"X-Fault": "cart-crash-after-commit"})
		if a.status != 201 {
			t.Fatalf("POST = %+v", a)
		}
		s.cart.waitExit(t, 30*time.Second)
		s.cart.start(t)
		took := s.waitCart(t, u, after, t0, 60*time.Second)
		// The restarted process counts from zero: its first duplicate is the redelivery.
		testenv.Eventually(t, 60*time.Second, "the redelivery, acknowledged as a duplicate", func() bool {
			return duplicates() >= 1
		})
		t.Logf("cart crash after commit: cart correct %v after the order", took.Round(time.Millisecond))
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("the half-message fault points are refused", func(t *testing.T) {
		u := user()
		for _, f := range []string{"crash-after-half", "skip-end-transaction", "slow-local-tx=1"} {
			if a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": f}); a.status != 422 {
				t.Errorf("X-Fault %s = %+v, want 422", f, a)
			}
		}
		if got := s.ordersOf(t, u); len(got) != 0 {
			t.Fatalf("orders written for refused faults: %v", got)
		}
	})

	t.Run("invariants", func(t *testing.T) {
		r, err := invariants.WaitSettled(context.Background(), s.ordersDB, s.cartsDB, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("checker:\n%s", r)
		if !r.OK() {
			t.Fatal("invariants violated")
		}
	})
}

// The chaos run of chaos_test.go in outbox mode, with the same kills: each kind of process twice.
// Orders keep being accepted while the broker is down; none may be refused for it.
func TestOutboxKillEverythingUnderLoad(t *testing.T) {
	killEverythingUnderLoad(t, "outbox")
}
