package cart_test

import (
	"context"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/pkg/testenv"
	"rmqtx/pkg/tracing"
)

// The delivery that fails after its last retry is the one the broker dead-letters: it, and only
// it, is counted.
func TestLastRetryIsCountedAsDeadLettered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{withProxy: true})
	const maxReconsume = 2
	h, err := cart.NewHandler(f.store, f.metrics, testenv.Logger(t), cart.Config{MaxReconsume: maxReconsume})
	ev := order("o1", "u1", item("A", 1))
	if err != nil {
		t.Fatal(err)
	}

	f.proxy.SetDown(true)
	for reconsumed := range int32(maxReconsume + 1) {
		result, err := h.Consume(context.Background(), eventMessage(t, ev, "", reconsumed))
		if err != nil || result != consumer.ConsumeRetryLater {
			t.Fatalf("delivery with reconsume count %d during the outage: %s, %v; want a retry", reconsumed, name(result), err)
		}
		want := 0.0
		if reconsumed >= maxReconsume {
			want = 1
		}
		if got := metric(t, f.reg, "cart_dead_lettered_total").GetCounter().GetValue(); got != want {
			t.Errorf("after the delivery with reconsume count %d: cart_dead_lettered_total = %v, want %v", reconsumed, got, want)
		}
	}
}

// The consumer's spans continue the trace whose context order-service wrote into the message.
func TestConsumeContinuesTheProducersTrace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.setCart(t, "u1", map[string]int{"A": 5})
	rec := tracetest.NewSpanRecorder()
	tp := tracing.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	h, err := cart.NewHandler(f.store, f.metrics, testenv.Logger(t), cart.Config{Tracing: tp})

	// What order-service does when it builds the message.
	producerCtx, send := tp.Tracer("test").Start(context.Background(), "send half message")
	if err != nil {
		t.Fatal(err)
	}
	msg := eventMessage(t, order("o-traced", "u1", item("A", 2)), "", 0)
	tp.InjectMessage(producerCtx, &msg.Message)
	send.End()

	if result, err := h.Consume(context.Background(), msg); err != nil || result != consumer.ConsumeSuccess {
		t.Fatalf("Consume = %s, %v", name(result), err)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	consume, apply := spans["consume OrderCreated"], spans["apply to cart"]
	if consume == nil || apply == nil {
		t.Fatalf("spans %v, want consume OrderCreated and apply to cart", spans)
	}
	if consume.SpanContext().TraceID() != send.SpanContext().TraceID() || consume.Parent().SpanID() != send.SpanContext().SpanID() {
		t.Errorf("consume span in trace %s under %s, want the producer's trace %s under its span %s",
			consume.SpanContext().TraceID(), consume.Parent().SpanID(), send.SpanContext().TraceID(), send.SpanContext().SpanID())
	}
	if apply.Parent().SpanID() != consume.SpanContext().SpanID() {
		t.Errorf("apply span's parent %s, want the consume span %s", apply.Parent().SpanID(), consume.SpanContext().SpanID())
	}
	for _, s := range []sdktrace.ReadOnlySpan{consume, apply} {
		found := false
		for _, a := range s.Attributes() {
			found = found || a == attribute.String("order.id", "o-traced")
		}
		if !found {
			t.Errorf("span %q has no order.id attribute: %v", s.Name(), s.Attributes())
		}
	}
}
