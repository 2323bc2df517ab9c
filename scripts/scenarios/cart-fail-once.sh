#!/usr/bin/env bash
# Scenario: cart-service fails its first delivery of the event (as if its database hiccuped) and
# answers "retry later". The broker redelivers it through the group's retry topic; the second
# delivery applies it. Nothing is lost and nothing is applied twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "cart-fail-once"
u=$(new_user)
fill_cart "$u"
before=$(metric "$CART_URL" 'cart_messages_total{outcome="retried"}')
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: cart-fail-once"
expect 201
took=$(wait_qty "$u" A-1 3 60)
retried=$(metric "$CART_URL" 'cart_messages_total{outcome="retried"}')
[ "$retried" -gt "$before" ] || fail "no delivery answered retry-later: the fault did not fire"
echo "applied ${took}s after the order; deliveries answered retry-later: $((retried - before))"
stays_qty "$u" A-1 3 2
verdict
