package order

import (
	"context"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The spans of the flow in place.go. One order's trace reads, top to bottom:
//
//	POST /orders                       the HTTP request (pkg/tracing wraps the router)
//	└─ send half message               step 2: SendMessageInTransaction, steps 3 and 4 inside it
//	   └─ local transaction            step 3: tx_log + order + items, one MySQL transaction
//	      ... the broker ...           the message carries the trace context in its properties
//	      └─ consume OrderCreated      cart-service (its own spans)
//
// A check-back (step 5) comes from the broker, not from a request: it starts a trace of its own,
// linked to the trace of the order whose message it asks about, and tagged with the order ID.

const tracerName = "rmqtx/order-service/internal/order"

// Span attribute keys: OpenTelemetry's messaging conventions, plus the order ID, which is what
// someone following an order searches by.
var (
	attrOrderID      = attribute.Key("order.id")
	attrSystem       = attribute.String("messaging.system", "rocketmq")
	attrDestination  = attribute.Key("messaging.destination.name")
	attrMsgID        = attribute.Key("messaging.message.id")
	attrTxState      = attribute.Key("rocketmq.transaction.state")
	attrCheckOutcome = attribute.Key("order.tx_log.outcome")
)

// startSend starts the span of step 2 and writes its trace context into the message, so that
// the consumer's spans continue this trace on the other side of the broker.
func (s *Service) startSend(ctx context.Context, msg *primitive.Message, orderID string) (context.Context, trace.Span) {
	ctx, span := s.tracer.Start(ctx, "send half message", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrOrderID.String(orderID), attrSystem, attrDestination.String(msg.Topic)))
	s.tracing.InjectMessage(ctx, msg)
	return ctx, span
}

// endSend records on the span of step 2 what the broker answered and what was told to it.
func endSend(span trace.Span, res *primitive.TransactionSendResult, err error) {
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, "half message not sent")
	case res != nil:
		span.SetAttributes(attrMsgID.String(res.MsgID), attrTxState.String(stateName(res.State)))
	}
	span.End()
}

// startLocalTx starts the span of step 3, a child of the send span.
func (s *Service) startLocalTx(ctx context.Context, orderID string) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, "local transaction", trace.WithAttributes(attrOrderID.String(orderID)))
}

// endLocalTx records the local transaction's answer to the broker.
func endLocalTx(span trace.Span, state primitive.LocalTransactionState, err error) {
	span.SetAttributes(attrTxState.String(stateName(state)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "local transaction not committed")
	}
	span.End()
}

// startCheckBack starts the span of step 5: a new trace, because the broker's question is not
// part of the request that placed the order (which may have ended long ago, on another instance),
// linked to that request's trace through the context the message still carries.
func (s *Service) startCheckBack(msg *primitive.MessageExt) (context.Context, trace.Span) {
	placed := trace.LinkFromContext(s.tracing.ExtractMessage(context.Background(), &msg.Message))
	return s.tracer.Start(context.Background(), "check-back", trace.WithNewRoot(), trace.WithLinks(placed),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrOrderID.String(msg.GetKeys()), attrSystem, attrMsgID.String(msg.MsgId)))
}

// endCheckBack records the answer given to the broker.
func endCheckBack(span trace.Span, state primitive.LocalTransactionState, outcome string, err error) {
	if span == nil { // startCheckBack panicked
		return
	}
	span.SetAttributes(attrTxState.String(stateName(state)))
	if outcome != "" {
		span.SetAttributes(attrCheckOutcome.String(outcome))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "check-back could not read the outcome")
	}
	span.End()
}
