package order

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/testenv"
)

// relayProducer records what a relay publishes, safe for relays side by side; while down is set,
// every send fails as with the broker gone.
type relayProducer struct {
	mu    sync.Mutex
	down  bool
	sent  []*primitive.Message
	sends int // SendSync calls that succeeded
}

func (p *relayProducer) SendSync(_ context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, errors.New("broker down")
	}
	p.sent = append(p.sent, msgs...)
	p.sends++
	return &primitive.SendResult{Status: primitive.SendOK}, nil
}

func (p *relayProducer) setDown(down bool) { p.mu.Lock(); p.down = down; p.mu.Unlock() }

// sentKeys counts the published messages by key (order ID).
func (p *relayProducer) sentKeys() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := map[string]int{}
	for _, m := range p.sent {
		n[m.GetKeys()]++
	}
	return n
}

func testRelay(t *testing.T, st *store.Store, p PlainProducer, faults bool) *Relay {
	t.Helper()
	r, err := NewRelay(st, p, discard(), prometheus.NewRegistry(), RelayConfig{
		Batch: 10, Faults: faults, Crash: func() { panic(errCrashed) }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func outboxSize(t *testing.T, st *store.Store) int64 {
	t.Helper()
	n, err := st.OutboxSize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("the order and its event commit together; the relay publishes and deletes it", func(t *testing.T) {
		t.Parallel()
		svc, fp, st, _ := testService(t, true)
		pp := &relayProducer{}
		placed, err := svc.Outbox(func() {}).Place(ctx, validRequest("u1"), "", Fault{Point: FaultCartFailOnce})
		if err != nil {
			t.Fatal(err)
		}
		id := placed.Order.OrderID
		if outcome, err := st.TxOutcome(ctx, id); err != nil || outcome != store.Committed {
			t.Errorf("tx_log = %q, %v; want committed", outcome, err)
		}
		if n := outboxSize(t, st); n != 1 {
			t.Fatalf("outbox holds %d rows before the relay ran, want 1", n)
		}
		if n, err := testRelay(t, st, pp, true).Once(ctx); err != nil || n != 1 {
			t.Fatalf("Once = %d, %v; want 1 published", n, err)
		}
		if len(pp.sent) != 1 {
			t.Fatalf("published %d messages, want 1", len(pp.sent))
		}
		m := pp.sent[0]
		ev, err := events.Decode(m.Body)
		if m.GetKeys() != id || m.GetTags() != events.TagOrderCreated || err != nil || ev.OrderID != id {
			t.Errorf("published keys %q tag %q event %+v (%v); want OrderCreated of %s keyed by it", m.GetKeys(), m.GetTags(), ev, err, id)
		}
		if got := m.GetProperty(events.PropertyFault); got != FaultCartFailOnce {
			t.Errorf("fault property %q, want the forwarded %q", got, FaultCartFailOnce)
		}
		if n := outboxSize(t, st); n != 0 {
			t.Errorf("outbox holds %d rows after the relay, want 0", n)
		}
		if sent, _ := fp.Counts(); sent != 0 {
			t.Errorf("the outbox sent %d half messages, want none", sent)
		}
	})

	t.Run("a claimed batch goes out in one send; an instance's own commit wakes its relay", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, false)
		pp := &relayProducer{}
		// A poll interval longer than the test: only the wake can explain a publish.
		reg := prometheus.NewRegistry()
		relay, err := NewRelay(st, pp, discard(), reg, RelayConfig{Interval: time.Hour, Batch: 10})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := svc.Outbox(func() {}).Place(ctx, validRequest(fmt.Sprintf("u%d", i)), "", Fault{}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := relay.Once(ctx); err != nil || n != 3 {
			t.Fatalf("Once = %d, %v; want 3 published", n, err)
		}
		pp.mu.Lock()
		sends := pp.sends
		pp.mu.Unlock()
		if sends != 1 {
			t.Fatalf("3 rows of one claim went out in %d sends, want 1", sends)
		}

		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); relay.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
		// Run looks once at start; the order must come after that, when only a wake can move it.
		testenv.Eventually(t, 5*time.Second, "the relay's first look, at start", func() bool {
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "outbox_polls_total" {
					return mf.GetMetric()[0].GetCounter().GetValue() >= 2 // Once above, then Run's
				}
			}
			return false
		})
		placed, err := svc.Outbox(relay.Wake).Place(ctx, validRequest("u9"), "", Fault{})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the woken relay's publish", func() bool {
			return pp.sentKeys()[placed.Order.OrderID] == 1
		})
	})

	t.Run("broker down: the order is accepted and its event waits in the outbox", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, false)
		pp := &relayProducer{down: true}
		relay := testRelay(t, st, pp, false)
		placed, err := svc.Outbox(func() {}).Place(ctx, validRequest("u1"), "", Fault{})
		if err != nil {
			t.Fatalf("Place with the broker down = %v, want the order accepted", err)
		}
		if n, err := relay.Once(ctx); err == nil || n != 0 {
			t.Fatalf("Once with the broker down = %d, %v; want an error and nothing published", n, err)
		}
		if n := outboxSize(t, st); n != 1 {
			t.Fatalf("outbox holds %d rows, want the event kept", n)
		}
		pp.setDown(false)
		if n, err := relay.Once(ctx); err != nil || n != 1 || pp.sentKeys()[placed.Order.OrderID] != 1 {
			t.Fatalf("Once with the broker back = %d, %v, sent %v; want the event published", n, err, pp.sentKeys())
		}
	})

	t.Run("a relay dying between publish and delete publishes again: a duplicate", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, true)
		pp := &relayProducer{}
		placed, err := svc.Outbox(func() {}).Place(ctx, validRequest("u1"), "", Fault{Point: FaultCrashAfterRelayPublish})
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if r := recover(); r != errCrashed {
					t.Fatalf("recovered %v, want the relay to crash", r)
				}
			}()
			_, _ = testRelay(t, st, pp, true).Once(ctx)
		}()
		if n := outboxSize(t, st); n != 1 {
			t.Fatalf("outbox holds %d rows after the crash, want the published row still there", n)
		}
		if n, err := testRelay(t, st, pp, true).Once(ctx); err != nil || n != 1 {
			t.Fatalf("restarted relay Once = %d, %v; want the row published again", n, err)
		}
		if got := pp.sentKeys()[placed.Order.OrderID]; got != 2 {
			t.Errorf("published %d times, want 2 (the duplicate the consumer absorbs)", got)
		}
		if n := outboxSize(t, st); n != 0 {
			t.Errorf("outbox holds %d rows, want 0", n)
		}
	})

	t.Run("fail-local-tx writes neither the order nor its event", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, true)
		_, err := svc.Outbox(func() {}).Place(ctx, validRequest("u1"), "", Fault{Point: FaultFailLocalTx})
		if !errors.Is(err, ErrNotPlaced) {
			t.Fatalf("Place = %v, want ErrNotPlaced", err)
		}
		if n := outboxSize(t, st); n != 0 {
			t.Errorf("outbox holds %d rows, want 0", n)
		}
	})

	t.Run("the half-message fault points, and resend-event, are refused; nothing is written", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, true)
		for _, f := range []Fault{{Point: FaultSkipEndTransaction}, {Point: FaultCrashAfterHalf}, {Point: FaultResendEvent},
			{Point: FaultFailLocalTx, With: []string{FaultSlowLocalTx}}} {
			_, err := svc.Outbox(func() {}).Place(ctx, validRequest("u1"), "", f)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("Place with %s = %v, want a ValidationError", f, err)
			}
		}
		if n := outboxSize(t, st); n != 0 {
			t.Errorf("outbox holds %d rows, want 0", n)
		}
	})

	t.Run("the transactional flow refuses crash-after-relay-publish before sending anything", func(t *testing.T) {
		t.Parallel()
		svc, fp, _, _ := testService(t, true)
		_, err := svc.Place(ctx, validRequest("u1"), "", Fault{Point: FaultCrashAfterRelayPublish})
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Place = %v, want a ValidationError", err)
		}
		if sent, _ := fp.Counts(); sent != 0 {
			t.Errorf("%d half messages sent, want none", sent)
		}
	})

	t.Run("relays side by side never publish one row twice", func(t *testing.T) {
		t.Parallel()
		svc, _, st, _ := testService(t, false)
		out := svc.Outbox(func() {})
		const orders = 60
		for i := range orders {
			if _, err := out.Place(ctx, validRequest("u"+string(rune('a'+i%26))), "", Fault{}); err != nil {
				t.Fatal(err)
			}
		}
		pp := &relayProducer{}
		var wg sync.WaitGroup
		for range 3 {
			relay := testRelay(t, st, pp, false)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n, err := relay.Once(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if n == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		keys := pp.sentKeys()
		if len(keys) != orders {
			t.Errorf("published %d distinct orders, want %d", len(keys), orders)
		}
		for k, n := range keys {
			if n != 1 {
				t.Errorf("order %s published %d times, want once", k, n)
			}
		}
		if n := outboxSize(t, st); n != 0 {
			t.Errorf("outbox holds %d rows, want 0", n)
		}
	})
}
