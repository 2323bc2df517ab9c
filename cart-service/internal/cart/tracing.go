package cart

import (
	"context"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The consumer's spans, children of order-service's "send half message" span when the message
// carries its trace context (order-service writes it into the message properties):
//
//	consume OrderCreated      one delivery: decode, deduplicate, apply, acknowledge or retry
//	└─ apply to cart          the MySQL transaction: processed_orders + the cart decrement
//
// A redelivery is another consume span in the same trace, so a retried or duplicated delivery
// shows up next to the first one.

const tracerName = "rmqtx/cart-service/internal/cart"

var (
	attrOrderID     = attribute.Key("order.id")
	attrSystem      = attribute.String("messaging.system", "rocketmq")
	attrDestination = attribute.Key("messaging.destination.name")
	attrMsgID       = attribute.Key("messaging.message.id")
	attrReconsume   = attribute.Key("messaging.rocketmq.message.reconsume_times")
	attrOutcome     = attribute.Key("cart.outcome")
)

// startConsume starts the span of one delivery, continuing the trace found in the message.
func (h *Handler) startConsume(ctx context.Context, msg *primitive.MessageExt) (context.Context, trace.Span) {
	ctx = h.tracing.ExtractMessage(ctx, &msg.Message)
	return h.tracer.Start(ctx, "consume OrderCreated", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrSystem, attrDestination.String(msg.Topic), attrMsgID.String(msg.MsgId),
			attrReconsume.Int(int(msg.ReconsumeTimes))))
}

// endConsume records what became of the delivery; a retry is an error, the others are not.
func endConsume(span trace.Span, outcome string) {
	span.SetAttributes(attrOutcome.String(outcome))
	if outcome == OutcomeRetried {
		span.SetStatus(codes.Error, "retried")
	}
	span.End()
}

func (h *Handler) startApply(ctx context.Context, orderID string) (context.Context, trace.Span) {
	return h.tracer.Start(ctx, "apply to cart", trace.WithAttributes(attrOrderID.String(orderID)))
}

func endApply(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not applied")
	}
	span.End()
}
