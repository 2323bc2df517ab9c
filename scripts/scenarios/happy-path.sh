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
[ "$STATUS" = 201 ] || fail "POST /orders answered $STATUS, want 201"
id=$(json .order.order_id)
say "cart-service consumes OrderCreated and decrements the line"
took=$(wait_qty "$u" A-1 3 30)
echo "A-1 went from 5 to 3 within ${took}s; B-2 untouched"
req GET "$CART_URL/carts/$u/orders/$id"
verdict
