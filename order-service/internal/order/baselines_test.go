package order

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"rmqtx/pkg/events"
)

// plainProducer records what DualWrite sends, or fails every send.
type plainProducer struct {
	err  error
	sent []*primitive.Message
}

func (p *plainProducer) SendSync(_ context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.sent = append(p.sent, msgs...)
	return &primitive.SendResult{Status: primitive.SendOK, MsgID: "plain"}, nil
}

// The baselines write what the transactional flow writes (so the benchmark compares only the
// messaging), and break what the comments in baselines.go say they break.
func TestBaselines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("direct writes the rows and sends nothing", func(t *testing.T) {
		t.Parallel()
		svc, fp, st, _ := testService(t, false)
		placed, err := svc.Direct().Place(ctx, validRequest("u1"), "", Fault{})
		if err != nil {
			t.Fatal(err)
		}
		row, err := st.Order(ctx, placed.Order.OrderID)
		if err != nil || len(row.Items) != 2 {
			t.Fatalf("order row %+v, %v; want it with its 2 items", row, err)
		}
		if outcome, err := st.TxOutcome(ctx, placed.Order.OrderID); err != nil || outcome != "committed" {
			t.Errorf("tx_log = %q, %v; want committed, like the transactional flow", outcome, err)
		}
		if sent, _ := fp.Counts(); sent != 0 {
			t.Errorf("direct sent %d half messages, want none", sent)
		}
	})

	t.Run("dual-write sends a normal message after the commit", func(t *testing.T) {
		t.Parallel()
		svc, fp, st, _ := testService(t, false)
		pp := &plainProducer{}
		placed, err := svc.DualWrite(pp).Place(ctx, validRequest("u1"), "", Fault{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Order(ctx, placed.Order.OrderID); err != nil {
			t.Fatalf("order not written: %v", err)
		}
		if len(pp.sent) != 1 || pp.sent[0].GetKeys() != placed.Order.OrderID || pp.sent[0].GetTags() != events.TagOrderCreated {
			t.Fatalf("sent %v, want one OrderCreated keyed by the order ID", pp.sent)
		}
		ev, err := events.Decode(pp.sent[0].Body)
		if err != nil || ev.OrderID != placed.Order.OrderID {
			t.Errorf("event %+v, %v; want the order's event", ev, err)
		}
		if sent, _ := fp.Counts(); sent != 0 {
			t.Errorf("dual-write sent %d half messages, want none", sent)
		}
	})

	t.Run("dual-write loses the event when the send fails", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, false)
		placed, err := svc.DualWrite(&plainProducer{err: errors.New("broker down")}).Place(ctx, validRequest("u1"), "", Fault{})
		if err != nil {
			t.Fatalf("Place = %v; the order is committed, so the baseline answers as if all was well", err)
		}
		if _, err := st.Order(ctx, placed.Order.OrderID); err != nil {
			t.Fatalf("order not written: %v", err)
		}
		if got := testutil.ToFloat64(svc.metrics.placed.WithLabelValues("event_lost")); got != 1 {
			t.Errorf(`orders_placed_total{outcome="event_lost"} = %v, want 1: an order exists whose event never will`, got)
		}
	})

	t.Run("bad input and faults are refused before anything is written", func(t *testing.T) {
		t.Parallel()
		svc, _, _, _ := testService(t, false)
		var ve *ValidationError
		if _, err := svc.Direct().Place(ctx, Request{UserID: "u1"}, "", Fault{}); !errors.As(err, &ve) {
			t.Errorf("empty order: err = %v, want a ValidationError", err)
		}
		if _, err := svc.Direct().Place(ctx, validRequest("u1"), "", Fault{Point: FaultFailLocalTx}); !errors.As(err, &ve) {
			t.Errorf("with a fault point: err = %v, want a ValidationError", err)
		}
	})
}
