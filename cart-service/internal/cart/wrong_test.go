package cart_test

// The consumers that are wrong on purpose (wrong.go), each next to the right one meeting the same
// deliveries, against the real MariaDB. What needs the broker (an acknowledgement that reaches it
// before a crash) is in cmd/cart-service/crash_test.go and scripts/e2e.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/testenv"
)

// The same order as a redelivery (same message ID) and as a new message (another message ID, as
// order-service's resend-event fault publishes it).
func TestDedupByMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode     string
		wantCart map[string]int
		wantStep []string
	}{
		// The redelivery is caught by both; the new message only by the order ID.
		{cart.ModeCorrect, map[string]int{"A": 3}, []string{"applied r0", "duplicate_acknowledged r0", "duplicate_acknowledged r0"}},
		{cart.ModeDedupByMessageID, map[string]int{"A": 1}, []string{"applied r0", "duplicate_acknowledged r0", "applied_twice r0"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{faults: true, mode: tc.mode, timeline: true})
			f.setCart(t, "u1", map[string]int{"A": 5})
			ev := order("o1", "u1", item("A", 2))
			first := eventMessage(t, ev, "", 0)
			// A redelivery keeps the message ID (the producer's UNIQ_KEY) through every copy.
			redelivered := eventMessage(t, ev, "", 0)
			redelivered.MsgId = first.MsgId
			resent := eventMessage(t, ev, "", 0) // a new message: a new message ID
			deliveries := []struct {
				name string
				msg  *primitive.MessageExt
			}{{"first", first}, {"redelivery", redelivered}, {"resent as a new message", resent}}
			for _, d := range deliveries {
				r, _ := f.consume(d.msg)
				wantResult(t, d.name, r, consumer.ConsumeSuccess)
			}
			if diff := cmp.Diff(tc.wantCart, f.cart(t, "u1")); diff != "" {
				t.Errorf("cart (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantStep, f.recorded(t, "o1")); diff != "" {
				t.Errorf("timeline steps (-want +got):\n%s", diff)
			}
			ds, err := f.store.Deliveries(context.Background(), "o1")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if named := strings.Contains(d.Detail, "CONSUMER="+tc.mode); named != (tc.mode != cart.ModeCorrect) {
					t.Errorf("step %q detail %q: names the mode %v, want %v", d.Step, d.Detail, named, tc.mode != cart.ModeCorrect)
				}
			}
		})
	}
}

// The cart holds 3, the order takes 1.
func TestDeleteLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode     string
		wantCart map[string]int
		wantStep string
	}{
		{cart.ModeCorrect, map[string]int{"A": 2, "B": 1}, "applied r0"},
		{cart.ModeDeleteLines, map[string]int{"B": 1}, "applied_wiped_additions r0"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{faults: true, mode: tc.mode, timeline: true})
			f.setCart(t, "u1", map[string]int{"A": 3, "B": 1})
			ev := order("o1", "u1", item("A", 1))
			r, _ := f.consume(eventMessage(t, ev, "", 0))
			wantResult(t, "delivery", r, consumer.ConsumeSuccess)
			// A redelivery is a duplicate for both: delete-lines keeps the order-ID key.
			r, _ = f.consume(eventMessage(t, ev, "", 0))
			wantResult(t, "redelivery", r, consumer.ConsumeSuccess)
			if diff := cmp.Diff(tc.wantCart, f.cart(t, "u1")); diff != "" {
				t.Errorf("cart (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tc.wantStep, "duplicate_acknowledged r0"}, f.recorded(t, "o1")); diff != "" {
				t.Errorf("timeline steps (-want +got):\n%s", diff)
			}
		})
	}
}

// cart-crash-before-apply with each consumer. The crash hook here records instead of killing, so
// what a real process would do after it is simulated: the right consumer's unacknowledged
// message is delivered again; the wrong one's was acknowledged and is not.
func TestCrashBeforeApply(t *testing.T) {
	t.Parallel()
	t.Run("correct: not acknowledged, applied on the redelivery", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: true, timeline: true})
		f.setCart(t, "u1", map[string]int{"A": 5})
		ev := order("o1", "u1", item("A", 2))
		r, _ := f.consume(eventMessage(t, ev, faults.CartCrashBeforeApply, 0))
		wantResult(t, "delivery that crashes", r, consumer.ConsumeRetryLater)
		if f.crashes.Load() != 1 {
			t.Fatalf("crashes = %d, want 1", f.crashes.Load())
		}
		if diff := cmp.Diff(map[string]int{"A": 5}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart after the crash (-want +got):\n%s", diff)
		}
		// After the restart: the same message, reconsume count 0 (nothing reached the broker).
		r, _ = f.consume(eventMessage(t, ev, faults.CartCrashBeforeApply, 0))
		wantResult(t, "redelivery", r, consumer.ConsumeSuccess)
		if f.crashes.Load() != 1 {
			t.Fatalf("crashes = %d, want 1: the point fires once per order", f.crashes.Load())
		}
		if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart after the redelivery (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"crashed_before_apply r0", "applied r0"}, f.recorded(t, "o1")); diff != "" {
			t.Errorf("timeline steps (-want +got):\n%s", diff)
		}
	})
	t.Run("ack-before-commit: acknowledged, offset sent, never applied", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: true, mode: cart.ModeAckBeforeCommit, timeline: true})
		f.setCart(t, "u1", map[string]int{"A": 5})
		ev := order("o1", "u1", item("A", 2))
		r, _ := f.consume(eventMessage(t, ev, faults.CartCrashBeforeApply, 0))
		wantResult(t, "delivery", r, consumer.ConsumeSuccess) // before anything is applied
		testenv.Eventually(t, 10*time.Second, "the worker's crash", func() bool { return f.crashes.Load() == 1 })
		if f.persistsAtCrash.Load() != 1 {
			t.Errorf("offsets sent to the broker %d times before the crash, want 1", f.persistsAtCrash.Load())
		}
		if diff := cmp.Diff(map[string]int{"A": 5}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
		f.handler.Close() // the worker is done
		if diff := cmp.Diff([]string{"acknowledged_before_apply r0", "acknowledged_never_applied r0"}, f.recorded(t, "o1")); diff != "" {
			t.Errorf("timeline steps (-want +got):\n%s", diff)
		}
	})
	t.Run("ack-before-commit without the fault applies, later", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, setup{faults: true, mode: cart.ModeAckBeforeCommit})
		f.setCart(t, "u1", map[string]int{"A": 5})
		r, _ := f.consume(eventMessage(t, order("o1", "u1", item("A", 2)), "", 0))
		wantResult(t, "delivery", r, consumer.ConsumeSuccess)
		f.handler.Close() // waits for the worker
		if diff := cmp.Diff(map[string]int{"A": 3}, f.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
		if f.persists.Load() != 0 || f.crashes.Load() != 0 {
			t.Errorf("persists %d, crashes %d; want none without the fault", f.persists.Load(), f.crashes.Load())
		}
	})
}

// Each mode shows on /metrics, alone.
func TestModeGauge(t *testing.T) {
	t.Parallel()
	for _, mode := range cart.Modes() {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{faults: true, mode: mode})
			m := metric(t, f.reg, "cart_consumer_mode")
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != mode || m.GetGauge().GetValue() != 1 {
				t.Errorf("cart_consumer_mode = %v, want {mode=%q} 1", m, mode)
			}
		})
	}
}

// A wrong consumer cannot be built without fault injection, whoever builds it: main refuses
// CONSUMER=... with the settings' names, and NewHandler refuses it for any other caller.
func TestWrongModeNeedsFaults(t *testing.T) {
	for _, mode := range cart.Modes() {
		wrong := cart.WhatBreaks(mode) != ""
		for _, on := range []bool{false, true} {
			metrics, mErr := cart.NewMetrics(prometheus.NewRegistry(), nil)
			if mErr != nil {
				t.Fatal(mErr)
			}
			h, err := cart.NewHandler(nil, metrics, testenv.Logger(t), cart.Config{Mode: mode, Faults: on})
			if err == nil {
				h.Close()
			}
			if wrong && !on {
				if err == nil || !strings.Contains(err.Error(), "wrong on purpose") {
					t.Errorf("mode %s without faults: err = %v, want a refusal", mode, err)
				}
				continue
			}
			if !wrong && err != nil {
				t.Errorf("mode %s (faults %v): err = %v, want none", mode, on, err)
			}
		}
	}
	if _, err := cart.NewHandler(nil, nil, testenv.Logger(t), cart.Config{Mode: "nonsense", Faults: true}); err == nil {
		t.Error("mode nonsense: NewHandler accepted it")
	}
}
