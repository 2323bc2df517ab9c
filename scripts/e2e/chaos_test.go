package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"rmqtx/e2e/invariants"
	"rmqtx/pkg/testenv"
)

// placed is what the load generator saw for one request.
type placed struct {
	user  string
	items map[string]int
	a     answer
}

// Hundreds of orders from tens of users, concurrently, while an order-service instance, the
// cart-service and the broker are each killed with SIGKILL at random moments and restarted. At the
// end: no order the API confirmed is lost, nothing exists that the API said failed, every order is
// applied to its cart exactly once, and no cart change exists for an order that does not exist.
func TestKillEverythingUnderLoad(t *testing.T) {
	s := newSuite(t)
	const (
		users       = 30
		orders      = 480
		rate        = 8 // orders per second: the load lasts about a minute
		concurrency = 16
		loadFor     = 90 * time.Second // the load stops at whichever of orders / loadFor comes first
	)
	skus := []string{"A", "B", "C", "D", "E"}
	const stock = 10_000 // large enough that no cart line reaches zero: the arithmetic stays exact

	userIDs := make([]string, users)
	for i := range userIDs {
		userIDs[i] = fmt.Sprintf("chaos%02d-%s", i, testenv.Unique("u"))
		full := map[string]int{}
		for _, sku := range skus {
			full[sku] = stock
		}
		s.fill(t, userIDs[i], full)
	}

	// The load: a steady rate, bounded in count and time, so that it spans all the kills below.
	var (
		mu      sync.Mutex
		results []placed
		wg      sync.WaitGroup
	)
	tokens := make(chan struct{})
	go func() {
		defer close(tokens)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		stop := time.After(loadFor)
		for range orders {
			select {
			case <-tick.C:
				tokens <- struct{}{}
			case <-stop:
				return
			}
		}
	}()
	loadDone := make(chan struct{})
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				u := userIDs[rand.IntN(users)]
				items := map[string]int{}
				for _, sku := range skus {
					if rand.IntN(3) == 0 {
						items[sku] = 1 + rand.IntN(3)
					}
				}
				if len(items) == 0 {
					items[skus[rand.IntN(len(skus))]] = 1
				}
				a := place(s.orders[rand.IntN(2)], orderBody(u, items), nil)
				mu.Lock()
				results = append(results, placed{user: u, items: items, a: a})
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(loadDone) }()

	// The chaos: each kind of kill at least once, in a random order, at random moments, each
	// victim restarted as an operator (or an orchestrator) would.
	kills := map[string]int{}
	victims := []string{"order-service", "cart-service", "broker", "order-service", "cart-service", "broker"}
	rand.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	var lastKill time.Time
	for _, v := range victims {
		time.Sleep(time.Duration(2000+rand.IntN(3000)) * time.Millisecond)
		switch v {
		case "order-service":
			p := s.orders[rand.IntN(2)]
			p.kill(t)
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
			p.start(t)
		case "cart-service":
			s.cart.kill(t)
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
			s.cart.start(t)
		case "broker":
			killBroker(t)
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
			restartBroker(t)
		}
		kills[v]++
		lastKill = time.Now()
		t.Logf("killed and restarted %s", v)
	}
	<-loadDone

	// Settle: every committed order reaches its cart. Check-backs after a broker restart wait for
	// the producers' next heartbeat (up to 30 s), so this may take a while.
	r, err := invariants.WaitSettled(context.Background(), s.ordersDB, s.cartsDB, 180*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	settled := time.Since(lastKill)

	// What the API said, against what the database holds.
	inDB := map[string]bool{}
	rows, err := s.ordersDB.Query("SELECT order_id FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		inDB[id] = true
	}
	rows.Close()

	byStatus := map[string]int{}
	confirmed := map[string]bool{}
	var lost, unanswered int
	for _, p := range results {
		switch {
		case p.a.err != nil:
			byStatus["no answer (process killed)"]++
			unanswered++
		case p.a.status == 201 || p.a.status == 202:
			byStatus[fmt.Sprint(p.a.status)]++
			confirmed[p.a.order.OrderID] = true
			if p.a.status == 201 && !inDB[p.a.order.OrderID] {
				lost++
				t.Errorf("order %s answered 201 but does not exist", p.a.order.OrderID)
			}
		default:
			byStatus[fmt.Sprintf("%d %s", p.a.status, p.a.code)]++
		}
	}
	// Orders that exist without a 201/202 can only come from requests that got no answer.
	var unconfirmed int
	for id := range inDB {
		if !confirmed[id] {
			unconfirmed++
		}
	}
	if unconfirmed > unanswered {
		t.Errorf("%d orders exist that no request was told about, but only %d requests went unanswered: some 4xx/5xx answer lied", unconfirmed, unanswered)
	}

	// I3: each cart = stock minus what its user's existing orders took, each exactly once.
	want := map[string]map[string]int{}
	for _, u := range userIDs {
		want[u] = map[string]int{}
		for _, sku := range skus {
			want[u][sku] = stock
		}
	}
	rows, err = s.ordersDB.Query("SELECT o.user_id, i.sku, i.quantity FROM orders o JOIN order_items i ON i.order_id = o.order_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u, sku string
		var q int
		rows.Scan(&u, &sku, &q)
		want[u][sku] -= q
	}
	rows.Close()
	var wrongCarts int
	for _, u := range userIDs {
		if got := s.cartOf(t, u); !equal(got, want[u]) {
			wrongCarts++
			t.Errorf("cart of %s = %v, want %v", u, got, want[u])
		}
	}

	statuses := make([]string, 0, len(byStatus))
	for k, v := range byStatus {
		statuses = append(statuses, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(statuses)
	t.Logf("requests: %d  answers: %v", len(results), statuses)
	t.Logf("kills: %v", kills)
	t.Logf("orders in db: %d  applied: %d  lost: %d  phantom: %d  tx_log disagreements: %d  carts wrong (double or missing decrement): %d",
		r.Orders, r.Applied, lost, len(r.Phantom), len(r.Disagreeing), wrongCarts)
	t.Logf("last kill -> all orders applied: %v", settled.Round(time.Millisecond))
	t.Logf("checker:\n%s", r)
	if !r.OK() {
		t.Fatal("invariants violated")
	}
	if kills["order-service"] == 0 || kills["cart-service"] == 0 || kills["broker"] == 0 {
		t.Fatalf("not every kind of process was killed: %v", kills)
	}
	if byStatus["201"] < 50 {
		t.Fatalf("only %d orders were created: the run proves little", byStatus["201"])
	}
}
