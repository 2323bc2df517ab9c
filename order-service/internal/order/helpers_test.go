package order

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/testenv"
)

// fakeProducer stands in for the RocketMQ client in unit tests of the flow: it "stores" the half
// message and calls ExecuteLocalTransaction on the caller's goroutine, like the real one.
type fakeProducer struct {
	listener primitive.TransactionListener
	sendErr  error                // the half message is refused
	status   primitive.SendStatus // the broker answers with this (SendOK unless set)

	mu      sync.Mutex
	sent    []*primitive.Message
	answers []primitive.LocalTransactionState
}

func (f *fakeProducer) SendMessageInTransaction(_ context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error) {
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	f.mu.Lock()
	f.sent = append(f.sent, msg)
	f.mu.Unlock()
	res := &primitive.TransactionSendResult{SendResult: &primitive.SendResult{Status: f.status, MsgID: "fake"}}
	if f.status != primitive.SendOK {
		res.State = primitive.RollbackMessageState
		return res, nil
	}
	res.State = f.listener.ExecuteLocalTransaction(msg)
	f.mu.Lock()
	f.answers = append(f.answers, res.State)
	f.mu.Unlock()
	return res, nil
}

func (f *fakeProducer) counts() (sent int, answers []primitive.LocalTransactionState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent), append([]primitive.LocalTransactionState(nil), f.answers...)
}

var errCrashed = errors.New("crashed (test stand-in for SIGKILL)")

// testService is a Service on a fresh database with a fake producer. Crash fault points panic
// with errCrashed instead of killing the test binary.
func testService(t *testing.T, faults bool) (*Service, *fakeProducer, *store.Store, string) {
	t.Helper()
	dsn := testenv.NewDatabase(t, "orders")
	st := store.New(testenv.OpenDB(t, dsn, store.Schema))
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var fp *fakeProducer
	svc, err := NewService(st, metrics, discard(), Config{
		Topic: "test-topic", Faults: faults, Crash: func() { panic(errCrashed) },
		NewProducer: func(l primitive.TransactionListener) (Producer, error) {
			fp = &fakeProducer{listener: l, status: primitive.SendOK}
			return fp, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, fp, st, dsn
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

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
