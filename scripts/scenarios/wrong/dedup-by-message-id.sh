#!/usr/bin/env bash
# Wrong way: cart-service deduplicates by the broker's message ID (CONSUMER=dedup-by-message-id,
# cart-service/internal/cart/wrong.go) instead of the order ID.
#
# It passes every broker-side redelivery: with this client the message ID is the one the producer
# gave the message, and retries, check-back re-puts and the dead-letter topic all keep it. It
# fails when the same order is published again as a NEW message, which the fault point
# resend-event does (what an outbox relay does when it loses its acknowledgement): a new message
# ID, so the order is applied twice. Then the right consumer meets the same fault: the order ID is
# already in processed_orders, and the second message is a duplicate.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

title "wrong way: CONSUMER=dedup-by-message-id, an order published twice (X-Fault: resend-event)"
use_consumer dedup-by-message-id
wrong=$(new_user)
fill_cart "$wrong"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$wrong")" "X-Fault: resend-event"
expect 201
wrong_id=$(json .order.order_id)
say "order-service published OrderCreated twice, as two messages: two message IDs, one order ID"
took=$(wait_qty "$wrong" A-1 1 30)
echo "A-1 went from 5 to 1 within ${took}s: the order of 2 was taken twice"
say "the rows on both sides: one order..."
req GET "$ORDER_URL/orders/$wrong_id"
expect 200
say "...applied twice, under two message IDs"
req GET "$CART_URL/orders/$wrong_id/timeline"
grep -q '"step":"applied_twice"' <<<"$BODY" || fail "the cart-side timeline has no applied_twice step"
req GET "$CART_URL/carts/$wrong"
verdict_catches "$wrong_id" '^I3 each application' 'applied more than once' 30s "$wrong"

title "right way: CONSUMER=correct, the same fault"
use_consumer correct
right=$(new_user)
fill_cart "$right"
dups=$(metric "$CART_URL" 'cart_messages_total{outcome="duplicate"}')
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$right")" "X-Fault: resend-event"
expect 201
right_id=$(json .order.order_id)
wait_qty "$right" A-1 3 30 >/dev/null
say "the second message carries the same order ID: a duplicate, acknowledged, cart untouched"
wait_metric "$CART_URL" 'cart_messages_total{outcome="duplicate"}' $((dups + 1)) 30 >/dev/null
stays_qty "$right" A-1 3 2
req GET "$CART_URL/orders/$right_id/timeline"
grep -q '"step":"duplicate_acknowledged"' <<<"$BODY" || fail "the cart-side timeline has no duplicate step"
req GET "$CART_URL/carts/$right"
verdict_for "$right"
printf '\n%sThe wrong way was caught; the right way held.%s\n' "$B" "$N"
