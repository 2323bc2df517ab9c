package mq_test

// These tests prove, against the real NameServer and Broker started by scripts/infra-up.sh, the
// broker behaviour the whole project depends on: a half message whose producer answered neither
// commit nor rollback is checked back, and the check-back's answer decides whether consumers ever
// see it.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"rmqtx/pkg/mq"
	"rmqtx/pkg/testenv"
)

// unknownThenAsk answers Unknown at first, then answers each check-back from decide, by key.
type unknownThenAsk struct {
	decide map[string]primitive.LocalTransactionState
	mu     sync.Mutex
	checks map[string]time.Time // first check-back per key
}

func (l *unknownThenAsk) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.UnkonwnState
}

func (l *unknownThenAsk) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.checks[m.GetKeys()]; !seen {
		l.checks[m.GetKeys()] = time.Now()
	}
	return l.decide[m.GetKeys()]
}

func (l *unknownThenAsk) checkedAt(key string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.checks[key]
	return at, ok
}

func TestCheckBackDecidesDelivery(t *testing.T) {
	t.Parallel()
	testenv.RequireBroker(t)
	topic := testenv.NewTopic(t, "checkback")
	mq.RouteClientLogs(testenv.Logger(t))

	var (
		mu        sync.Mutex
		delivered = map[string]time.Time{}
	)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(mq.Resolver(testenv.Namesrv())),
		consumer.WithGroupName(testenv.Unique("cg")),
		consumer.WithInstance(mq.InstanceName("test-consumer")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			delivered[m.GetKeys()] = time.Now()
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start consumer: %v", err)
	}
	t.Cleanup(func() { c.Shutdown() })

	listener := &unknownThenAsk{
		decide: map[string]primitive.LocalTransactionState{
			"commit-me":   primitive.CommitMessageState,
			"rollback-me": primitive.RollbackMessageState,
		},
		checks: map[string]time.Time{},
	}
	p, err := rocketmq.NewTransactionProducer(listener,
		producer.WithNsResolver(mq.Resolver(testenv.Namesrv())),
		producer.WithGroupName(testenv.Unique("pg")),
		producer.WithInstanceName(mq.InstanceName("test-producer")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	t.Cleanup(func() { p.Shutdown() })

	sent := time.Now()
	for _, key := range []string{"commit-me", "rollback-me"} {
		msg := primitive.NewMessage(topic, []byte(key)).WithKeys([]string{key})
		res, err := p.SendMessageInTransaction(context.Background(), msg)
		if err != nil {
			t.Fatalf("send %s: %v", key, err)
		}
		if res.State != primitive.UnkonwnState {
			t.Fatalf("send %s: local state %v, want Unknown", key, res.State)
		}
	}

	// Generous deadline: the broker checks a half message once it is older than transactionTimeOut
	// (3 s here) on its next scan (every 2 s), but only producers whose heartbeat it has seen.
	testenv.Eventually(t, 90*time.Second, "check-back of both messages", func() bool {
		_, a := listener.checkedAt("commit-me")
		_, b := listener.checkedAt("rollback-me")
		return a && b
	})
	testenv.Eventually(t, 30*time.Second, "delivery of the committed message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := delivered["commit-me"]
		return ok
	})
	checked, _ := listener.checkedAt("commit-me")
	mu.Lock()
	got := delivered["commit-me"]
	mu.Unlock()
	t.Logf("send -> check-back %v, send -> delivery %v (check-back -> delivery %v)",
		checked.Sub(sent).Round(time.Millisecond), got.Sub(sent).Round(time.Millisecond), got.Sub(checked).Round(time.Millisecond))

	// The rolled-back message must never reach a consumer. Its check-back was answered by now;
	// give the broker as long again as the commit took to be delivered, plus a margin.
	time.Sleep(got.Sub(checked) + 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if at, ok := delivered["rollback-me"]; ok {
		t.Fatalf("rolled-back message was delivered at %v", at.Sub(sent))
	}
}
