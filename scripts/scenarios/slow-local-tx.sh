#!/usr/bin/env bash
# Scenario: the local transaction is slower than the broker's transaction timeout (3 s in the
# local and compose broker configs), so the check-back arrives while it still runs. The naive
# check ("does the order exist yet?") would answer rollback and lose the event. Ours inserts a
# 'rolled_back' tx_log row with INSERT IGNORE: InnoDB makes it wait for the running transaction's
# row lock, then ignores it when that commits, and the check-back answers commit.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

title "slow-local-tx"
u=$(new_user)
fill_cart "$u"
before=$(checkbacks commit)
say "the local transaction holds its rows for 8 s"
start=$SECONDS
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: slow-local-tx=8"
expect 201
id=$(json .order.order_id)
echo "answered after $((SECONDS - start))s"
n=$(wait_checkbacks commit "$before" 30)
echo "check-backs that waited and answered commit: $n"
wait_step "$id" '"step":"check_back","detail":"commit:' 30
took=$(wait_qty "$u" A-1 3 30)
say "applied once, even if both the producer's commit and the check-back's commit reached the broker"
stays_qty "$u" A-1 3 3
verdict
