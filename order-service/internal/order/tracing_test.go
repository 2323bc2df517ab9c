package order

import (
	"context"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"rmqtx/pkg/tracing"
)

// The flow's spans nest as tracing.go draws them, the message carries the send span's context,
// and a check-back is a trace of its own that links back to the order's.
func TestSpansOfTheFlow(t *testing.T) {
	t.Parallel()
	svc, fp, _, _ := testService(t, false)
	rec := tracetest.NewSpanRecorder()
	tp := tracing.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	svc.tracing, svc.tracer = tp, tp.Tracer(tracerName)

	ctx, request := tp.Tracer("test").Start(context.Background(), "POST /orders")
	placed, err := svc.Place(ctx, validRequest("u1"), "", Fault{})
	request.End()
	if err != nil {
		t.Fatal(err)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	send, local := spans["send half message"], spans["local transaction"]
	if send == nil || local == nil {
		t.Fatalf("spans %v, want send half message and local transaction", spans)
	}
	if send.Parent().SpanID() != request.SpanContext().SpanID() || local.Parent().SpanID() != send.SpanContext().SpanID() {
		t.Errorf("send under %s, local transaction under %s; want request %s > send %s > local transaction",
			send.Parent().SpanID(), local.Parent().SpanID(), request.SpanContext().SpanID(), send.SpanContext().SpanID())
	}

	// What the broker stored, and hands back with a check-back.
	sent := fp.Sent()[0]
	carried := trace.SpanContextFromContext(tp.ExtractMessage(context.Background(), sent))
	if carried.TraceID() != request.SpanContext().TraceID() || carried.SpanID() != send.SpanContext().SpanID() {
		t.Fatalf("message carries %s/%s, want the send span %s/%s", carried.TraceID(), carried.SpanID(),
			request.SpanContext().TraceID(), send.SpanContext().SpanID())
	}
	check := &primitive.MessageExt{Message: primitive.Message{Topic: sent.Topic}}
	check.WithProperties(sent.GetProperties())
	if got := svc.CheckLocalTransaction(check); got != primitive.CommitMessageState {
		t.Fatalf("check-back = %v, want commit", got)
	}
	var checkBack sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "check-back" {
			checkBack = s
		}
	}
	if checkBack == nil {
		t.Fatal("no check-back span")
	}
	if checkBack.Parent().IsValid() || checkBack.SpanContext().TraceID() == request.SpanContext().TraceID() {
		t.Errorf("check-back span is not a new root (parent %v, trace %s)", checkBack.Parent(), checkBack.SpanContext().TraceID())
	}
	links := checkBack.Links()
	if len(links) != 1 || links[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("check-back links %v, want one link to the send span %s", links, send.SpanContext().SpanID())
	}
	found := false
	for _, a := range checkBack.Attributes() {
		found = found || (a.Key == attrOrderID && a.Value.AsString() == placed.Order.OrderID)
	}
	if !found {
		t.Errorf("check-back span attributes %v lack order.id %s", checkBack.Attributes(), placed.Order.OrderID)
	}
}
