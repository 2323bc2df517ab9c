package order

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"rmqtx/order-service/internal/order/ordertest"
	"rmqtx/pkg/events"
)

// plainProducer records what the plain-message placements send, or fails every send.
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

// The placements without a half message write what the transactional flow writes (so the benchmark compares only the
// messaging), and break what the comments in wrong_send.go say they break.
func TestPlacementsWithoutHalfMessage(t *testing.T) {
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

	t.Run("save-then-send sends a normal message after the commit", func(t *testing.T) {
		t.Parallel()
		svc, fp, st, _ := testService(t, false)
		pp := &plainProducer{}
		placed, err := svc.SaveThenSend(pp).Place(ctx, validRequest("u1"), "", Fault{})
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
			t.Errorf("save-then-send sent %d half messages, want none", sent)
		}
	})

	t.Run("save-then-send loses the event when the send fails", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, false)
		placed, err := svc.SaveThenSend(&plainProducer{err: errors.New("broker down")}).Place(ctx, validRequest("u1"), "", Fault{})
		if err != nil {
			t.Fatalf("Place = %v; the order is committed, so save-then-send answers as if all was well", err)
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

// The two plain-message placements break the way wrong_send.go says, at the fault points that open
// their windows.
func TestSaveThenSendAndSendThenSave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("save-then-send: a crash after the commit, and the event is never sent", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, true)
		pp := &plainProducer{}
		var id string
		func() {
			defer func() {
				if r := recover(); r != errCrashed {
					t.Fatalf("crash-after-local-commit did not crash: %v", r)
				}
			}()
			svc.SaveThenSend(pp).Place(ctx, validRequest("u1"), "", Fault{Point: FaultCrashAfterLocalCommit})
		}()
		orders, err := st.OrdersByUser(ctx, "u1", 10)
		if err != nil || len(orders) != 1 {
			t.Fatalf("orders of u1: %v, %v; want the committed order", orders, err)
		}
		id = orders[0].OrderID
		if len(pp.sent) != 0 {
			t.Fatalf("sent %d messages for order %s; the crash came before the send", len(pp.sent), id)
		}
	})

	t.Run("send-then-save: the local transaction fails after the event is out", func(t *testing.T) {
		t.Parallel()
		svc, fp, st, _ := testService(t, true)
		pp := &plainProducer{}
		_, err := svc.SendThenSave(pp).Place(ctx, validRequest("u1"), "", Fault{Point: FaultFailLocalTx})
		if !errors.Is(err, ErrNotPlaced) {
			t.Fatalf("Place = %v, want ErrNotPlaced", err)
		}
		if len(pp.sent) != 1 {
			t.Fatalf("sent %d messages, want the one sent before the order was written", len(pp.sent))
		}
		if _, err := st.Order(ctx, pp.sent[0].GetKeys()); err == nil {
			t.Fatal("the order exists; the point is that it does not")
		}
		if sent, _ := fp.Counts(); sent != 0 {
			t.Errorf("send-then-save sent %d half messages, want none", sent)
		}
		if got := testutil.ToFloat64(svc.metrics.placed.WithLabelValues(OutcomePhantomEvent)); got != 1 {
			t.Errorf(`orders_placed_total{outcome="phantom_event"} = %v, want 1`, got)
		}
	})

	t.Run("points with no meaning without a half message are refused", func(t *testing.T) {
		t.Parallel()
		svc, _, _, _ := testService(t, true)
		var ve *ValidationError
		if _, err := svc.SaveThenSend(&plainProducer{}).Place(ctx, validRequest("u1"), "", Fault{Point: FaultSkipEndTransaction}); !errors.As(err, &ve) {
			t.Errorf("save-then-send with skip-end-transaction: err = %v, want a ValidationError", err)
		}
		if _, err := svc.SendThenSave(&plainProducer{}).Place(ctx, validRequest("u1"), "", Fault{Point: FaultSkipEndTransaction}); !errors.As(err, &ve) {
			t.Errorf("send-then-save with skip-end-transaction: err = %v, want a ValidationError", err)
		}
	})
}

// A wrong placement cannot be built without fault injection, whoever builds it: main refuses
// PLACEMENT=... with the settings' names, and NewService refuses it for any other caller.
func TestWrongPlacementNeedsFaults(t *testing.T) {
	newProducer := func(l primitive.TransactionListener) (Producer, error) { return &ordertest.Producer{Listener: l}, nil }
	for _, placement := range Placements {
		wrong := WrongWay(placement) != ""
		metrics, err := NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewService(nil, metrics, discard(), Config{Placement: placement, NewProducer: newProducer})
		switch {
		case wrong && (err == nil || !strings.Contains(err.Error(), "wrong on purpose")):
			t.Errorf("placement %s without faults: err = %v, want a refusal", placement, err)
		case !wrong && err != nil:
			t.Errorf("placement %s: err = %v, want none", placement, err)
		}
	}
	if _, err := NewService(nil, nil, discard(), Config{Placement: "nonsense", Faults: true, NewProducer: newProducer}); err == nil {
		t.Error("placement nonsense: NewService accepted it")
	}
}
