#!/usr/bin/env bash
# Scenario: cart-service applies the order, commits, and dies before acknowledging the message.
# The broker delivers it again after the restart. The redelivery hits the primary key of
# processed_orders (the order ID, not the message ID) and is acknowledged without touching the
# cart: one decrement, not two.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "cart-crash-after-commit"
u=$(new_user)
fill_cart "$u"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: cart-crash-after-commit"
expect 201
id=$(json .order.order_id)
say "cart-service crashes right after its commit"
crashed=false
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null --max-time 1 "$CART_URL/healthz" 2>/dev/null || { crashed=true; break; }
  sleep 0.2
done
$crashed || fail "cart-service still answers 30 s after the order: it did not crash"
restart_crashed "$CART_URL"
say "the commit before the crash stands: the order is applied, once"
req GET "$CART_URL/carts/$u/orders/$id"
expect 200
[ "$(qty "$u" A-1)" = 3 ] || fail "A-1 = $(qty "$u" A-1) right after the restart, want 3"
say "the broker redelivers the unacknowledged message; the restarted service sees a duplicate"
dups=$(wait_metric "$CART_URL" 'cart_messages_total{outcome="duplicate"}' 1 60)
echo "duplicate deliveries acknowledged since the restart: $dups"
stays_qty "$u" A-1 3 2
req GET "$CART_URL/carts/$u"
verdict
