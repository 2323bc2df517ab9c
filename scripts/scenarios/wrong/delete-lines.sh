#!/usr/bin/env bash
# Wrong way: cart-service deletes the ordered lines instead of decrementing them
# (CONSUMER=delete-lines, cart-service/internal/cart/wrong.go).
#
# It looks right when an order takes a whole line. Here the cart holds A-1 x3 and the order takes
# one: the line is deleted, and the two the user kept are gone. The cart ledger records it as it
# happened (asked 1, the line went from 3 to 0), and the invariant checker compares what each order
# took with what it asked. Then the right consumer, the same order: A-1 x2 stays.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ONE_A1() { printf '{"user_id":"%s","items":[{"sku":"A-1","quantity":1,"unit_price_cents":1999}]}' "$1"; }

title "wrong way: CONSUMER=delete-lines, a cart of A-1 x3, an order of A-1 x1"
use_consumer delete-lines
wrong=$(new_user)
req PUT "$CART_URL/carts/$wrong/items/A-1" '{"quantity":3}'
expect 200
req POST "$ORDER_URL/orders" "$(ONE_A1 "$wrong")"
expect 201
wrong_id=$(json .order.order_id)
took=$(wait_qty "$wrong" A-1 0 30)
say "the order took one; within ${took}s the whole line was gone"
req GET "$CART_URL/carts/$wrong/orders/$wrong_id"
expect 200
req GET "$ORDER_URL/orders/$wrong_id"
expect 200
req GET "$CART_URL/orders/$wrong_id/timeline"
grep -q '"step":"applied_wiped_additions"' <<<"$BODY" || fail "the cart-side timeline has no applied_wiped_additions step"
req GET "$CART_URL/carts/$wrong"
verdict_catches "$wrong_id" '^I3 each application' 'ordered 1, the cart went from 3 to 0' 30s "$wrong"

title "right way: CONSUMER=correct, the same cart and order"
use_consumer correct
right=$(new_user)
req PUT "$CART_URL/carts/$right/items/A-1" '{"quantity":3}'
expect 200
req POST "$ORDER_URL/orders" "$(ONE_A1 "$right")"
expect 201
wait_qty "$right" A-1 2 30 >/dev/null
stays_qty "$right" A-1 2 2
req GET "$CART_URL/carts/$right"
verdict_for "$right"
printf '\n%sThe wrong way was caught; the right way held.%s\n' "$B" "$N"
