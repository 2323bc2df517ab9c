#!/usr/bin/env bash
# Wrong way: cart-service acknowledges a message before applying it (CONSUMER=ack-before-commit,
# cart-service/internal/cart/wrong.go): the callback hands it to a worker and returns success.
#
# A crash right after the acknowledgement usually gets a redelivery anyway (the client sends the
# acknowledged offset to the broker only every 5 s), so a quick kill test passes by luck. The
# fault point cart-crash-before-apply removes the luck: the worker sends the offset to the broker,
# then dies before its cart transaction. The broker has moved on; the order is never applied. Then
# the right consumer meets the same fault: it dies before acknowledging, the broker delivers the
# message again after the restart, and the order is applied once.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

title "wrong way: CONSUMER=ack-before-commit, X-Fault: cart-crash-before-apply"
use_consumer ack-before-commit
wrong=$(new_user)
fill_cart "$wrong"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$wrong")" "X-Fault: cart-crash-before-apply"
expect 201
wrong_id=$(json .order.order_id)
say "cart-service acknowledges, sends the offset to the broker, and crashes before applying"
wait_crash "$CART_URL" 30
restart_crashed "$CART_URL"
say "the rows on both sides: the order exists..."
req GET "$ORDER_URL/orders/$wrong_id"
expect 200
say "...and cart-service acknowledged it and never applied it"
req GET "$CART_URL/orders/$wrong_id/timeline"
grep -q '"step":"acknowledged_never_applied"' <<<"$BODY" || fail "the cart-side timeline has no acknowledged_never_applied step"
req GET "$CART_URL/carts/$wrong/orders/$wrong_id"
expect 404
req GET "$CART_URL/carts/$wrong"
[ "$(qty "$wrong" A-1)" = 5 ] || fail "A-1 = $(qty "$wrong" A-1), want 5 (the order never applied)"
say "the checker waits 10 s for the order to reach the cart (the right way below needs about one)"
verdict_catches "$wrong_id" '^I1 ' '' 10s "$wrong"

title "right way: CONSUMER=correct, the same fault"
use_consumer correct
right=$(new_user)
fill_cart "$right"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$right")" "X-Fault: cart-crash-before-apply"
expect 201
right_id=$(json .order.order_id)
say "cart-service crashes before applying, and before acknowledging"
wait_crash "$CART_URL" 30
restart_crashed "$CART_URL"
say "the broker delivers the unacknowledged message again; the restarted service applies it"
took=$(wait_qty "$right" A-1 3 60)
echo "applied within ${took}s of the restart"
stays_qty "$right" A-1 3 2
req GET "$CART_URL/orders/$right_id/timeline"
grep -q '"step":"crashed_before_apply"' <<<"$BODY" || fail "the cart-side timeline has no crashed_before_apply step"
req GET "$CART_URL/carts/$right"
verdict_for "$right"
printf '\n%sThe wrong way was caught; the right way held.%s\n' "$B" "$N"
