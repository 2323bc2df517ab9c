package order

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/order/ordertest"
	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/testenv"
)

var errCrashed = errors.New("crashed (test stand-in for SIGKILL)")

// testService is a Service on a fresh database with a fake producer. Crash fault points panic
// with errCrashed instead of killing the test binary.
func testService(t *testing.T, faults bool) (*Service, *ordertest.Producer, *store.Store, string) {
	t.Helper()
	dsn := testenv.NewDatabase(t, "orders")
	st := store.New(testenv.OpenDB(t, dsn, store.Schema))
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var fp *ordertest.Producer
	svc, err := NewService(st, metrics, discard(), Config{
		Topic: "test-topic", Faults: faults, Crash: func() { panic(errCrashed) },
		NewProducer: func(l primitive.TransactionListener) (Producer, error) {
			fp = &ordertest.Producer{Listener: l}
			return fp, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, fp, st, dsn
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func validRequest(user string) Request {
	return Request{UserID: user, Items: []RequestItem{
		{SKU: "A-1", Quantity: 2, UnitPriceCents: 1999},
		{SKU: "B-2", Quantity: 1, UnitPriceCents: 500},
	}}
}

// checkMsg is what a broker check-back hands the listener: the half message, keyed by order ID.
func checkMsg(key string) *primitive.MessageExt {
	m := &primitive.MessageExt{}
	m.Topic = "test-topic"
	if key != "" {
		m.WithKeys([]string{key})
	}
	return m
}
