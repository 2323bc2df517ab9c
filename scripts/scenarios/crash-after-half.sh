#!/usr/bin/env bash
# Scenario: order-service dies after the broker stored the half message, before the local
# transaction. Nobody answers the broker, so it checks back; whichever instance is asked finds no
# tx_log row, claims the order ID as rolled back, and answers rollback: the event is never seen,
# no order exists, the cart is untouched. (Without the check-back the half message would hang.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "crash-after-half"
u=$(new_user)
fill_cart "$u"
base=$(metric "$ORDER_URL_2" 'order_checkbacks_total{answer="rollback"}')
say "order with X-Fault: crash-after-half, sent to instance 1"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: crash-after-half"
[ "$STATUS" = 000 ] || fail "instance 1 answered $STATUS; it should have crashed"
restart_crashed "$ORDER_URL"
say "waiting for the broker's check-back (it waits transactionTimeOut, then asks any live producer)"
start=$SECONDS
# Instance 1 counts from zero since its restart; instance 2 from base.
n=$(wait_checkbacks rollback "$base" 90)
echo "check-back answered rollback $((SECONDS - start))s after the restart ($n)"
say "no order exists, on either instance, and the cart is unchanged"
req GET "$ORDER_URL/orders?user_id=$u"
expect_orders 0
req GET "$ORDER_URL_2/orders?user_id=$u"
expect_orders 0
stays_qty "$u" A-1 5 3
req GET "$CART_URL/carts/$u"
verdict
