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
[ "$STATUS" = 201 ] || fail "POST answered $STATUS, want 201"
say "cart-service crashes right after its commit"
for _ in $(seq 1 100); do curl -fsS -o /dev/null --max-time 1 "$CART_URL/healthz" 2>/dev/null || break; sleep 0.2; done
restart_crashed "$CART_URL"
say "the broker redelivers the unacknowledged message; the restarted service sees a duplicate"
for _ in $(seq 1 300); do
  [ "$(metric "$CART_URL" 'cart_messages_total{outcome="duplicate"}')" -ge 1 ] && break
  sleep 0.2
done
echo "duplicate deliveries acknowledged since restart: $(metric "$CART_URL" 'cart_messages_total{outcome="duplicate"}')"
wait_qty "$u" A-1 3 10 >/dev/null
stays_qty "$u" A-1 3 2
req GET "$CART_URL/carts/$u"
verdict
