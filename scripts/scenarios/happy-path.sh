#!/usr/bin/env bash
# Scenario: nothing fails. The half message is stored, the local transaction commits, the commit
# reaches the broker, the event becomes visible, and cart-service applies it once.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "happy path"
u=$(new_user)
say "a cart with A-1 x5 and B-2 x2"
fill_cart "$u"
say "order 2 of A-1"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")"
expect 201
id=$(json .order.order_id)
[ -n "$id" ] || fail "the answer names no order_id"
say "the order exists, and is listed for its user"
req GET "$ORDER_URL/orders/$id"
expect 200
req GET "$ORDER_URL/orders?user_id=$u"
expect_orders 1
say "cart-service consumes OrderCreated and decrements the line"
took=$(wait_qty "$u" A-1 3 30)
[ "$(qty "$u" B-2)" = 2 ] || fail "B-2 = $(qty "$u" B-2), want it untouched at 2"
echo "A-1 went from 5 to 3 within ${took}s; B-2 untouched"
say "cart-service says when it applied the order"
req GET "$CART_URL/carts/$u/orders/$id"
expect 200
stays_qty "$u" A-1 3 2
verdict
