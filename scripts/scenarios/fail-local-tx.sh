#!/usr/bin/env bash
# Scenario: the local transaction writes its rows, then fails and rolls back. The service answers
# the broker rollback and the client 500: nothing was written, nothing will ever be delivered.
# ("Send, then save" would have announced this order anyway.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "fail-local-tx"
u=$(new_user)
fill_cart "$u"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: fail-local-tx"
[ "$STATUS" = 500 ] || fail "POST answered $STATUS, want 500"
say "no order, and the cart stays as it was (past the broker's transaction timeout)"
req GET "$ORDER_URL/orders?user_id=$u"
stays_qty "$u" A-1 5 8
req GET "$CART_URL/carts/$u"
verdict
