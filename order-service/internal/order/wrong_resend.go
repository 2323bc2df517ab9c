package order

// THE SAME ORDER, PUBLISHED TWICE AS TWO MESSAGES (fault point resend-event).
//
// A consumer must deduplicate by the order ID, not by the message ID. Which deliveries share a
// message ID decides whether dedup by message ID ever fails. With this client it almost never
// does: the message ID a consumer sees (MessageExt.MsgId) is the UNIQ_KEY property the producer
// stamps on the message, and the broker keeps it on every copy it makes. Check-back re-puts, the
// consumer's retry topic, the dead-letter topic, the client's own send retries: one ID throughout.
//
// The same order arrives under a new message ID only when the application sends a new message for
// it: a resend after a send whose outcome was ambiguous (it timed out, but the broker had stored
// it), or a transactional outbox relay that published a row and died before deleting it, then
// published it again. resend-event does exactly that, at once: once the order is placed, it reads
// the order back from the database, as a relay would, and publishes its OrderCreated again as a
// new message. A consumer deduplicating by order ID acknowledges the second one as a duplicate; one
// deduplicating by message ID takes the items off the cart twice.
//
// The transactional flow never does this by itself; the fault stands for the application around
// it. It is why the right consumer (cart-service's order_created.go, step 1) keys on the order ID.

import (
	"context"
	"fmt"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/order-service/internal/timeline"
)

// PlainProducer is the part of a normal (non-transactional) RocketMQ producer that the wrong ways
// and resend-event use.
type PlainProducer interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
}

// placer is what Resend wraps: the Service or one of the wrong placements.
type placer interface {
	Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error)
}

// Resend honours resend-event around a placer; without that point it only passes requests on.
type Resend struct {
	next     placer
	s        *Service
	producer PlainProducer
}

// WithResend wraps next so that resend-event publishes a placed order's event again with p.
func (s *Service) WithResend(next placer, p PlainProducer) *Resend {
	return &Resend{next: next, s: s, producer: p}
}

// Place places the order with next; then, if the request asks for resend-event and a new order was
// placed, publishes its OrderCreated a second time as a new message.
func (r *Resend) Place(ctx context.Context, req Request, idemKey string, fault Fault) (Placed, error) {
	placed, err := r.next.Place(ctx, req, idemKey, fault)
	if err != nil || placed.Replayed || !r.s.injects(fault, FaultResendEvent) {
		return placed, err
	}
	if err := r.s.resend(ctx, placed.Order.OrderID, fault, r.producer); err != nil {
		// The order is placed either way; the second message is what the fault is for.
		r.s.log.ErrorContext(ctx, "resend-event: the second message was not sent", "order_id", placed.Order.OrderID, "err", err)
	}
	return placed, nil
}

// resend reads the order back, as an outbox relay would, and sends its event as a new message: a
// new *primitive.Message gets a new UNIQ_KEY, hence a new message ID at the consumer.
func (s *Service) resend(ctx context.Context, orderID string, fault Fault, p PlainProducer) error {
	// Not cancelled with the request (the order is placed; the fault is the second message), but
	// bounded: it holds the request and its admission slot.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendBound)
	defer cancel()
	row, err := s.store.Order(ctx, orderID)
	if err != nil {
		return fmt.Errorf("read order %s back: %w", orderID, err)
	}
	msg, err := s.halfMessage(row, fault)
	if err != nil {
		return err
	}
	res, err := p.SendSync(ctx, msg)
	if err != nil {
		return fmt.Errorf("send order %s again: %w", orderID, err)
	}
	s.log.WarnContext(ctx, "fault injection: resend-event published the order's OrderCreated a second time, as a new message",
		"order_id", orderID, "msg_id", res.MsgID)
	s.timeline.Record(orderID, timeline.EventResent,
		fmt.Sprintf("fault injection: OrderCreated published again as a new message (message ID %s): the same order under a second message ID", res.MsgID), s.now())
	return nil
}
