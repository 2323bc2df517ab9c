package cart_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/google/go-cmp/cmp"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/testenv"
)

func TestTimelineRecordsEachDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		proxy     bool
		run       func(t *testing.T, f *fixture)
		want      []string
		wantCart  map[string]int
		wantInOne string // a substring of some step's detail
	}{
		{
			name: "retried, applied, then a duplicate",
			run: func(t *testing.T, f *fixture) {
				ev := order("o1", "u1", item("A", 2))
				f.consume(eventMessage(t, ev, faults.CartFailOnce, 0))
				f.consume(eventMessage(t, ev, faults.CartFailOnce, 1))
				f.consume(eventMessage(t, ev, "", 0)) // a re-put under another message ID
			},
			want:      []string{"retry_requested r0", "applied r1", "duplicate_acknowledged r0"},
			wantCart:  map[string]int{"A": 3},
			wantInOne: "cart-fail-once",
		},
		{
			name: "crash after the cart commit, then the redelivery",
			run: func(t *testing.T, f *fixture) {
				ev := order("o1", "u1", item("A", 2))
				f.consume(eventMessage(t, ev, faults.CartCrashAfterCommit, 0))
				f.consume(eventMessage(t, ev, faults.CartCrashAfterCommit, 0))
			},
			want:      []string{"applied r0", "duplicate_acknowledged r0"},
			wantCart:  map[string]int{"A": 3},
			wantInOne: "processed_orders",
		},
		{
			name: "poison, keyed by the message key",
			run: func(t *testing.T, f *fixture) {
				f.consume(message([]byte("not an event"), "o1", "", 0))
			},
			want:      []string{"rejected r0"},
			wantCart:  map[string]int{"A": 5},
			wantInOne: "invalid character",
		},
		{
			// The cart change committed, but the consumer could not know: no applied step.
			// (GET /orders/{id}/timeline reads it from processed_orders.)
			name:  "commit answer lost",
			proxy: true,
			run: func(t *testing.T, f *fixture) {
				ev := order("o1", "u1", item("A", 2))
				f.proxy.DropReplyToNextCommit()
				f.consume(eventMessage(t, ev, "", 0))
				f.consume(eventMessage(t, ev, "", 1))
			},
			want:      []string{"retry_requested r0", "duplicate_acknowledged r1"},
			wantCart:  map[string]int{"A": 3},
			wantInOne: "commit outcome unknown",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{faults: true, timeline: true, withProxy: tc.proxy})
			f.setCart(t, "u1", map[string]int{"A": 5})
			tc.run(t, f)
			if d := cmp.Diff(tc.want, f.recorded(t, "o1")); d != "" {
				t.Errorf("steps (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantCart, f.cart(t, "u1")); d != "" {
				t.Errorf("cart (-want +got):\n%s", d)
			}
			if tc.wantInOne != "" {
				ds, _ := f.store.Deliveries(context.Background(), "o1") // written by recorded above
				found := false
				for _, d := range ds {
					found = found || strings.Contains(d.Detail, tc.wantInOne)
				}
				if !found {
					t.Errorf("no step's detail mentions %q: %+v", tc.wantInOne, ds)
				}
			}
		})
	}
}

// Off, the consumer writes no steps and does exactly what it does on.
func TestTimelineOffChangesNothingElse(t *testing.T) {
	t.Parallel()
	counts := map[bool]map[string]int{}
	for _, on := range []bool{true, false} {
		f := newFixture(t, setup{faults: true, timeline: on})
		f.setCart(t, "u1", map[string]int{"A": 5})
		ev := order("o1", "u1", item("A", 2))
		f.consume(eventMessage(t, ev, faults.CartFailOnce, 0))
		f.consume(eventMessage(t, ev, faults.CartFailOnce, 1))
		f.consume(eventMessage(t, ev, "", 0))
		f.consume(message([]byte("poison"), "o1", "", 0))
		if d := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); d != "" {
			t.Errorf("timeline on=%v: cart (-want +got):\n%s", on, d)
		}
		if n := len(f.recorded(t, "o1")); (n > 0) != on {
			t.Errorf("timeline on=%v: %d steps recorded", on, n)
		}
		counts[on] = f.counts()
	}
	if d := cmp.Diff(counts[true], counts[false]); d != "" {
		t.Errorf("outcomes with the timeline on and off differ (-on +off):\n%s", d)
	}
}

// A recorder that cannot write (here: its database handle is closed) logs it and changes nothing.
func TestTimelineThatCannotBeWrittenChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	log := testenv.Logger(t)
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "cartgone"), store.Schema)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	broken := cart.NewRecorder(store.New(db), log, nil)
	h, err := cart.NewHandler(f.store, f.metrics, log, cart.Config{Timeline: broken})
	if err != nil {
		t.Fatal(err)
	}

	f.setCart(t, "u1", map[string]int{"A": 5})
	ev := order("o1", "u1", item("A", 2))
	for i := range 2 {
		r, err := h.Consume(context.Background(), eventMessage(t, ev, "", 0))
		if err != nil || r != consumer.ConsumeSuccess {
			t.Fatalf("delivery %d: %s, %v", i+1, name(r), err)
		}
	}
	broken.Close() // its writes fail, and are logged
	if d := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); d != "" {
		t.Errorf("cart (-want +got):\n%s", d)
	}
	want := map[string]int{cart.OutcomeApplied: 1, cart.OutcomeDuplicate: 1, cart.OutcomeRejected: 0, cart.OutcomeRetried: 0}
	if d := cmp.Diff(want, f.counts()); d != "" {
		t.Errorf("outcomes (-want +got):\n%s", d)
	}
}
