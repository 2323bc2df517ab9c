package order

import (
	"context"
	"testing"

	"rmqtx/pkg/events"
)

// resend-event publishes the placed order's event a second time, as a new message with the same
// order ID and body; without the point (or with fault injection off) nothing is sent twice.
func TestResendEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a second, new message for the same order", func(t *testing.T) {
		t.Parallel()
		svc, fp, _, _ := testService(t, true)
		pp := &plainProducer{}
		placed, err := svc.WithResend(svc, pp).Place(ctx, validRequest("u1"), "", Fault{Point: FaultResendEvent})
		if err != nil {
			t.Fatal(err)
		}
		half := fp.Sent()
		if len(half) != 1 || len(pp.sent) != 1 {
			t.Fatalf("sent %d half and %d plain messages, want 1 and 1", len(half), len(pp.sent))
		}
		again := pp.sent[0]
		if again == half[0] {
			t.Fatal("the resend reused the half message's *Message: it would keep its UNIQ_KEY, so its message ID")
		}
		if again.GetKeys() != placed.Order.OrderID || again.GetTags() != events.TagOrderCreated || again.Topic != half[0].Topic {
			t.Errorf("resent message keys %q tag %q topic %q, want the order ID, %q, %q",
				again.GetKeys(), again.GetTags(), again.Topic, events.TagOrderCreated, half[0].Topic)
		}
		if string(again.Body) != string(half[0].Body) {
			t.Errorf("resent body\n%s\nwant the half message's\n%s", again.Body, half[0].Body)
		}
	})

	t.Run("a cart-side point rides on the second message too", func(t *testing.T) {
		t.Parallel()
		svc, _, _, _ := testService(t, true)
		pp := &plainProducer{}
		f, err := ParseFault("resend-event,cart-fail-once", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.WithResend(svc, pp).Place(ctx, validRequest("u1"), "", f); err != nil {
			t.Fatal(err)
		}
		if len(pp.sent) != 1 || pp.sent[0].GetProperty(events.PropertyFault) != FaultCartFailOnce {
			t.Fatalf("resent %d messages, fault property %q", len(pp.sent), pp.sent[0].GetProperty(events.PropertyFault))
		}
	})

	for name, tc := range map[string]struct {
		faults bool
		fault  Fault
	}{
		"no resend without the point":        {true, Fault{}},
		"no resend with fault injection off": {false, Fault{Point: FaultResendEvent}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			svc, fp, _, _ := testService(t, tc.faults)
			pp := &plainProducer{}
			if _, err := svc.WithResend(svc, pp).Place(ctx, validRequest("u1"), "", tc.fault); err != nil {
				t.Fatal(err)
			}
			if sent, _ := fp.Counts(); sent != 1 || len(pp.sent) != 0 {
				t.Fatalf("sent %d half and %d plain messages, want 1 and 0", sent, len(pp.sent))
			}
		})
	}

	t.Run("a failed order is not resent", func(t *testing.T) {
		t.Parallel()
		svc, _, _, _ := testService(t, true)
		pp := &plainProducer{}
		// ParseFault refuses this pair (nothing would be resent); built by hand to show why.
		f := Fault{Point: FaultFailLocalTx, With: []string{FaultResendEvent}}
		if _, err := svc.WithResend(svc, pp).Place(ctx, validRequest("u1"), "", f); err == nil {
			t.Fatal("Place succeeded past a timed-out local transaction")
		}
		if len(pp.sent) != 0 {
			t.Fatalf("resent %d messages for an order that was not placed", len(pp.sent))
		}
	})
}
