package main

// The consumers that are wrong on purpose (internal/cart/wrong.go) where the broker matters: how
// message IDs really travel, and when an acknowledgement really reaches the broker. The service
// runs for real: in this process (run), or as a child process where it must crash.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/testenv"
)

func wrongEnv(t *testing.T, topic, consumer string) map[string]string {
	t.Helper()
	return map[string]string{
		"HTTP_ADDR":            "127.0.0.1:0",
		"MYSQL_DSN":            testenv.NewDatabase(t, "cartwrong"),
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       topic,
		"ROCKETMQ_GROUP":       testenv.Unique("cart_cg"),
		"FAULT_INJECTION":      "on",
		"CONSUMER":             consumer,
		"LOG_LEVEL":            "info",
	}
}

// oneQueueTopic makes a topic with a single queue, so that a later message is behind an earlier
// one: once the later one is consumed, the consumer has moved past the earlier one for good.
func oneQueueTopic(t *testing.T, prefix string) string {
	t.Helper()
	adm, err := mq.NewAdmin(testenv.Namesrv())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topic := testenv.Unique(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adm.EnsureTopic(ctx, topic, testenv.Broker(), 1); err != nil {
		t.Fatal(err)
	}
	return topic
}

// The warning at start and the gauge: a wrong consumer says what it is.
func (s *service) wantsWrongMode(t *testing.T, mode string) {
	t.Helper()
	if got := s.metric(t, `cart_consumer_mode{mode="`+mode+`"}`); got != 1 {
		t.Errorf(`cart_consumer_mode{mode=%q} = %v, want 1`, mode, got)
	}
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	for _, r := range s.logs.records {
		if r["level"] == "WARN" && r["consumer"] == mode && strings.Contains(r["msg"].(string), "WRONG ON PURPOSE") {
			return
		}
	}
	t.Errorf("no warning at start naming CONSUMER=%s", mode)
}

// Every copy the broker makes keeps the message ID, so deduplicating by it passes a retry; a new
// message for the same order (what resend-event publishes) has a new one and is applied again.
func TestDedupByMessageIDOnTheBroker(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "cartdedup")
	p := newProducer(t)
	svc := startService(t, wrongEnv(t, topic, "dedup-by-message-id"))
	svc.wantsWrongMode(t, "dedup-by-message-id")

	t.Run("a retry through the retry topic keeps the message ID: applied once", func(t *testing.T) {
		svc.put(t, "u1", "A-1", 5)
		publish(t, p, topic, "o1", eventBody(t, "o1", "u1", events.Item{SKU: "A-1", Quantity: 2}), faults.CartFailOnce)
		svc.applied(t, "u1", "o1")
		svc.waitMetric(t, `cart_messages_total{outcome="retried"}`, 1)
		if diff := cmp.Diff(map[string]int{"A-1": 3}, svc.cart(t, "u1")); diff != "" {
			t.Fatalf("cart (-want +got):\n%s", diff)
		}
	})

	t.Run("the same order as a new message: applied twice", func(t *testing.T) {
		svc.put(t, "u2", "A-1", 5)
		body := eventBody(t, "o2", "u2", events.Item{SKU: "A-1", Quantity: 2})
		publish(t, p, topic, "o2", body, "")
		publish(t, p, topic, "o2", body, "") // a new primitive.Message: a new message ID
		testenv.Eventually(t, 60*time.Second, "the second application", func() bool {
			return svc.cart(t, "u2")["A-1"] == 1
		})
		if got := svc.metric(t, `cart_messages_total{outcome="applied"}`); got != 3 {
			t.Errorf("applied = %v, want 3 (o1 once, o2 twice)", got)
		}
	})
	if err := svc.stop(); err != nil {
		t.Fatal(err)
	}
}

// cart-crash-before-apply, for real: the process kills itself before its cart transaction.
func TestCrashBeforeApply(t *testing.T) {
	t.Parallel()
	t.Run("correct: not acknowledged, applied after the restart", func(t *testing.T) {
		t.Parallel()
		env := wrongEnv(t, oneQueueTopic(t, "cartcba"), "correct")
		prod := newProducer(t)
		first := startProcess(t, env)
		first.put(t, "u1", "A-1", 5)
		publish(t, prod, env["ROCKETMQ_TOPIC"], "o1", eventBody(t, "o1", "u1", events.Item{SKU: "A-1", Quantity: 2}), faults.CartCrashBeforeApply)
		first.waitKilled(t)
		crashed := time.Now()

		second := startProcess(t, env)
		second.applied(t, "u1", "o1")
		t.Logf("crash before apply -> applied by the restarted service %v later", time.Since(crashed).Round(time.Millisecond))
		if diff := cmp.Diff(map[string]int{"A-1": 3}, second.cart(t, "u1")); diff != "" {
			t.Errorf("cart (-want +got):\n%s", diff)
		}
		if err := second.stop(); err != nil {
			t.Fatalf("the restarted service: %v", err)
		}
	})
	t.Run("ack-before-commit: acknowledged, never applied", func(t *testing.T) {
		t.Parallel()
		env := wrongEnv(t, oneQueueTopic(t, "cartabc"), "ack-before-commit")
		prod := newProducer(t)
		first := startProcess(t, env)
		first.wantsWrongMode(t, "ack-before-commit")
		first.put(t, "u1", "A-1", 5)
		publish(t, prod, env["ROCKETMQ_TOPIC"], "o-lost", eventBody(t, "o-lost", "u1", events.Item{SKU: "A-1", Quantity: 2}), faults.CartCrashBeforeApply)
		first.waitKilled(t)

		// Even the right consumer cannot get it back: the broker has the acknowledgement.
		env["CONSUMER"] = "correct"
		second := startProcess(t, env)
		second.put(t, "u2", "A-1", 5)
		// On the single queue, behind the lost message: once the marker is applied, the restarted
		// consumer has pulled from past the lost one.
		publish(t, prod, env["ROCKETMQ_TOPIC"], "o-marker", eventBody(t, "o-marker", "u2", events.Item{SKU: "A-1", Quantity: 1}), "")
		second.applied(t, "u2", "o-marker")
		// A message pulled together with the marker would be applied within milliseconds of it.
		time.Sleep(time.Second)
		if diff := cmp.Diff(map[string]int{"A-1": 5}, second.cart(t, "u1")); diff != "" {
			t.Errorf("cart of the lost order's user (-want +got):\n%s", diff)
		}
		if got := second.metric(t, `cart_messages_total{outcome="applied"}`); got != 1 {
			t.Errorf("the restarted service applied %v orders, want 1 (the marker only)", got)
		}
		if err := second.stop(); err != nil {
			t.Fatalf("the restarted service: %v", err)
		}
	})
}

// waitKilled waits for the process to kill itself with SIGKILL (a crash fault point).
func (p *process) waitKilled(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("cart-service did not crash within 60s")
	}
	if p.cmd.ProcessState.Success() || p.cmd.ProcessState.ExitCode() != -1 {
		t.Fatalf("cart-service ended with %v, want killed by a signal", p.cmd.ProcessState)
	}
}
