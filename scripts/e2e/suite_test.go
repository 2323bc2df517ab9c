package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"rmqtx/e2e/invariants"
	"rmqtx/pkg/testenv"
)

// Each failure window of docs/design.md, injected through the REST API with X-Fault, against real
// processes. Every scenario uses its own user, so the cart arithmetic (I3) is exact; at the end the
// invariant checker judges both databases.
func TestFailureWindows(t *testing.T) {
	s := newSuite(t)
	start := map[string]int{"A-1": 5, "B-2": 2}
	order := map[string]int{"A-1": 2}
	after := map[string]int{"A-1": 3, "B-2": 2}
	scenario := 0
	user := func() string { scenario++; return fmt.Sprintf("u%d-%s", scenario, testenv.Unique("e2e")) }

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
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("crash-after-half", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		before := s.count(t, s.ordersDB, "SELECT COUNT(*) FROM tx_log WHERE outcome = 'rolled_back'")
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "crash-after-half"})
		if a.err == nil {
			t.Fatalf("got an HTTP answer %+v from a process that should have died", a)
		}
		s.orders[0].waitExit(t, 10*time.Second)
		t0 := time.Now()
		s.orders[0].start(t) // an operator restarts it
		// The broker checks the half message back; whoever answers finds no tx_log row and claims
		// the order ID as rolled back.
		testenv.Eventually(t, 90*time.Second, "the check-back's rollback", func() bool {
			return s.count(t, s.ordersDB, "SELECT COUNT(*) FROM tx_log WHERE outcome = 'rolled_back'") == before+1
		})
		t.Logf("crash -> check-back rolled back in %v (restart included)", time.Since(t0).Round(time.Millisecond))
		if got := s.ordersOf(t, u); len(got) != 0 {
			t.Fatalf("orders of %s = %v, want none", u, got)
		}
		s.cartStays(t, u, start, 3*time.Second)
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
		// The order is durable though nobody was told; the other instance answers the check-back
		// even before this one is back.
		if got := s.ordersOf(t, u); len(got) != 1 {
			t.Fatalf("orders of %s = %v, want the committed one", u, got)
		}
		took := s.waitCart(t, u, after, t0, 90*time.Second)
		t.Logf("crash after local commit -> cart updated in %v (check-back by the live instance)", took.Round(time.Millisecond))
		s.orders[0].start(t)
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("skip-end-transaction", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		checksBefore := s.orders[0].metric(t, `order_checkbacks_total{answer="commit"}`) +
			s.orders[1].metric(t, `order_checkbacks_total{answer="commit"}`)
		a := place(s.orders[1], orderBody(u, order), map[string]string{"X-Fault": "skip-end-transaction"})
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		took := s.waitCart(t, u, after, t0, 90*time.Second)
		t.Logf("skip-end-transaction -> cart updated in %v", took.Round(time.Millisecond))
		// The cart changed because a check-back committed the message, not because an answer was
		// sent: this order's timeline has the withheld answer and a check-back answering commit,
		// and no answer sent; and the producers counted a commit check-back.
		steps := func(step, detail string) int {
			return s.count(t, s.ordersDB, "SELECT COUNT(*) FROM order_timeline WHERE order_id = ? AND step = ? AND detail LIKE ?",
				a.order.OrderID, step, detail)
		}
		testenv.Eventually(t, 30*time.Second, "the withheld answer and the check-back in the order's timeline", func() bool {
			return steps("check_back", "commit:%") >= 1 && steps("answer_withheld", "%") == 1
		})
		if n := steps("answer_sent", "%"); n != 0 {
			t.Errorf("answer_sent steps of %s = %d, want 0: the fault did not withhold the answer", a.order.OrderID, n)
		}
		checks := s.orders[0].metric(t, `order_checkbacks_total{answer="commit"}`) +
			s.orders[1].metric(t, `order_checkbacks_total{answer="commit"}`) - checksBefore
		if checks < 1 {
			t.Errorf("commit check-backs during the scenario = %v, want at least 1", checks)
		}
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("fail-local-tx", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "fail-local-tx"})
		if a.status != 500 || a.code != "order_not_placed" {
			t.Fatalf("POST = %+v, want 500 order_not_placed", a)
		}
		if got := s.ordersOf(t, u); len(got) != 0 {
			t.Fatalf("orders of %s = %v, want none", u, got)
		}
		// Past the broker's transaction timeout and a few check rounds: nothing arrives.
		s.cartStays(t, u, start, 8*time.Second)
	})

	t.Run("slow-local-tx longer than the transaction timeout", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		checksBefore := s.orders[0].metric(t, `order_checkbacks_total{answer="commit"}`) +
			s.orders[1].metric(t, `order_checkbacks_total{answer="commit"}`)
		t0 := time.Now()
		// 8 s > transactionTimeOut (3 s) + one check interval (2 s): the check-back arrives while
		// the local transaction holds its tx_log row, waits for it, and answers commit.
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "slow-local-tx=8"})
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		took := s.waitCart(t, u, after, t0, 60*time.Second)
		checks := s.orders[0].metric(t, `order_checkbacks_total{answer="commit"}`) +
			s.orders[1].metric(t, `order_checkbacks_total{answer="commit"}`) - checksBefore
		t.Logf("slow local tx: answered after %v, cart updated after %v, commit check-backs during it: %v",
			time.Since(t0).Round(time.Millisecond), took.Round(time.Millisecond), checks)
		if checks < 1 {
			t.Errorf("no check-back reached the producers while the local transaction was slow")
		}
		// Both the producer's commit and the check-back's commit may reach the broker; whatever
		// it delivers, the cart changes once.
		s.cartStays(t, u, after, 3*time.Second)
		// However many copies the check rounds made, the consumer saw one message ID: the
		// producer's, kept through the broker's re-puts.
		var deliveries, ids int
		testenv.Eventually(t, 10*time.Second, "the order's deliveries recorded", func() bool {
			err := s.cartsDB.QueryRow("SELECT COUNT(*), COUNT(DISTINCT msg_id) FROM order_deliveries WHERE order_id = ?",
				a.order.OrderID).Scan(&deliveries, &ids)
			return err == nil && deliveries > 0
		})
		t.Logf("slow local tx: %d deliveries of the order, %d message ID(s)", deliveries, ids)
		if ids != 1 {
			t.Errorf("the order's deliveries carried %d message IDs, want 1", ids)
		}
	})

	t.Run("cart-fail-once", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		retried := s.cart.metric(t, `cart_messages_total{outcome="retried"}`)
		t0 := time.Now()
		a := place(s.orders[1], orderBody(u, order), map[string]string{"X-Fault": "cart-fail-once"})
		if a.status != 201 {
			t.Fatalf("POST = %+v", a)
		}
		took := s.waitCart(t, u, after, t0, 60*time.Second)
		t.Logf("first delivery failed -> retried and applied in %v", took.Round(time.Millisecond))
		if got := s.cart.metric(t, `cart_messages_total{outcome="retried"}`); got < retried+1 {
			t.Errorf("retried = %v, want > %v", got, retried)
		}
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("cart-crash-after-commit", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "cart-crash-after-commit"})
		if a.status != 201 {
			t.Fatalf("POST = %+v", a)
		}
		s.cart.waitExit(t, 30*time.Second)
		s.cart.start(t)
		took := s.waitCart(t, u, after, t0, 60*time.Second)
		// The delivery was never acknowledged, so the broker delivers it again: the restarted
		// cart-service must see it as a duplicate and leave the cart alone.
		testenv.Eventually(t, 60*time.Second, "the redelivery, acknowledged as a duplicate", func() bool {
			return s.cart.metric(t, `cart_messages_total{outcome="duplicate"}`) >= 1
		})
		t.Logf("cart crash after commit: cart correct %v after the order, redelivery acknowledged as duplicate", took.Round(time.Millisecond))
		s.cartStays(t, u, after, 2*time.Second)
	})

	t.Run("Idempotency-Key across instances", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		key := map[string]string{"Idempotency-Key": "k-" + u}
		first := place(s.orders[0], orderBody(u, order), key)
		again := place(s.orders[1], orderBody(u, order), key)
		if first.status != 201 || again.status != 201 || first.order.OrderID != again.order.OrderID {
			t.Fatalf("first %+v, replay on the other instance %+v; want the same order", first, again)
		}
		conflict := place(s.orders[1], orderBody(u, map[string]int{"A-1": 1}), key)
		if conflict.status != 409 {
			t.Fatalf("same key, other body = %+v, want 409", conflict)
		}
		s.waitCart(t, u, after, time.Now(), 30*time.Second)
		s.cartStays(t, u, after, 2*time.Second)
		if got := s.ordersOf(t, u); len(got) != 1 {
			t.Fatalf("orders = %d, want 1", len(got))
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		u := user()
		s.fill(t, u, start)
		bad := []struct {
			body    string
			headers map[string]string
			status  int
		}{
			{`{"user_id":"` + u + `","items":[{"sku":"A-1","quantity":2,"unit_price_cents":1}]`, nil, 400},
			{`{"user_id":"` + u + `","items":[{"sku":"A-1","quantity":2,"unit_price_cents":1}],"x":1}`, nil, 400},
			{`{"user_id":"` + u + `","items":[]}`, nil, 422},
			{`{"user_id":"` + u + `","items":[{"sku":"A-1","quantity":0,"unit_price_cents":1}]}`, nil, 422},
			{`{"user_id":"` + u + `","items":[{"sku":"A-1","quantity":-2,"unit_price_cents":1}]}`, nil, 422},
			{`{"user_id":"` + u + `","items":[{"sku":"A-1","quantity":1,"unit_price_cents":1},{"sku":"A-1","quantity":1,"unit_price_cents":1}]}`, nil, 422},
			{orderBody(u, order), map[string]string{"X-Fault": "no-such-fault"}, 422},
		}
		for i, b := range bad {
			for _, inst := range s.orders {
				if a := place(inst, b.body, b.headers); a.status != b.status {
					t.Errorf("bad request %d on %s = %+v, want %d", i, inst.name, a, b.status)
				}
			}
		}
		if got := s.ordersOf(t, u); len(got) != 0 {
			t.Fatalf("orders written for bad input: %v", got)
		}
		s.cartStays(t, u, start, 3*time.Second)
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

	t.Run("graceful shutdown on SIGTERM", func(t *testing.T) {
		for _, p := range append(append([]*proc{}, s.orders...), s.cart) {
			p.stop(t)
			if !p.exited() {
				t.Fatalf("%s still running", p.name)
			}
			if _, err := http.Get(p.url("/healthz")); err == nil {
				t.Fatalf("%s still answers after SIGTERM", p.name)
			}
		}
	})
}
