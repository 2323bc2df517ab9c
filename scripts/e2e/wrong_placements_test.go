package e2e

// The negative control: each wrong way of placing an order (order-service/internal/order/wrong.go),
// run as a real process with the fault that breaks it, is caught by the invariant checker, which
// names the offending order; the right way, given the same fault at the same moment, holds. A
// checker that never fails proves nothing: this is where it is seen to fail.

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"rmqtx/e2e/invariants"
	"rmqtx/pkg/testenv"
)

// wrongCase is one wrong placement and the fault that breaks it.
type wrongCase struct {
	placement string
	fault     string
	// broken is what the checker must report for the wrong way's order: "missing" (I1, a lost
	// event) or "phantom" (I2, the cart changed for an order that does not exist); "none" for a
	// fault the wrong way survives, shown so that the README's account of why stays true.
	broken string
	// restart brings the wrong instance back after it crashed: the broken answer comes from the
	// restarted process.
	restart bool
	// rightDelivers: with this fault the right way's order exists and reaches the cart; otherwise
	// it never exists and the cart is untouched.
	rightDelivers bool
	// shown, if set, is the wrong instance's check-back answer that shows the mechanism, and how
	// many of them to wait for.
	shown      string
	shownTimes int
}

var wrongCases = []wrongCase{
	{placement: "save-then-send", fault: "crash-after-local-commit", broken: "missing", rightDelivers: true},
	{placement: "send-then-save", fault: "fail-local-tx", broken: "phantom"},
	{placement: "naive-check-back", fault: "slow-local-tx=8,skip-end-transaction", broken: "missing", rightDelivers: true,
		shown: "rollback", shownTimes: 1},
	// A slow local transaction alone does not break it on RocketMQ 5.3.3: the check-back answers
	// rollback for the re-put copy, but the producer's late COMMIT commits the original half
	// message. It takes a lost commit as well (the case above).
	{placement: "naive-check-back", fault: "slow-local-tx=8", broken: "none", rightDelivers: true,
		shown: "rollback", shownTimes: 1},
	{placement: "memory-check-back", fault: "crash-after-half", broken: "phantom", restart: true,
		shown: "commit", shownTimes: 1},
	{placement: "no-check-back", fault: "skip-end-transaction", broken: "missing", rightDelivers: true,
		shown: "unknown", shownTimes: 2},
}

func TestWrongPlacements(t *testing.T) {
	needSuiteBroker(t)
	ordersDSN, cartsDSN := testenv.NewDatabase(t, "wrong_orders"), testenv.NewDatabase(t, "wrong_carts")
	topic := testenv.Unique("wrong")
	env := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"ROCKETMQ_NAMESRV":     "127.0.0.1:" + e2eNamesrvPort,
			"ROCKETMQ_BROKER_ADDR": "127.0.0.1:" + e2eBrokerPort,
			"ROCKETMQ_TOPIC":       topic,
			"FAULT_INJECTION":      "on",
			"LOG_LEVEL":            "info",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// One cart-service and one right-way order-service for every case; each wrong placement gets an
	// instance, and a producer group, of its own: a check-back goes to any live member of the
	// group that sent the half message, and a right-way member would answer the wrong one's.
	cart := newProc("cart", cartBin, testenv.FreeAddr(t), env(map[string]string{"MYSQL_DSN": cartsDSN, "ROCKETMQ_GROUP": testenv.Unique("wrong_cg")}))
	right := newProc("right", orderBin, testenv.FreeAddr(t), env(map[string]string{"MYSQL_DSN": ordersDSN,
		"ROCKETMQ_GROUP": testenv.Unique("right_pg"), "INSTANCE_NAME": "right-way"}))
	t.Cleanup(func() { right.stop(t); cart.stop(t) })
	right.start(t)
	cart.start(t)
	s := &suite{orders: []*proc{right}, cart: cart, ordersDB: openDB(t, ordersDSN), cartsDB: openDB(t, cartsDSN)}
	checkinv := buildCheckinv(t)

	caught := map[string][]string{} // the wrong ways' orders reported so far, by kind
	start, order, after := map[string]int{"A-1": 5, "B-2": 2}, map[string]int{"A-1": 2}, map[string]int{"A-1": 3, "B-2": 2}
	for _, c := range wrongCases {
		t.Run(c.placement+" "+c.fault, func(t *testing.T) {
			wrong := newProc("wrong-"+c.placement, orderBin, testenv.FreeAddr(t), env(map[string]string{"MYSQL_DSN": ordersDSN,
				"ROCKETMQ_GROUP": testenv.Unique("wrong_pg"), "PLACEMENT": c.placement, "INSTANCE_NAME": "wrong-way"}))
			defer wrong.stop(t)
			wrong.start(t)
			uw, ur := testenv.Unique("wrong"), testenv.Unique("right")
			s.fill(t, uw, start)
			s.fill(t, ur, start)

			// The same order and fault, at the same moment, to the wrong way and to the right way.
			var aw, ar answer
			var wg sync.WaitGroup
			wg.Add(2)
			t0 := time.Now()
			go func() {
				defer wg.Done()
				aw = place(wrong, orderBody(uw, order), map[string]string{"X-Fault": c.fault})
			}()
			go func() {
				defer wg.Done()
				ar = place(right, orderBody(ur, order), map[string]string{"X-Fault": c.fault})
			}()
			wg.Wait()
			t.Logf("X-Fault: %s\n  wrong (PLACEMENT=%s) answered %s\n  right (transactional) answered %s", c.fault, c.placement, describe(aw), describe(ar))
			if aw.err != nil {
				wrong.waitExit(t, 10*time.Second)
				if c.restart {
					wrong.start(t)
				}
			}
			if ar.err != nil {
				right.waitExit(t, 10*time.Second)
				right.start(t)
			}

			// The right way holds.
			if c.rightDelivers {
				took := s.waitCart(t, ur, after, t0, 60*time.Second)
				t.Logf("right way: the cart was updated %v after the request", took.Round(time.Millisecond))
			}
			// The wrong way shows its mechanism (a check-back answered its wrong way), then breaks.
			if c.shown != "" {
				series := fmt.Sprintf("order_checkbacks_total{answer=%q}", c.shown)
				testenv.Eventually(t, 90*time.Second, c.placement+" answering "+c.shown, func() bool {
					return wrong.metric(t, series) >= float64(c.shownTimes)
				})
				t.Logf("wrong way: %d check-back(s) answered %s, %v after the request", c.shownTimes, c.shown, time.Since(t0).Round(time.Millisecond))
			}
			var wrongID string
			switch c.broken {
			case "phantom":
				took := s.waitCart(t, uw, after, t0, 60*time.Second)
				wrongID = s.single(t, s.cartsDB, "SELECT order_id FROM processed_orders WHERE user_id = ?", uw)
				t.Logf("wrong way: the cart of %s was decremented %v after the request, for order %s", uw, took.Round(time.Millisecond), wrongID)
				if n := s.count(t, s.ordersDB, "SELECT COUNT(*) FROM orders WHERE order_id = ?", wrongID); n != 0 {
					t.Fatalf("order %s exists; a phantom is an effect without an order", wrongID)
				}
			case "none":
				took := s.waitCart(t, uw, after, t0, 60*time.Second)
				wrongID = s.single(t, s.ordersDB, "SELECT order_id FROM orders WHERE user_id = ?", uw)
				t.Logf("wrong way held: order %s reached its cart %v after the request, although a check-back answered rollback during its local transaction",
					wrongID, took.Round(time.Millisecond))
			case "missing":
				wrongID = s.single(t, s.ordersDB, "SELECT order_id FROM orders WHERE user_id = ?", uw)
				if got := s.cartOf(t, uw); !equal(got, start) {
					t.Fatalf("cart of %s = %v: the wrong way's event arrived; want it lost (%v)", uw, got, start)
				}
				t.Logf("wrong way: order %s exists and its cart is untouched when the right way's was updated", wrongID)
			}
			if !c.rightDelivers {
				// The right way's order never existed: wait for the outcome that settles it, then
				// the cart must be untouched.
				switch c.fault {
				case "crash-after-half":
					testenv.Eventually(t, 90*time.Second, "the right way's check-back rolling back", func() bool {
						return right.metric(t, `order_checkbacks_total{answer="rollback"}`) >= 1
					})
				case "fail-local-tx":
					if ar.status != 500 {
						t.Fatalf("right way answered %s, want 500", describe(ar))
					}
				}
				if got := s.cartOf(t, ur); !equal(got, start) {
					t.Fatalf("right way: cart of %s = %v, want it untouched (%v)", ur, got, start)
				}
				if n := s.count(t, s.ordersDB, "SELECT COUNT(*) FROM orders WHERE user_id = ?", ur); n != 0 {
					t.Fatalf("right way: %d orders of %s, want none", n, ur)
				}
			}

			// The checker: exactly this case's wrong order is added to the violations, under the
			// invariant it breaks; the right way's order is in none.
			if c.broken != "none" {
				caught[c.broken] = append(caught[c.broken], wrongID)
				slices.Sort(caught[c.broken])
			}
			r, err := invariants.Check(context.Background(), s.ordersDB, s.cartsDB)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Missing, caught["missing"]) || !slices.Equal(r.Phantom, caught["phantom"]) {
				t.Fatalf("checker: missing %v phantom %v; want missing %v phantom %v\n%s",
					r.Missing, r.Phantom, caught["missing"], caught["phantom"], r)
			}
			// Nothing else: every cart, the right way's included, holds what was put in minus
			// what the applied orders took (I3), and tx_log agrees with the orders (I4).
			if len(r.WrongUser)+len(r.Application)+len(r.Cart)+len(r.Disagreeing) != 0 {
				t.Fatalf("checker reports more than the wrong way's order:\n%s", r)
			}
			out, code := runCheckinv(t, checkinv, ordersDSN, cartsDSN)
			switch {
			case c.broken == "none" && strings.Contains(out, wrongID):
				t.Fatalf("checkinv lists %s, which held:\n%s", wrongID, out)
			case c.broken != "none" && (code != 1 || !strings.Contains(out, wrongID)):
				t.Fatalf("checkinv exited %d, want 1 listing %s:\n%s", code, wrongID, out)
			}
			if ar.order.OrderID != "" && strings.Contains(out, ar.order.OrderID) {
				t.Fatalf("checkinv lists the right way's order %s:\n%s", ar.order.OrderID, out)
			}
			t.Logf("caught %v after the request: checkinv exit 1\n%s", time.Since(t0).Round(time.Millisecond), out)
		})
	}
}

func describe(a answer) string {
	if a.err != nil {
		return "nothing: the process died"
	}
	if a.code != "" {
		return fmt.Sprintf("%d %s", a.status, a.code)
	}
	return fmt.Sprintf("%d %s (order %s)", a.status, a.order.Status, a.order.OrderID)
}

// single returns the one value a query finds, failing unless there is exactly one row.
func (s *suite) single(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil || len(got) != 1 {
		t.Fatalf("%s %v: %v, %v; want exactly one row", query, args, got, err)
	}
	return got[0]
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func buildCheckinv(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "checkinv")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/checkinv")
	cmd.Dir = filepath.Join(root, "scripts", "e2e")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build checkinv: %v\n%s", err, out)
	}
	return bin
}

// runCheckinv runs the checker as a user would, judging at once (-wait 0s: the test waited for
// what it needed), and returns its output and exit code.
func runCheckinv(t *testing.T, bin, ordersDSN, cartsDSN string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, "-wait", "0s")
	cmd.Env = []string{"ORDERS_DSN=" + ordersDSN, "CARTS_DSN=" + cartsDSN}
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return string(out), exit.ExitCode()
	} else if err != nil {
		t.Fatalf("checkinv: %v", err)
	}
	return string(out), 0
}

// The wrong-way scenario scripts (scripts/scenarios/wrong/) against a local suite of their own:
// each must catch its wrong way and see the right way hold, or exit non-zero. They run on their own
// databases, because each leaves its wrong way's damage behind for the checker to list.
func TestWrongScenarioScripts(t *testing.T) {
	// The discard comes about 76 s after the request; the script shows it when run by hand.
	env := scriptSuiteEnv(t, "wrong_scripts", "WAIT_FOR_DISCARD=off")
	run := func(t *testing.T, script string) {
		t.Helper()
		t0 := time.Now()
		cmd := exec.Command(filepath.Join(root, "scripts", script))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, tail(string(out), 80))
		}
		t.Logf("%s: ok in %v\n%s", script, time.Since(t0).Round(time.Second), tail(string(out), 6))
	}
	run(t, "suite-up.sh")
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(root, "scripts", "suite-down.sh"))
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("suite-down.sh: %v\n%s", err, out)
		}
	})
	for _, c := range wrongCases {
		if c.broken == "none" {
			continue // a fault the placement survives; its script shows the one that breaks it
		}
		t.Run(c.placement, func(t *testing.T) { run(t, filepath.Join("scenarios", "wrong", c.placement+".sh")) })
	}
}
