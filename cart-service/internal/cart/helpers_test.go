package cart_test

// Helpers of the tests of package cart: a Handler on a fresh database (through dbProxy when a test
// needs the database to fail), messages as the broker delivers them, and readers of the outcome.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/testenv"
)

type fixture struct {
	store   *store.Store
	metrics *cart.Metrics
	reg     *prometheus.Registry
	handler *cart.Handler
	proxy   *dbProxy       // nil unless withProxy
	steps   *cart.Recorder // nil unless timeline
	crashes atomic.Int32
	// afterCrash is what the database said when the crash hook ran.
	crashSawApplied atomic.Bool
	// persists counts calls of the PersistOffsets hook; persistsAtCrash is its value when the
	// crash hook ran.
	persists, persistsAtCrash atomic.Int32
}

type setup struct {
	faults    bool
	withProxy bool
	now       func() time.Time
	timeline  bool   // record steps in order_deliveries (deliveries_test.go)
	mode      string // CONSUMER; "" is the right consumer (wrong_test.go)
}

func newFixture(t *testing.T, s setup) *fixture {
	t.Helper()
	log := testenv.Logger(t)
	dsn := testenv.NewDatabase(t, "cart")
	f := &fixture{}
	if s.withProxy {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		f.proxy = startProxy(t, cfg.Addr)
		cfg.Addr = f.proxy.Addr()
		dsn = cfg.FormatDSN()
	}
	f.store = store.New(testenv.OpenDB(t, dsn, store.Schema))
	f.reg = prometheus.NewRegistry()
	var err error
	f.metrics, err = cart.NewMetrics(f.reg, f.store.CountRejections)
	if err != nil {
		t.Fatal(err)
	}
	if s.timeline {
		f.steps = cart.NewRecorder(f.store, log, nil)
		t.Cleanup(f.steps.Close)
	}
	h, err := cart.NewHandler(f.store, f.metrics, log, cart.Config{
		Faults:   s.faults,
		Now:      s.now,
		Timeline: f.steps,
		Mode:     s.mode,
		PersistOffsets: func() error {
			f.persists.Add(1)
			return nil
		},
		Crash: func() {
			f.persistsAtCrash.Store(f.persists.Load())
			f.crashes.Add(1)
			// The crash must come after the commit: the order is already in the database.
			_, err := f.store.ProcessedOrder(context.Background(), "u1", "o-crash")
			f.crashSawApplied.Store(err == nil)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = h
	t.Cleanup(f.handler.Close)
	return f
}

func (f *fixture) setCart(t *testing.T, userID string, lines map[string]int) {
	t.Helper()
	for sku, q := range lines {
		if err := f.store.SetLine(context.Background(), userID, sku, q, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) cart(t *testing.T, userID string) map[string]int {
	t.Helper()
	items, err := f.store.Cart(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, it := range items {
		got[it.SKU] = it.Quantity
	}
	return got
}

// count reads the cart_messages_total counter of one outcome from the service's registry.
func (f *fixture) count(outcome string) int {
	mfs, err := f.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cart_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == outcome {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	panic("cart_messages_total has no series for outcome " + outcome)
}

// counts reads every outcome counter, for one cmp.Diff.
func (f *fixture) counts() map[string]int {
	return map[string]int{
		cart.OutcomeApplied:   f.count(cart.OutcomeApplied),
		cart.OutcomeDuplicate: f.count(cart.OutcomeDuplicate),
		cart.OutcomeRejected:  f.count(cart.OutcomeRejected),
		cart.OutcomeRetried:   f.count(cart.OutcomeRetried),
	}
}

// consume calls the callback the way the push consumer does and returns its result and the delay
// level it asked for.
func (f *fixture) consume(msgs ...*primitive.MessageExt) (consumer.ConsumeResult, int) {
	cc := primitive.NewConsumeConcurrentlyContext()
	ctx := primitive.WithConcurrentlyCtx(context.Background(), cc)
	result, err := f.handler.Callback()(ctx, msgs...)
	if err != nil {
		panic(fmt.Sprintf("Consume returned an error (the outcome is in the result): %v", err))
	}
	return result, cc.DelayLevelWhenNextConsume
}

func order(id, user string, items ...events.Item) events.OrderCreated {
	return events.OrderCreated{
		Version: events.CurrentVersion, OrderID: id, UserID: user, Items: items,
		CreatedAt: time.Now().Add(-50 * time.Millisecond).UTC(),
	}
}

func item(sku string, q int) events.Item {
	return events.Item{SKU: sku, Quantity: q, UnitPriceCents: 100}
}

var msgSeq atomic.Int64

// message wraps a body as the broker delivers it. Every call gets a new message ID, as a
// redelivery or a re-put may.
func message(body []byte, key, fault string, reconsumeTimes int32) *primitive.MessageExt {
	m := &primitive.MessageExt{MsgId: fmt.Sprintf("MSG%08d", msgSeq.Add(1)), ReconsumeTimes: reconsumeTimes}
	m.Topic = "order-events"
	m.Body = body
	m.WithTag(events.TagOrderCreated)
	m.WithKeys([]string{key})
	m.WithProperty(events.PropertyFault, fault)
	return m
}

func eventMessage(t *testing.T, ev events.OrderCreated, fault string, reconsumeTimes int32) *primitive.MessageExt {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return message(body, ev.OrderID, fault, reconsumeTimes)
}

func name(r consumer.ConsumeResult) string {
	switch r {
	case consumer.ConsumeSuccess:
		return "ConsumeSuccess"
	case consumer.ConsumeRetryLater:
		return "ConsumeRetryLater"
	}
	return fmt.Sprintf("ConsumeResult(%d)", r)
}

func wantResult(t *testing.T, step string, got, want consumer.ConsumeResult) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: result %s, want %s", step, name(got), name(want))
	}
}

// metric gathers the registry and returns the one metric called name.
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s is not registered as a single series", name)
	return nil
}

// recorded writes what the recorder holds, then reads an order's steps as "step rN" (N: the
// delivery's reconsume count), checking that every step says something. Record no more after it.
func (f *fixture) recorded(t *testing.T, orderID string) []string {
	t.Helper()
	f.steps.Close()
	ds, err := f.store.Deliveries(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		if d.Detail == "" || !strings.HasPrefix(d.MsgID, "MSG") || d.At.IsZero() {
			t.Errorf("step %+v: want a detail, the message ID and a time", d)
		}
		out = append(out, fmt.Sprintf("%s r%d", d.Step, d.ReconsumeTimes))
	}
	return out
}
