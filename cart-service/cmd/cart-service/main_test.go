package main

// run itself, against the real MariaDB and RocketMQ: configuration errors, and OrderCreated events
// published to a fresh topic reaching the cart through the real consumer wiring.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/google/go-cmp/cmp"

	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/testenv"
)

func TestBadConfigStopsAtStart(t *testing.T) {
	t.Parallel()
	// Addresses nobody listens on: if run touched a server before checking its settings, it
	// would wait for it (and fail differently, much later).
	good := map[string]string{
		"MYSQL_DSN":        "u:p@tcp(127.0.0.1:1)/carts",
		"ROCKETMQ_NAMESRV": "127.0.0.1:1",
	}
	tests := []struct {
		name    string
		set     map[string]string
		setting string // the name the error must carry
	}{
		{"missing MYSQL_DSN", map[string]string{"MYSQL_DSN": ""}, "MYSQL_DSN"},
		{"DSN without a database", map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:1)/"}, "MYSQL_DSN"},
		{"missing ROCKETMQ_NAMESRV", map[string]string{"ROCKETMQ_NAMESRV": ""}, "ROCKETMQ_NAMESRV"},
		{"bad HTTP_ADDR", map[string]string{"HTTP_ADDR": "8082"}, "HTTP_ADDR"},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"bad FAULT_INJECTION", map[string]string{"FAULT_INJECTION": "yes"}, "FAULT_INJECTION"},
		{"MAX_RECONSUME not a number", map[string]string{"MAX_RECONSUME": "five"}, "MAX_RECONSUME"},
		{"MAX_RECONSUME zero", map[string]string{"MAX_RECONSUME": "0"}, "MAX_RECONSUME"},
		{"MAX_RECONSUME too large", map[string]string{"MAX_RECONSUME": "1000"}, "MAX_RECONSUME"},
		{"bad SHUTDOWN_TIMEOUT", map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT"},
		{"unknown CONSUMER", map[string]string{"CONSUMER": "dedup-by-order-id"}, "CONSUMER"},
		// A consumer that is wrong on purpose never runs by accident.
		{"wrong CONSUMER, fault injection unset", map[string]string{"CONSUMER": "dedup-by-message-id"}, "FAULT_INJECTION=on"},
		{"wrong CONSUMER, fault injection off", map[string]string{"CONSUMER": "ack-before-commit", "FAULT_INJECTION": "off"}, "FAULT_INJECTION=on"},
		{"wrong CONSUMER, in capitals", map[string]string{"CONSUMER": "Delete-Lines"}, "CONSUMER=delete-lines"},
		{"MAX_IN_FLIGHT zero", map[string]string{"MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT"},
		{"MAX_IN_FLIGHT over the pool", map[string]string{"MAX_IN_FLIGHT": "33"}, "MAX_IN_FLIGHT"},
		{"bad ADMISSION_WAIT", map[string]string{"ADMISSION_WAIT": "forever"}, "ADMISSION_WAIT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range good {
				env[k] = v
			}
			for k, v := range tc.set {
				env[k] = v
			}
			var stdout bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := run(ctx, func(k string) string { return env[k] }, &stdout)
			if err == nil || !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("run = %v, want an error naming %s", err, tc.setting)
			}
			t.Logf("run returned after %v", time.Since(start).Round(time.Millisecond))
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q; want one line", err)
			}
			// Not after waiting for a server: that would end in the context's deadline.
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Errorf("run = %v after the context ended (%v); want the settings error before any wait", err, ctx.Err())
			}
			if stdout.Len() != 0 {
				t.Errorf("run logged before checking its settings: %s", stdout.String())
			}
		})
	}
}

// logSink collects the service's JSON log lines and spots the "listening" line. It takes any
// chunking of the stream (a child process's stdout arrives through a pipe).
type logSink struct {
	mu        sync.Mutex
	partial   []byte
	records   []map[string]any
	listening chan string
}

func newLogSink() *logSink { return &logSink{listening: make(chan string, 1)} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := s.partial[:i]
		s.partial = s.partial[i+1:]
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		s.records = append(s.records, rec)
		if addr, ok := rec["addr"].(string); ok && rec["msg"] == "listening" {
			select {
			case s.listening <- addr:
			default:
			}
		}
	}
}

// at returns the time of the first record with this message and order ID.
func (s *logSink) at(msg, orderID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if r["msg"] == msg && r["order_id"] == orderID {
			ts, err := time.Parse(time.RFC3339Nano, r["time"].(string))
			return ts, err == nil
		}
	}
	return time.Time{}, false
}

func (s *logSink) dump(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		b, _ := json.Marshal(r)
		t.Log(string(b))
	}
}

type service struct {
	url  string
	logs *logSink
	stop func() error // cancels run and returns its result
}

func startService(t *testing.T, env map[string]string) *service {
	t.Helper()
	logs := newLogSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, logs) }()
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			logs.dump(t)
		}
	})
	select {
	case addr := <-logs.listening:
		var once sync.Once
		var result error
		return &service{url: "http://" + addr, logs: logs, stop: func() error {
			once.Do(func() {
				cancel()
				select {
				case result = <-done:
				case <-time.After(60 * time.Second):
					result = fmt.Errorf("run did not return within 60s of cancellation")
				}
			})
			return result
		}}
	case err := <-done:
		logs.dump(t)
		t.Fatalf("run stopped at start: %v", err)
	case <-time.After(90 * time.Second):
		logs.dump(t)
		t.Fatalf("run did not start listening within 90s")
	}
	return nil
}

func newProducer(t *testing.T) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(mq.Resolver(testenv.Namesrv())),
		producer.WithGroupName(testenv.Unique("test_pg")),
		producer.WithInstanceName(mq.InstanceName("test-producer")),
		producer.WithRetry(2),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

// publish sends a message as order-service's commit makes it visible: tag OrderCreated, key the
// order ID, the fault point (if any) as a property.
// publish sends one OrderCreated message and returns its message ID.
func publish(t *testing.T, p rocketmq.Producer, topic, key string, body []byte, fault string) string {
	t.Helper()
	msg := primitive.NewMessage(topic, body).WithTag(events.TagOrderCreated).WithKeys([]string{key})
	msg.WithProperty(events.PropertyFault, fault)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.SendSync(ctx, msg)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("publish %s: %v %v", key, res, err)
	}
	return res.MsgID
}

func eventBody(t *testing.T, orderID, userID string, items ...events.Item) []byte {
	t.Helper()
	b, err := json.Marshal(events.OrderCreated{
		Version: events.CurrentVersion, OrderID: orderID, UserID: userID, Items: items,
		TotalCents: 100, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func httpDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (s *service) cart(t *testing.T, userID string) map[string]int {
	t.Helper()
	status, body := httpDo(t, "GET", s.url+"/carts/"+userID, "")
	if status != http.StatusOK {
		t.Fatalf("GET cart: %d %s", status, body)
	}
	var c struct {
		Items []struct {
			SKU      string `json:"sku"`
			Quantity int    `json:"quantity"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, it := range c.Items {
		m[it.SKU] = it.Quantity
	}
	return m
}

func (s *service) put(t *testing.T, userID, sku string, q int) {
	t.Helper()
	status, body := httpDo(t, "PUT", fmt.Sprintf("%s/carts/%s/items/%s", s.url, userID, sku), fmt.Sprintf(`{"quantity":%d}`, q))
	if status != http.StatusOK {
		t.Fatalf("PUT %s/%s: %d %s", userID, sku, status, body)
	}
}

// applied waits until the order is in processed_orders and returns its applied_at.
func (s *service) applied(t *testing.T, userID, orderID string) time.Time {
	t.Helper()
	var got struct {
		AppliedAt      time.Time `json:"applied_at"`
		OrderCreatedAt time.Time `json:"order_created_at"`
	}
	testenv.Eventually(t, 60*time.Second, "order "+orderID+" applied to the cart", func() bool {
		status, body := httpDo(t, "GET", fmt.Sprintf("%s/carts/%s/orders/%s", s.url, userID, orderID), "")
		return status == http.StatusOK && json.Unmarshal(body, &got) == nil
	})
	return got.AppliedAt
}

// metric reads one series from /metrics, e.g. `cart_messages_total{outcome="duplicate"}`.
func (s *service) metric(t *testing.T, series string) float64 {
	t.Helper()
	status, body := httpDo(t, "GET", s.url+"/metrics", "")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", status)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("series %s not in /metrics", series)
	return 0
}

func (s *service) waitMetric(t *testing.T, series string, want float64) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("%s = %v", series, want), func() bool {
		return s.metric(t, series) >= want
	})
	if got := s.metric(t, series); got != want {
		t.Fatalf("%s = %v, want %v", series, got, want)
	}
}

func TestRunConsumesFromTheBroker(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "cartsvc")
	p := newProducer(t)

	// Published before the consumer group exists: consuming from the first offset picks it up.
	publish(t, p, topic, "o-early", eventBody(t, "o-early", "u0", events.Item{SKU: "A-1", Quantity: 1}), "")

	svc := startService(t, map[string]string{
		"HTTP_ADDR":            "127.0.0.1:0",
		"MYSQL_DSN":            testenv.NewDatabase(t, "cartsvc"),
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       topic,
		"ROCKETMQ_GROUP":       testenv.Unique("cart_cg"),
		"FAULT_INJECTION":      "on",
		"MAX_RECONSUME":        "3",
		"LOG_LEVEL":            "debug",
	})

	t.Run("event published before the group existed", func(t *testing.T) {
		svc.applied(t, "u0", "o-early")
	})

	t.Run("order reaches the cart", func(t *testing.T) {
		svc.put(t, "u1", "A-1", 3)
		svc.put(t, "u9", "A-1", 4) // another user's cart, which must stay as it is
		svc.put(t, "u1", "B-2", 1)
		sent := time.Now()
		body := eventBody(t, "o1", "u1", events.Item{SKU: "A-1", Quantity: 2}, events.Item{SKU: "B-2", Quantity: 1})
		publish(t, p, topic, "o1", body, "")
		appliedAt := svc.applied(t, "u1", "o1")
		seen := time.Now()
		if diff := cmp.Diff(map[string]int{"A-1": 1}, svc.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]int{"A-1": 4}, svc.cart(t, "u9")); diff != "" {
			t.Fatalf("another user's cart (-want +got):\n%s", diff)
		}
		ev, _ := events.Decode(body)
		t.Logf("order-to-cart: event created_at -> cart commit %v; publish -> visible over HTTP %v (polling every 100 ms)",
			appliedAt.Sub(ev.CreatedAt).Round(time.Millisecond), seen.Sub(sent).Round(time.Millisecond))
	})

	t.Run("same event twice more changes nothing", func(t *testing.T) {
		body := eventBody(t, "o1", "u1", events.Item{SKU: "A-1", Quantity: 2}, events.Item{SKU: "B-2", Quantity: 1})
		publish(t, p, topic, "o1", body, "")
		publish(t, p, topic, "o1", body, "")
		svc.waitMetric(t, `cart_messages_total{outcome="duplicate"}`, 2)
		if diff := cmp.Diff(map[string]int{"A-1": 1}, svc.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
	})

	t.Run("cart-fail-once is retried by the broker", func(t *testing.T) {
		svc.put(t, "u2", "C-3", 5)
		publish(t, p, topic, "o2", eventBody(t, "o2", "u2", events.Item{SKU: "C-3", Quantity: 2}), faults.CartFailOnce)
		svc.applied(t, "u2", "o2")
		if diff := cmp.Diff(map[string]int{"C-3": 3}, svc.cart(t, "u2")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
		failed, ok1 := svc.logs.at("fault injection: failing the first delivery", "o2")
		applied, ok2 := svc.logs.at("order applied to cart", "o2")
		if !ok1 || !ok2 {
			t.Fatalf("log lines of the failed (%v) and the applying (%v) delivery", ok1, ok2)
		}
		if got := svc.metric(t, `cart_messages_total{outcome="retried"}`); got != 1 {
			t.Errorf("retried = %v, want 1", got)
		}
		delay := applied.Sub(failed)
		t.Logf("redelivery after a failed delivery: %v (delay level 1)", delay.Round(time.Millisecond))
		// Delay level 1 is 1 s on the test broker; about 30 s would mean the consumer did not
		// know its retry topic's route and waited for the client's refresh. Reported, not
		// asserted: a loaded machine can stretch any delay. What must hold is the order.
		if !applied.After(failed) {
			t.Errorf("applied at %v, not after the failed delivery at %v", applied, failed)
		}
	})

	t.Run("poison message is recorded and acknowledged", func(t *testing.T) {
		publish(t, p, topic, "junk", []byte("this is not an event"), "")
		svc.waitMetric(t, `cart_messages_total{outcome="rejected"}`, 1)
		if got := svc.metric(t, "cart_rejected_messages"); got != 1 {
			t.Errorf("cart_rejected_messages = %v, want 1", got)
		}
		// Acknowledged, not retried: give the broker a retry's worth of time, then look again.
		time.Sleep(3 * time.Second)
		if got := svc.metric(t, `cart_messages_total{outcome="rejected"}`); got != 1 {
			t.Errorf("rejected = %v after waiting; a poison message was delivered again", got)
		}
	})

	t.Run("ready, then graceful shutdown", func(t *testing.T) {
		if status, body := httpDo(t, "GET", svc.url+"/readyz", ""); status != http.StatusOK {
			t.Fatalf("readyz: %d %s", status, body)
		}
		start := time.Now()
		if err := svc.stop(); err != nil {
			t.Fatalf("run returned %v after cancellation, want nil", err)
		}
		t.Logf("shutdown took %v", time.Since(start).Round(time.Millisecond))
		if _, err := http.Get(svc.url + "/healthz"); err == nil {
			t.Fatalf("still serving HTTP after run returned")
		}
	})
}

// A message that keeps failing for a transient-looking reason is retried MAX_RECONSUME times and
// then moved by the broker to the group's dead-letter topic, instead of looping for ever. A
// database trigger makes every attempt to apply one order fail, as a real error would.
func TestPersistentFailureEndsInDeadLetterTopic(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "cartdlq")
	group := testenv.Unique("cart_cg")
	dsn := testenv.NewDatabase(t, "cartdlq")
	svc := startService(t, map[string]string{
		"HTTP_ADDR":            "127.0.0.1:0",
		"MYSQL_DSN":            dsn,
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       topic,
		"ROCKETMQ_GROUP":       group,
		"MAX_RECONSUME":        "2",
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := testenv.OpenDB(t, dsn, "")
	err := db.WithContext(ctx).Exec(`CREATE TRIGGER fail_o_dlq BEFORE INSERT ON processed_orders FOR EACH ROW
		IF NEW.order_id = 'o-dlq' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF`).Error
	if err != nil {
		t.Fatalf("create trigger: %v", err)
	}

	svc.put(t, "u1", "A-1", 5)
	p := newProducer(t)
	sent := time.Now()
	msgID := publish(t, p, topic, "o-dlq", eventBody(t, "o-dlq", "u1", events.Item{SKU: "A-1", Quantity: 2}), "")

	// The first delivery and MAX_RECONSUME=2 retries.
	svc.waitMetric(t, `cart_messages_total{outcome="retried"}`, 3)
	took := time.Since(sent)
	t.Logf("three failed deliveries took %v (delay levels 1 and 2 are 1 s each on the test broker)", took.Round(time.Millisecond))

	adm, err := mq.NewAdmin(testenv.Namesrv())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	dlq := "%DLQ%" + group
	testenv.Eventually(t, 60*time.Second, "the dead-letter topic "+dlq, func() bool {
		return adm.Ping(ctx, dlq) == nil
	})
	// The message itself is there: read the dead-letter topic with a consumer of its own.
	var (
		mu   sync.Mutex
		dead []*primitive.MessageExt
	)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(mq.Resolver(testenv.Namesrv())),
		consumer.WithGroupName(testenv.Unique("test_dlq_reader")),
		consumer.WithInstance(mq.InstanceName("test-dlq-reader")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(dlq, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			dead = append(dead, msgs...)
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start a consumer of %s: %v", dlq, err)
	}
	t.Cleanup(func() { c.Shutdown() })
	testenv.Eventually(t, 60*time.Second, "order o-dlq's message in "+dlq, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(dead) > 0
	})
	mu.Lock()
	got := dead
	mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d messages in %s, want the one of o-dlq", len(got), dlq)
	}
	if got[0].GetKeys() != "o-dlq" || got[0].GetTags() != events.TagOrderCreated {
		t.Fatalf("message in %s: keys %q tags %q, want o-dlq's OrderCreated", dlq, got[0].GetKeys(), got[0].GetTags())
	}
	if ev, err := events.Decode(got[0].Body); err != nil || ev.OrderID != "o-dlq" {
		t.Fatalf("message in %s: %+v, %v; want the event of o-dlq", dlq, ev, err)
	}
	// The dead-letter copy keeps the message ID the producer was given (with this client, the
	// UNIQ_KEY property), as the retry copies do: deduplicating by it would see one message.
	if got[0].MsgId != msgID {
		t.Errorf("message ID in %s = %q, want the published one %q", dlq, got[0].MsgId, msgID)
	}
	// Moved after its last retry: no fourth delivery came before it, and none can come after.
	if got := svc.metric(t, `cart_messages_total{outcome="retried"}`); got != 3 {
		t.Errorf("retried = %v, want 3: the message was delivered again after its last retry", got)
	}
	if diff := cmp.Diff(map[string]int{"A-1": 5}, svc.cart(t, "u1")); diff != "" {
		t.Errorf("cart (-want +got):\n%s", diff)
	}
}
