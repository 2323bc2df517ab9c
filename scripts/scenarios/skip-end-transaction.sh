#!/usr/bin/env bash
# Scenario: the local transaction commits but its answer never reaches the broker (lost packet,
# timeout). The API says 201, which is true: the order is durable. The broker checks back, the
# service reads tx_log and answers commit, and the event is delivered a few seconds late.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "skip-end-transaction"
u=$(new_user)
fill_cart "$u"
before=$(checkbacks commit)
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: skip-end-transaction"
[ "$STATUS" = 201 ] || fail "POST answered $STATUS, want 201"
say "the event is invisible until the check-back commits it"
took=$(wait_qty "$u" A-1 3 90)
echo "cart updated ${took}s after the order; commit check-backs answered: $(( $(checkbacks commit) - before ))"
verdict
