package e2e

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"rmqtx/e2e/invariants"
	"rmqtx/pkg/testenv"
)

// The consumers that are wrong on purpose (cart-service/internal/cart/wrong.go), each run with the
// fault that breaks it, against real processes: the invariant checker must name the order and the
// exact violation. Then the right consumer meets the same fault and the checker finds nothing.
// One suite for all: cart-service is restarted with another CONSUMER between runs, and each run
// has its own user, to which the checker is narrowed (a wrong run's damage stays in the databases).
func TestWrongConsumers(t *testing.T) {
	s := newSuite(t)
	run := 0
	user := func() string { run++; return testenv.Unique("wc" + string(rune('a'+run))) }
	start := map[string]int{"A-1": 5, "B-2": 2}
	order := map[string]int{"A-1": 2}

	// check narrows the checker to one user and waits up to wait for its orders to be applied.
	check := func(t *testing.T, u string, wait time.Duration) invariants.Report {
		t.Helper()
		r, err := invariants.WaitSettled(context.Background(), s.ordersDB, s.cartsDB, wait, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("checker, user %s:\n%s", u, r)
		return r
	}
	passes := func(t *testing.T, u string) {
		t.Helper()
		if r := check(t, u, 30*time.Second); !r.OK() {
			t.Fatalf("the right consumer broke an invariant")
		}
	}
	// names requires offenders to be exactly one line naming id and saying what.
	names := func(t *testing.T, kind string, offenders []string, id, what string) {
		t.Helper()
		if len(offenders) != 1 || !strings.Contains(offenders[0], id) || !strings.Contains(offenders[0], what) {
			t.Fatalf("%s = %q, want one offender naming order %s: %q", kind, offenders, id, what)
		}
	}

	t.Run("dedup-by-message-id, resend-event: applied twice", func(t *testing.T) {
		s.cart.restartWith(t, "CONSUMER", "dedup-by-message-id")
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "resend-event"})
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		took := s.waitCart(t, u, map[string]int{"A-1": 1, "B-2": 2}, t0, 30*time.Second)
		t.Logf("order -> applied twice in %v", took.Round(time.Millisecond))
		s.wantSteps(t, a.order.OrderID, "applied", "applied_twice")
		r := check(t, u, 0)
		names(t, "I3 application", r.Application, a.order.OrderID, "applied more than once")
		if len(r.Missing)+len(r.Phantom)+len(r.WrongUser)+len(r.Cart)+len(r.Disagreeing) != 0 {
			t.Errorf("other violations reported: %+v", r)
		}
		t.Logf("wrong way shown in %v", time.Since(t0).Round(time.Millisecond))
	})

	t.Run("correct, resend-event: a duplicate", func(t *testing.T) {
		s.cart.restartWith(t, "CONSUMER", "correct")
		u := user()
		s.fill(t, u, start)
		dups := s.cart.metric(t, `cart_messages_total{outcome="duplicate"}`)
		a := place(s.orders[0], orderBody(u, order), map[string]string{"X-Fault": "resend-event"})
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		s.waitCart(t, u, map[string]int{"A-1": 3, "B-2": 2}, time.Now(), 30*time.Second)
		testenv.Eventually(t, 30*time.Second, "the second message acknowledged as a duplicate", func() bool {
			return s.cart.metric(t, `cart_messages_total{outcome="duplicate"}`) >= dups+1
		})
		s.cartStays(t, u, map[string]int{"A-1": 3, "B-2": 2}, time.Second)
		passes(t, u)
	})

	t.Run("ack-before-commit, cart-crash-before-apply: acknowledged, never applied", func(t *testing.T) {
		s.cart.restartWith(t, "CONSUMER", "ack-before-commit")
		u := user()
		s.fill(t, u, start)
		t0 := time.Now()
		a := place(s.orders[1], orderBody(u, order), map[string]string{"X-Fault": "cart-crash-before-apply"})
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		s.cart.waitExit(t, 30*time.Second)
		s.cart.start(t) // an operator restarts it, in the same mode
		s.wantSteps(t, a.order.OrderID, "acknowledged_never_applied")
		// The right consumer, below, has the order applied about a second after its restart.
		r := check(t, u, 10*time.Second)
		if !slices.Equal(r.Missing, []string{a.order.OrderID}) {
			t.Fatalf("missing = %q, want exactly order %s", r.Missing, a.order.OrderID)
		}
		if len(r.Phantom)+len(r.WrongUser)+len(r.Application)+len(r.Cart)+len(r.Disagreeing) != 0 {
			t.Errorf("other violations reported: %+v", r)
		}
		if got := s.cartOf(t, u); !equal(got, start) {
			t.Errorf("cart = %v, want it untouched %v", got, start)
		}
		t.Logf("wrong way shown in %v (10 s of it the checker's wait)", time.Since(t0).Round(time.Millisecond))
	})

	t.Run("correct, cart-crash-before-apply: applied after the restart", func(t *testing.T) {
		s.cart.restartWith(t, "CONSUMER", "correct")
		u := user()
		s.fill(t, u, start)
		a := place(s.orders[1], orderBody(u, order), map[string]string{"X-Fault": "cart-crash-before-apply"})
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		s.cart.waitExit(t, 30*time.Second)
		t0 := time.Now()
		s.cart.start(t)
		took := s.waitCart(t, u, map[string]int{"A-1": 3, "B-2": 2}, t0, 60*time.Second)
		t.Logf("crash before apply -> applied %v after the restart began", took.Round(time.Millisecond))
		s.wantSteps(t, a.order.OrderID, "crashed_before_apply", "applied")
		s.cartStays(t, u, map[string]int{"A-1": 3, "B-2": 2}, time.Second)
		passes(t, u)
	})

	t.Run("delete-lines: what the order did not take is wiped", func(t *testing.T) {
		s.cart.restartWith(t, "CONSUMER", "delete-lines")
		u := user()
		s.fill(t, u, map[string]int{"A-1": 3})
		t0 := time.Now()
		a := place(s.orders[0], orderBody(u, map[string]int{"A-1": 1}), nil)
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		s.waitCart(t, u, map[string]int{}, t0, 30*time.Second)
		s.wantSteps(t, a.order.OrderID, "applied_wiped_additions")
		r := check(t, u, 0)
		names(t, "I3 application", r.Application, a.order.OrderID, "ordered 1, the cart went from 3 to 0 (want 2)")
		if len(r.Missing)+len(r.Phantom)+len(r.WrongUser)+len(r.Cart)+len(r.Disagreeing) != 0 {
			t.Errorf("other violations reported: %+v", r)
		}
		t.Logf("wrong way shown in %v", time.Since(t0).Round(time.Millisecond))
	})

	t.Run("correct, the same order: the rest stays", func(t *testing.T) {
		s.cart.restartWith(t, "CONSUMER", "correct")
		u := user()
		s.fill(t, u, map[string]int{"A-1": 3})
		a := place(s.orders[0], orderBody(u, map[string]int{"A-1": 1}), nil)
		if a.status != 201 {
			t.Fatalf("POST = %+v, want 201", a)
		}
		s.waitCart(t, u, map[string]int{"A-1": 2}, time.Now(), 30*time.Second)
		s.cartStays(t, u, map[string]int{"A-1": 2}, time.Second)
		passes(t, u)
	})
}

// restartWith stops the process gracefully, sets one variable of its environment and starts it
// again.
func (p *proc) restartWith(t *testing.T, key, value string) {
	t.Helper()
	p.stop(t)
	p.mu.Lock()
	p.env = slices.DeleteFunc(p.env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	p.env = append(p.env, key+"="+value)
	p.mu.Unlock()
	p.start(t)
	if got := p.metric(t, `cart_consumer_mode{mode="`+value+`"}`); got != 1 {
		t.Fatalf("%s runs without cart_consumer_mode{mode=%q} 1 on /metrics", p.name, value)
	}
}

// wantSteps waits until cart-service's timeline of the order has these steps, in this order, among
// others (steps are written after the fact, in batches, and one queued just before a crash dies
// with the process).
func (s *suite) wantSteps(t *testing.T, orderID string, want ...string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "cart-side timeline steps "+strings.Join(want, ", "), func() bool {
		resp, err := client.Get(s.cart.url("/orders/" + orderID + "/timeline"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var tl struct {
			Steps []struct {
				Step   string `json:"step"`
				Detail string `json:"detail"`
			} `json:"steps"`
		}
		if json.Unmarshal(raw, &tl) != nil {
			return false
		}
		next := 0
		for _, st := range tl.Steps {
			if next < len(want) && st.Step == want[next] {
				next++
			}
		}
		return next == len(want)
	})
}
