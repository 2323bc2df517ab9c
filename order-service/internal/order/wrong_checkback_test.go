package order

import (
	"context"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"rmqtx/order-service/internal/order/ordertest"
	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/testenv"
)

// placedService is a Service in the given placement on the database dsn, with a fake producer
// whose listener is the placement's. A second one on the same dsn is a restarted process.
func placedService(t *testing.T, placement, dsn string) (*Service, *ordertest.Producer, *store.Store) {
	t.Helper()
	st := store.New(testenv.OpenDB(t, dsn, store.Schema))
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var fp *ordertest.Producer
	svc, err := NewService(st, metrics, discard(), Config{
		Topic: "test-topic", Faults: true, Crash: func() { panic(errCrashed) }, Placement: placement,
		NewProducer: func(l primitive.TransactionListener) (Producer, error) {
			fp = &ordertest.Producer{Listener: l}
			return fp, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, fp, st
}

// holdOrder writes the rows of the local transaction for a new order and keeps the transaction
// open until release is called: a local transaction in flight, as a check-back would meet it.
func holdOrder(t *testing.T, svc *Service, st *store.Store) (orderID string, release func() error) {
	t.Helper()
	row, _, err := svc.build(context.Background(), validRequest("u1"), "")
	if err != nil {
		t.Fatal(err)
	}
	inTx, hold, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.InTx(context.Background(), func(tx *store.Store) error {
			if err := tx.ClaimCommitted(context.Background(), row.OrderID, row.CreatedAt); err != nil {
				return err
			}
			if err := tx.InsertOrder(context.Background(), row); err != nil {
				return err
			}
			close(inTx)
			<-hold
			return nil
		})
	}()
	select {
	case <-inTx:
	case err := <-done:
		t.Fatalf("local transaction: %v", err)
	}
	return row.OrderID, func() error { close(hold); return <-done }
}

// Each wrong check-back gives the wrong answer its comment says it gives, where the right one
// (place.go, store.ResolveCheck) gives the right one.
func TestWrongCheckBacks(t *testing.T) {
	t.Parallel()

	t.Run("naive-check-back answers rollback for a local transaction in flight, which then commits", func(t *testing.T) {
		t.Parallel()
		svc, _, st := placedService(t, PlacementNaiveCheckBack, testenv.NewDatabase(t, "orders"))
		id, release := holdOrder(t, svc, st)
		got := svc.listener().CheckLocalTransaction(checkMsg(id)) // does not wait: a plain SELECT
		if err := release(); err != nil {
			t.Fatalf("the local transaction did not commit: %v", err)
		}
		if got != primitive.RollbackMessageState {
			t.Fatalf("naive check-back mid-transaction = %v, want rollback", stateName(got))
		}
		if _, err := st.Order(context.Background(), id); err != nil {
			t.Fatalf("order %s: %v; the order committed after the check-back answered rollback", id, err)
		}
		if got := svc.listener().CheckLocalTransaction(checkMsg(id)); got != primitive.CommitMessageState {
			t.Errorf("naive check-back after the commit = %v, want commit", stateName(got))
		}
	})

	t.Run("memory-check-back answers commit after a restart for an order never written", func(t *testing.T) {
		t.Parallel()
		dsn := testenv.NewDatabase(t, "orders")
		first, fp, st := placedService(t, PlacementMemoryCheckBack, dsn)
		func() {
			defer func() {
				if r := recover(); r != errCrashed {
					t.Fatalf("crash-after-half did not crash: %v", r)
				}
			}()
			first.Place(context.Background(), validRequest("u1"), "", Fault{Point: FaultCrashAfterHalf})
		}()
		half := fp.Sent()
		if len(half) != 1 {
			t.Fatalf("%d half messages, want 1", len(half))
		}
		id := half[0].GetKeys()
		restarted, _, _ := placedService(t, PlacementMemoryCheckBack, dsn)
		if got := restarted.listener().CheckLocalTransaction(checkMsg(id)); got != primitive.CommitMessageState {
			t.Fatalf("memory check-back after a restart = %v, want commit (RocketMQ's example answers commit when it does not know)", stateName(got))
		}
		if _, err := st.Order(context.Background(), id); err == nil {
			t.Fatal("the order exists; the point is that it does not")
		}
		// The process that placed an order remembers it.
		placed, err := restarted.Place(context.Background(), validRequest("u2"), "", Fault{})
		if err != nil {
			t.Fatal(err)
		}
		if got := restarted.listener().CheckLocalTransaction(checkMsg(placed.Order.OrderID)); got != primitive.CommitMessageState {
			t.Errorf("memory check-back for an order it placed = %v, want commit", stateName(got))
		}
	})

	t.Run("no-check-back never decides, even for a committed order", func(t *testing.T) {
		t.Parallel()
		svc, _, _ := placedService(t, PlacementNoCheckBack, testenv.NewDatabase(t, "orders"))
		placed, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: FaultSkipEndTransaction})
		if err != nil {
			t.Fatal(err)
		}
		if got := svc.listener().CheckLocalTransaction(checkMsg(placed.Order.OrderID)); got != primitive.UnkonwnState {
			t.Fatalf("no-check-back = %v, want unknown", stateName(got))
		}
		if got := testutil.ToFloat64(svc.metrics.checkBacks.WithLabelValues("unknown")); got != 1 {
			t.Errorf(`order_checkbacks_total{answer="unknown"} = %v, want 1`, got)
		}
	})

	t.Run("the right way's listener is the Service, and /metrics names the mode", func(t *testing.T) {
		t.Parallel()
		svc, _, _ := placedService(t, "", testenv.NewDatabase(t, "orders"))
		if svc.listener() != primitive.TransactionListener(svc) {
			t.Errorf("transactional listener = %T, want *Service", svc.listener())
		}
		if got := testutil.ToFloat64(svc.metrics.placement.WithLabelValues(PlacementTransactional)); got != 1 {
			t.Errorf(`order_placement_mode{mode="transactional"} = %v, want 1`, got)
		}
		wrong, _, _ := placedService(t, PlacementNaiveCheckBack, testenv.NewDatabase(t, "orders"))
		if got := testutil.ToFloat64(wrong.metrics.placement.WithLabelValues(PlacementNaiveCheckBack)); got != 1 {
			t.Errorf(`order_placement_mode{mode="naive-check-back"} = %v, want 1`, got)
		}
	})
}
