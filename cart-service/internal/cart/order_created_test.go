package cart_test

// These tests call the consumer callback directly, as the push consumer would, against the real
// MariaDB (through dbProxy when a test needs the database to fail). The wiring to the real broker
// is tested in cmd/cart-service.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
)

func TestSameEventTwiceChangesTheCartOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.setCart(t, "u1", map[string]int{"A": 5, "B": 1})
	ev := order("o1", "u1", item("A", 2), item("B", 1))

	// Two deliveries of one event under two message IDs, as a redelivery or re-put brings it.
	for i := range 2 {
		r, _ := f.consume(eventMessage(t, ev, "", int32(i)))
		wantResult(t, fmt.Sprintf("delivery %d", i+1), r, consumer.ConsumeSuccess)
	}
	if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
	want := map[string]int{cart.OutcomeApplied: 1, cart.OutcomeDuplicate: 1, cart.OutcomeRejected: 0, cart.OutcomeRetried: 0}
	if diff := cmp.Diff(want, f.counts()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	// One observation: the duplicate is not a second arrival in the cart.
	if n := metric(t, f.reg, "cart_order_to_cart_seconds").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("cart_order_to_cart_seconds has %d observations, want 1", n)
	}
}

// Two consumer instances receive the same event at the same moment (a rebalance can do this).
func TestSameEventConcurrentlyChangesTheCartOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.setCart(t, "u1", map[string]int{"A": 10})
	ev := order("o1", "u1", item("A", 3))

	const n = 4
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results [n]consumer.ConsumeResult
	)
	for i := range n {
		msg := eventMessage(t, ev, "", 0)
		wg.Go(func() {
			<-start
			results[i], _ = f.consume(msg)
		})
	}
	close(start)
	wg.Wait()

	for i, r := range results {
		wantResult(t, fmt.Sprintf("delivery %d", i), r, consumer.ConsumeSuccess)
	}
	if diff := cmp.Diff(map[string]int{"A": 7}, f.cart(t, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
	if got := f.count(cart.OutcomeApplied); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	if got := f.count(cart.OutcomeDuplicate); got != n-1 {
		t.Errorf("%d duplicates, want %d", got, n-1)
	}
}

func TestDecrementSemantics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	tests := []struct {
		name  string
		cart  map[string]int
		items []events.Item
		// added after the order was placed, before its event arrived
		later map[string]int
		want  map[string]int
	}{
		{
			name:  "partial quantities",
			cart:  map[string]int{"A": 5, "B": 4},
			items: []events.Item{item("A", 2), item("B", 1)},
			want:  map[string]int{"A": 3, "B": 3},
		},
		{
			name:  "lines reaching zero are removed",
			cart:  map[string]int{"A": 2, "B": 1},
			items: []events.Item{item("A", 2)},
			want:  map[string]int{"B": 1},
		},
		{
			name:  "ordering more than the cart holds floors at removal",
			cart:  map[string]int{"A": 1},
			items: []events.Item{item("A", 5)},
			want:  map[string]int{},
		},
		{
			name:  "SKUs not in the cart are fine",
			cart:  map[string]int{"A": 1},
			items: []events.Item{item("GONE", 2), item("A", 1)},
			want:  map[string]int{},
		},
		{
			name:  "items added after ordering survive",
			cart:  map[string]int{"A": 2},
			items: []events.Item{item("A", 2)},
			later: map[string]int{"A": 3, "NEW": 1}, // after ordering 2 A, the user raised A to 3 and added NEW
			want:  map[string]int{"A": 1, "NEW": 1},
		},
	}
	for i, tc := range tests {
		user := fmt.Sprintf("user%d", i)
		f.setCart(t, user, tc.cart)
		f.setCart(t, user, tc.later)
		r, _ := f.consume(eventMessage(t, order(fmt.Sprintf("order%d", i), user, tc.items...), "", 0))
		wantResult(t, tc.name, r, consumer.ConsumeSuccess)
		if diff := cmp.Diff(tc.want, f.cart(t, user)); diff != "" {
			t.Errorf("%s: cart (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestPoisonMessageIsRecordedAndAcknowledged(t *testing.T) {
	t.Parallel()
	valid := order("o1", "u1", item("A", 1))
	mutate := func(change func(*events.OrderCreated)) []byte {
		ev := valid
		ev.Items = append([]events.Item(nil), valid.Items...)
		change(&ev)
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		body   []byte
		reason string // a substring of the recorded reason
	}{
		{"not JSON", []byte("order o1, please"), "invalid character"},
		{"empty body", nil, "unexpected end of JSON input"},
		{"JSON of the wrong shape", []byte(`{"order_id":42}`), "cannot unmarshal number"},
		{"version 0", mutate(func(e *events.OrderCreated) { e.Version = 0 }), "version 0"},
		{"no order ID", mutate(func(e *events.OrderCreated) { e.OrderID = "" }), "order_id"},
		{"no items", mutate(func(e *events.OrderCreated) { e.Items = nil }), "items"},
		{"zero quantity", mutate(func(e *events.OrderCreated) { e.Items[0].Quantity = 0 }), "quantity"},
		{"negative quantity", mutate(func(e *events.OrderCreated) { e.Items[0].Quantity = -3 }), "quantity"},
		{"duplicate SKU", mutate(func(e *events.OrderCreated) { e.Items = append(e.Items, item("A", 1)) }), "appears twice"},
		{"huge binary body", append([]byte{0xff, 0xfe}, []byte(strings.Repeat("x", 1<<20))...), "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{})
			f.setCart(t, "u1", map[string]int{"A": 3})

			r, _ := f.consume(message(tc.body, "o1", "", 0))
			wantResult(t, "poison delivery", r, consumer.ConsumeSuccess)

			rs, err := f.store.Rejections(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("%d rejections recorded, want 1", len(rs))
			}
			if !strings.Contains(rs[0].Reason, tc.reason) || !strings.HasPrefix(rs[0].MsgID, "MSG") || rs[0].MsgKey != "o1" {
				t.Errorf("recorded %+v; want reason containing %q, the message ID and key o1", rs[0], tc.reason)
			}
			if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
				t.Errorf("cart changed (-want +got):\n%s", diff)
			}
			want := map[string]int{cart.OutcomeApplied: 0, cart.OutcomeDuplicate: 0, cart.OutcomeRejected: 1, cart.OutcomeRetried: 0}
			if diff := cmp.Diff(want, f.counts()); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if got := metric(t, f.reg, "cart_rejected_messages").GetGauge().GetValue(); got != 1 {
				t.Errorf("cart_rejected_messages = %v, want 1", got)
			}
		})
	}
}

func TestDatabaseOutageIsRetriedThenAppliedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{withProxy: true})
	f.setCart(t, "u1", map[string]int{"A": 5})
	ev := order("o1", "u1", item("A", 2))

	f.proxy.SetDown(true)
	for i := range 3 {
		r, delay := f.consume(eventMessage(t, ev, "", int32(i)))
		wantResult(t, fmt.Sprintf("delivery %d during the outage", i+1), r, consumer.ConsumeRetryLater)
		// Level 1 (1 s) first, then growing, so a long outage does not use up the retries at once.
		if delay != i+1 {
			t.Errorf("delivery %d: delay level %d, want %d", i+1, delay, i+1)
		}
	}
	if n, err := f.store.CountRejections(context.Background()); err == nil {
		t.Fatalf("the database answered during the outage (%d rejections)", n)
	}
	if got := metric(t, f.reg, "cart_rejected_messages").GetGauge().GetValue(); got == got { // NaN != NaN
		t.Errorf("cart_rejected_messages = %v during the outage, want NaN", got)
	}

	f.proxy.SetDown(false)
	r, _ := f.consume(eventMessage(t, ev, "", 3))
	wantResult(t, "delivery after the outage", r, consumer.ConsumeSuccess)
	r, _ = f.consume(eventMessage(t, ev, "", 0))
	wantResult(t, "a late duplicate", r, consumer.ConsumeSuccess)

	if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
	want := map[string]int{cart.OutcomeApplied: 1, cart.OutcomeDuplicate: 1, cart.OutcomeRejected: 0, cart.OutcomeRetried: 3}
	if diff := cmp.Diff(want, f.counts()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// A poison message that arrives while the database is down cannot be recorded: it is retried,
// not dropped without a trace, and recorded once the database is back.
func TestPoisonMessageDuringOutageIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{withProxy: true})
	f.proxy.SetDown(true)
	r, _ := f.consume(message([]byte("garbage"), "k", "", 0))
	wantResult(t, "poison during the outage", r, consumer.ConsumeRetryLater)
	f.proxy.SetDown(false)
	r, _ = f.consume(message([]byte("garbage"), "k", "", 1))
	wantResult(t, "poison after the outage", r, consumer.ConsumeSuccess)
	if n, err := f.store.CountRejections(context.Background()); err != nil || n != 1 {
		t.Fatalf("CountRejections = %d, %v; want 1", n, err)
	}
}

// The connection drops after the server committed but before the consumer heard so. The consumer
// cannot know; it retries, and the redelivery finds the order already applied.
func TestUnknownCommitOutcomeIsRetriedAndAppliedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{withProxy: true})
	f.setCart(t, "u1", map[string]int{"A": 5})
	ev := order("o1", "u1", item("A", 2))

	f.proxy.DropReplyToNextCommit()
	r, delay := f.consume(eventMessage(t, ev, "", 0))
	wantResult(t, "delivery whose commit answer is lost", r, consumer.ConsumeRetryLater)
	if f.proxy.commitsDropped.Load() != 1 || delay != 1 {
		t.Fatalf("commits dropped %d, delay level %d; want 1 and 1", f.proxy.commitsDropped.Load(), delay)
	}
	// It did commit: the server got the COMMIT, only its answer was lost.
	if _, err := f.store.ProcessedOrder(context.Background(), "u1", "o1"); err != nil {
		t.Fatalf("after the lost commit answer: %v", err)
	}

	r, _ = f.consume(eventMessage(t, ev, "", 1))
	wantResult(t, "redelivery", r, consumer.ConsumeSuccess)
	if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
	want := map[string]int{cart.OutcomeApplied: 0, cart.OutcomeDuplicate: 1, cart.OutcomeRejected: 0, cart.OutcomeRetried: 1}
	if diff := cmp.Diff(want, f.counts()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestFaultFailOnce(t *testing.T) {
	t.Parallel()
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: true})
		f.setCart(t, "u1", map[string]int{"A": 5})
		ev := order("o1", "u1", item("A", 2))

		r, delay := f.consume(eventMessage(t, ev, faults.CartFailOnce, 0))
		wantResult(t, "first delivery", r, consumer.ConsumeRetryLater)
		if delay != 1 {
			t.Errorf("delay level %d, want 1", delay)
		}
		if diff := cmp.Diff(map[string]int{"A": 5}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart after the failed delivery (-want +got):\n%s", diff)
		}
		r, _ = f.consume(eventMessage(t, ev, faults.CartFailOnce, 1))
		wantResult(t, "second delivery", r, consumer.ConsumeSuccess)
		if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart after the second delivery (-want +got):\n%s", diff)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: false})
		f.setCart(t, "u1", map[string]int{"A": 5})
		r, _ := f.consume(eventMessage(t, order("o1", "u1", item("A", 2)), faults.CartFailOnce, 0))
		wantResult(t, "first delivery, faults off", r, consumer.ConsumeSuccess)
		if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
	})
}

func TestFaultCrashAfterCommit(t *testing.T) {
	t.Parallel()
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: true})
		f.setCart(t, "u1", map[string]int{"A": 5})
		ev := order("o-crash", "u1", item("A", 2))

		f.consume(eventMessage(t, ev, faults.CartCrashAfterCommit, 0)) // the real process would be dead here
		if f.crashes.Load() != 1 || !f.crashSawApplied.Load() {
			t.Fatalf("crashes %d, order committed at crash time %v; want 1 crash after the commit",
				f.crashes.Load(), f.crashSawApplied.Load())
		}
		// After the restart the broker delivers the unacknowledged message again, with the same
		// reconsume count: the crash happened before any answer reached the broker.
		r, _ := f.consume(eventMessage(t, ev, faults.CartCrashAfterCommit, 0))
		wantResult(t, "redelivery after the crash", r, consumer.ConsumeSuccess)
		if f.crashes.Load() != 1 {
			t.Fatalf("crashed %d times, want once: a redelivery must not crash again", f.crashes.Load())
		}
		if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: false})
		f.setCart(t, "u1", map[string]int{"A": 5})
		r, _ := f.consume(eventMessage(t, order("o-crash", "u1", item("A", 2)), faults.CartCrashAfterCommit, 0))
		wantResult(t, "delivery, faults off", r, consumer.ConsumeSuccess)
		if f.crashes.Load() != 0 {
			t.Fatalf("crashed with fault injection off")
		}
	})
}

// A batch is acknowledged or retried as a whole (the Go client has no partial acknowledgement).
// Retrying a batch in which some messages were applied is safe: they come back as duplicates.
func TestBatchWithOneFailureIsRetriedWhole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{faults: true})
	f.setCart(t, "u1", map[string]int{"A": 5, "B": 5})
	good := order("o-good", "u1", item("A", 1))
	flaky := order("o-flaky", "u1", item("B", 1))

	batch := func(reconsume int32) []*primitive.MessageExt {
		return []*primitive.MessageExt{
			eventMessage(t, good, "", reconsume),
			message([]byte("poison"), "p", "", reconsume),
			eventMessage(t, flaky, faults.CartFailOnce, reconsume),
		}
	}
	r, _ := f.consume(batch(0)...)
	wantResult(t, "first delivery of the batch", r, consumer.ConsumeRetryLater)
	r, _ = f.consume(batch(1)...)
	wantResult(t, "second delivery of the batch", r, consumer.ConsumeSuccess)

	if diff := cmp.Diff(map[string]int{"A": 4, "B": 4}, f.cart(t, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
	want := map[string]int{cart.OutcomeApplied: 2, cart.OutcomeDuplicate: 1, cart.OutcomeRejected: 2, cart.OutcomeRetried: 1}
	if diff := cmp.Diff(want, f.counts()); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// A bug that panics must not stall the queue: the delivery is retried.
func TestPanicIsRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{now: func() time.Time { panic("clock broke") }})
	r, _ := f.consume(eventMessage(t, order("o1", "u1", item("A", 1)), "", 0))
	wantResult(t, "delivery that panics", r, consumer.ConsumeRetryLater)
	if got := f.count(cart.OutcomeRetried); got != 1 {
		t.Errorf("retried = %d, want 1", got)
	}
}

// An event without created_at is still an order that exists: apply it.
func TestEventWithoutCreationTimeIsApplied(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.setCart(t, "u1", map[string]int{"A": 2})
	ev := order("o1", "u1", item("A", 1))
	ev.CreatedAt = time.Time{}
	r, _ := f.consume(eventMessage(t, ev, "", 0))
	wantResult(t, "delivery", r, consumer.ConsumeSuccess)
	p, err := f.store.ProcessedOrder(context.Background(), "u1", "o1")
	if err != nil || p.OrderCreatedAt != nil {
		t.Fatalf("processed order %+v, %v; want one with no creation time", p, err)
	}
	// Without a creation time there is no order-to-cart time to observe.
	if n := metric(t, f.reg, "cart_order_to_cart_seconds").GetHistogram().GetSampleCount(); n != 0 {
		t.Fatalf("cart_order_to_cart_seconds has %d observations, want 0", n)
	}
}
