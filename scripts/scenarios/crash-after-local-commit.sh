#!/usr/bin/env bash
# Scenario: order-service dies after the local commit, before the commit reached the broker. The
# order is durable but nobody was told: the client saw the connection drop. The broker checks
# back; the other instance (or the restarted one) finds tx_log 'committed' and answers commit, and
# the cart is decremented. ("Save, then send" would lose this event for good.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "crash-after-local-commit"
u=$(new_user)
fill_cart "$u"
base=$(metric "$ORDER_URL_2" 'order_checkbacks_total{answer="commit"}')
say "order with X-Fault: crash-after-local-commit, sent to instance 1"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: crash-after-local-commit"
[ "$STATUS" = 000 ] || fail "instance 1 answered $STATUS; it should have crashed"
say "instance 2 already knows the order: it is in the database"
req GET "$ORDER_URL_2/orders?user_id=$u"
expect_orders 1
id=$(grep -o '"order_id":"[^"]*"' <<<"$BODY" | head -n1 | cut -d'"' -f4)
say "the broker checks back; a live instance answers commit from tx_log"
took=$(wait_qty "$u" A-1 3 90)
echo "cart updated ${took}s after the crash"
restart_crashed "$ORDER_URL"
# Instance 1 counts from zero since its restart; instance 2 from base.
n=$(wait_checkbacks commit "$base" 30)
echo "commit check-backs answered: $n"
wait_step "$id" '"step":"check_back","detail":"commit:' 30
stays_qty "$u" A-1 3 2
req GET "$CART_URL/carts/$u"
verdict
