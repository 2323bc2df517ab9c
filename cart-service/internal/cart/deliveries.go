package cart

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"rmqtx/cart-service/internal/store"
)

// The steps of an order's cart-side timeline (table order_deliveries, GET
// /orders/{order_id}/timeline): what each delivery of its event did. They are for people
// watching the technique work; nothing decides anything from them, and recording one never
// changes what happens to the message (Options.Timeline turns them off).
const (
	StepApplied   = "applied"                // written in the apply transaction: exists exactly when the cart change does
	StepDuplicate = "duplicate_acknowledged" // the order was applied before; acknowledged, cart untouched
	StepRetry     = "retry_requested"        // a transient failure; the broker delivers the message again later
	StepRejected  = "rejected"               // can never be applied; recorded in rejected_messages and acknowledged
)

// noteTimeout bounds writing a step outside the apply transaction: the delivery's answer to the
// broker waits for it, and a step is not worth holding that up.
const noteTimeout = 2 * time.Second

// appliedStep is the step written inside the apply transaction.
func (h *Handler) appliedStep(msg *primitive.MessageExt, orderID string, lines int) store.Delivery {
	return store.Delivery{
		OrderID: orderID, Step: StepApplied, ReconsumeTimes: int(msg.ReconsumeTimes), MsgID: msg.MsgId, At: h.now(),
		Detail: fmt.Sprintf("processed_orders row and %d ordered line(s) taken off the cart, in one transaction", lines),
	}
}

// note writes a step that is not part of the apply transaction, after the outcome is decided.
// Best effort: a failure is logged, never returned, because the outcome must not depend on it. A
// process that dies before this runs leaves the step out, which is then what the timeline
// truthfully lacks.
func (h *Handler) note(ctx context.Context, log *slog.Logger, msg *primitive.MessageExt, orderID, step, detail string) {
	if !h.timeline || orderID == "" {
		return
	}
	if step == StepRetry && h.maxReconsume > 0 && msg.ReconsumeTimes >= h.maxReconsume {
		detail += "; that was the last retry: the broker moves the message to the dead-letter topic"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noteTimeout)
	defer cancel()
	err := h.store.RecordDelivery(ctx, store.Delivery{
		OrderID: orderID, Step: step, Detail: detail, ReconsumeTimes: int(msg.ReconsumeTimes), MsgID: msg.MsgId, At: h.now(),
	})
	if err != nil {
		log.WarnContext(ctx, "timeline step not written", "step", step, "err", err)
	}
}
