package order

// Against the real NameServer and Broker: the transactional message does what place.go says.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/testenv"
)

// instance is one order-service instance wired like main: real producer, real database.
type instance struct {
	svc      *Service
	producer rocketmq.TransactionProducer
	stopped  bool
}

func startInstance(t *testing.T, dsn, topic, group string) *instance {
	t.Helper()
	db := testenv.OpenDB(t, dsn, store.Schema)
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var p rocketmq.TransactionProducer
	svc, err := NewService(store.New(db), metrics, discard(), Config{
		Topic: topic, Faults: true, Crash: func() { panic(errCrashed) },
		NewProducer: func(l primitive.TransactionListener) (Producer, error) {
			var err error
			p, err = rocketmq.NewTransactionProducer(l,
				producer.WithNsResolver(mq.Resolver(testenv.Namesrv())),
				producer.WithGroupName(group),
				producer.WithInstanceName(mq.InstanceName("test-order")),
			)
			return &recorder{Producer: p}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{svc: svc, producer: p}
	t.Cleanup(in.stop)
	if err := svc.Warmup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

func (in *instance) stop() {
	if !in.stopped {
		in.stopped = true
		in.producer.Shutdown()
	}
}

// recorder remembers the key of every message sent, to know which order a crash left behind.
type recorder struct {
	Producer
	mu   sync.Mutex
	keys []string
}

func (r *recorder) SendMessageInTransaction(ctx context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error) {
	r.mu.Lock()
	r.keys = append(r.keys, msg.GetKeys())
	r.mu.Unlock()
	return r.Producer.SendMessageInTransaction(ctx, msg)
}

// collector is a test consumer of the topic, recording each delivery by order ID.
type collector struct {
	mu        sync.Mutex
	delivered map[string][]time.Time
	bodies    map[string]events.OrderCreated
}

func collect(t *testing.T, topic string) *collector {
	t.Helper()
	col := &collector{delivered: map[string][]time.Time{}, bodies: map[string]events.OrderCreated{}}
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(mq.Resolver(testenv.Namesrv())),
		consumer.WithGroupName(testenv.Unique("test-cg")),
		consumer.WithInstance(mq.InstanceName("test-collector")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: events.TagOrderCreated},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			col.mu.Lock()
			defer col.mu.Unlock()
			for _, m := range msgs {
				ev, err := events.Decode(m.Body)
				if err != nil {
					t.Errorf("undecodable event %s: %v", m.MsgId, err)
					continue
				}
				col.delivered[ev.OrderID] = append(col.delivered[ev.OrderID], time.Now())
				col.bodies[ev.OrderID] = ev
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return col
}

func (c *collector) first(orderID string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.delivered[orderID]
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0], true
}

// placeCrashing places an order whose fault point crashes; returns the order ID.
func placeCrashing(t *testing.T, svc *Service, fault string) string {
	t.Helper()
	var id string
	func() {
		defer func() {
			if r := recover(); r != errCrashed {
				t.Fatalf("recovered %v, want the crash", r)
			}
		}()
		svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: fault})
	}()
	rec := svc.producer.(*recorder)
	rec.mu.Lock()
	id = rec.keys[len(rec.keys)-1]
	rec.mu.Unlock()
	if id == "" {
		t.Fatal("no order in flight after the crash")
	}
	return id
}

func TestBrokerDeliversPlacedOrder(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "orders")
	dsn := testenv.NewDatabase(t, "orders")
	col := collect(t, topic)
	in := startInstance(t, dsn, topic, testenv.Unique("pg"))

	start := time.Now()
	placed, err := in.svc.Place(context.Background(), validRequest("u1"), "", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "delivery", func() bool { _, ok := col.first(placed.Order.OrderID); return ok })
	at, _ := col.first(placed.Order.OrderID)
	t.Logf("placed -> delivered in %v", at.Sub(start).Round(time.Millisecond))
	col.mu.Lock()
	ev := col.bodies[placed.Order.OrderID]
	col.mu.Unlock()
	if ev.UserID != "u1" || len(ev.Items) != 2 {
		t.Fatalf("delivered event = %+v", ev)
	}
}

// skip-end-transaction: committed locally, the broker never hears; its check-back commits.
func TestBrokerCheckBackCommitsSkippedAnswer(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "orders")
	dsn := testenv.NewDatabase(t, "orders")
	col := collect(t, topic)
	in := startInstance(t, dsn, topic, testenv.Unique("pg"))

	start := time.Now()
	placed, err := in.svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: FaultSkipEndTransaction})
	if err != nil || placed.Order.Status != StatusCreated {
		t.Fatalf("Place = %+v, %v; want created", placed, err)
	}
	testenv.Eventually(t, 90*time.Second, "check-back and delivery", func() bool {
		_, ok := col.first(placed.Order.OrderID)
		return ok
	})
	at, _ := col.first(placed.Order.OrderID)
	t.Logf("skip-end-transaction -> delivered after check-back in %v", at.Sub(start).Round(time.Millisecond))
	// The delivery must be the check-back's doing: the instance answered the broker Unknown, and
	// only a check-back answered Commit. The metric is counted before the answer leaves, so it is
	// there by the time the message is delivered. (This group's only other half message, the
	// warm-up, is rolled back at once and never checked back.)
	if n := testutil.ToFloat64(in.svc.metrics.checkBacks.WithLabelValues("commit")); n < 1 {
		t.Fatalf("delivered with %v commit check-backs answered; the commit did not come from a check-back", n)
	}
	if n := testutil.ToFloat64(in.svc.metrics.checkBacks.WithLabelValues("rollback")); n != 0 {
		t.Fatalf("%v check-backs answered rollback for a committed order", n)
	}
}

// Two instances in one producer group. The first dies with half messages pending (one committed
// locally, one not even started); the broker's check-backs reach the live instance, which answers
// from the shared database: the committed order is delivered, the other never.
func TestBrokerLiveInstanceResolvesDeadInstancesHalfMessages(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "orders")
	dsn := testenv.NewDatabase(t, "orders")
	group := testenv.Unique("pg")
	col := collect(t, topic)
	dead := startInstance(t, dsn, topic, group)
	live := startInstance(t, dsn, topic, group)

	committed := placeCrashing(t, dead.svc, FaultCrashAfterLocalCommit)
	abandoned := placeCrashing(t, dead.svc, FaultCrashAfterHalf)
	dead.stop() // the instance is gone: only live can answer
	start := time.Now()

	testenv.Eventually(t, 90*time.Second, "the committed order's delivery", func() bool {
		_, ok := col.first(committed)
		return ok
	})
	at, _ := col.first(committed)
	t.Logf("dead instance's committed order delivered %v after it died", at.Sub(start).Round(time.Millisecond))
	if n := testutil.ToFloat64(live.svc.metrics.checkBacks.WithLabelValues("commit")); n < 1 {
		t.Fatalf("live instance answered %v commit check-backs, want at least 1", n)
	}
	// The abandoned one was claimed as rolled back by a check-back (answered by live).
	st := live.svc.store
	testenv.Eventually(t, 90*time.Second, "the abandoned order's check-back", func() bool {
		o, err := st.TxOutcome(context.Background(), abandoned)
		return err == nil && o == store.RolledBack
	})
	time.Sleep(3 * time.Second) // a rollback answered now would otherwise show up as a delivery soon
	if _, ok := col.first(abandoned); ok {
		t.Fatal("an order that never committed was delivered")
	}
}
