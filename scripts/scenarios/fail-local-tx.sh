#!/usr/bin/env bash
# Scenario: the local transaction writes its rows, then fails and rolls back. The service answers
# the broker rollback and the client 500: nothing was written, nothing will ever be delivered.
# ("Send, then save" would have announced this order anyway.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "fail-local-tx"
u=$(new_user)
fill_cart "$u"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: fail-local-tx"
expect 500
grep -q '"code":"order_not_placed"' <<<"$BODY" || fail "the 500 is not order_not_placed: $BODY"
say "no order, and the cart stays as it was (past the broker's transaction timeout)"
req GET "$ORDER_URL/orders?user_id=$u"
expect_orders 0
stays_qty "$u" A-1 5 8
req GET "$ORDER_URL/orders?user_id=$u"
expect_orders 0
req GET "$CART_URL/carts/$u"
verdict
