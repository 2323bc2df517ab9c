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
expect 201
id=$(json .order.order_id)
say "the event is invisible until the check-back commits it"
took=$(wait_qty "$u" A-1 3 90)
n=$(wait_checkbacks commit "$before" 30)
echo "cart updated ${took}s after the order; commit check-backs answered: $n"
say "the order's timeline: the answer was withheld, a check-back answered commit"
wait_step "$id" '"step":"answer_withheld"' 30
wait_step "$id" '"step":"check_back","detail":"commit:' 30
req GET "$ORDER_URL/orders/$id/timeline"
expect 200
! grep -q '"step":"answer_sent"' <<<"$BODY" || fail "the timeline has an answer sent: the fault did not withhold it"
verdict
