package mq

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

type noListener struct{}

func (noListener) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.UnkonwnState
}
func (noListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.UnkonwnState
}

// KeepRegistered reaches into the client; this fails first when a client upgrade moves what it
// reaches for. Creating producers connects nowhere, so no server is needed.
func TestKeepRegisteredFindsTheInternalClient(t *testing.T) {
	ns := Resolver([]string{"127.0.0.1:1"})
	tp, err := rocketmq.NewTransactionProducer(noListener{}, producer.WithNsResolver(ns),
		producer.WithGroupName("keep-registered-test"), producer.WithInstanceName(InstanceName("test-tx")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rocketmq.NewProducer(producer.WithNsResolver(ns), producer.WithInstanceName(InstanceName("test")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rocketmq.NewPushConsumer(consumer.WithNsResolver(ns), consumer.WithGroupName("keep-registered-test"),
		consumer.WithInstance(InstanceName("test-consumer")))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]any{"transactional": tp, "default": p, "push consumer": c} {
		r, err := internalClient(c)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := newBrokerMemory(r); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := KeepRegistered(ctx, tp, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := KeepRegistered(ctx, struct{ client int }{}, time.Hour); err == nil {
		t.Error("a struct without the internal client was accepted")
	}
	if err := KeepRegistered(ctx, nil, time.Hour); err == nil {
		t.Error("nil was accepted")
	}
}

func TestBrokersSplitsTheList(t *testing.T) {
	for in, want := range map[string]int{"": 0, "127.0.0.1:10911": 1, "127.0.0.1:10911;127.0.0.1:10921": 2, " a:1 , b:2 ;": 2} {
		if got := Brokers(in); len(got) != want {
			t.Errorf("Brokers(%q) = %q, want %d addresses", in, got, want)
		}
	}
}
