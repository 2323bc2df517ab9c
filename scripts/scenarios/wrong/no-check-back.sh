#!/usr/bin/env bash
# Wrong way: no check-back (PLACEMENT=no-check-back). The producer never answers a check-back with
# a decision: what it gets from a broker that cannot ask it, which is Kafka's situation (README,
# "Kafka's transactions and this problem"). skip-end-transaction loses the producer's commit; the
# broker asks, gets "unknown", asks again... The event is not delivered when the right way's is
# (3-6 s), and after transactionCheckMax checks (about 76 s with the local broker settings) the
# broker gives up and moves it to TRANS_CHECK_MAX_TIME_TOPIC, where nothing delivers it. The
# checker reports the order as missing from the cart (I1, a lost event).
# The right way, same fault: the check-back answers commit from tx_log; the event is delivered.
#
#   WAIT_FOR_DISCARD=off   do not wait for the discard (local suite: read from the broker's log)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrong_way no-check-back skip-end-transaction lost unknown 2
right_way skip-end-transaction yes

log="${INFRA_DIR:-$ROOT/.infra}/broker/logs/rocketmqlogs/transaction.log"
if [ "${WAIT_FOR_DISCARD:-on}" = on ] && [ "$SUITE" = local ] && [ -f "$log" ]; then
  title "the broker gives up on the wrong way's event"
  say "waiting for the broker to discard it after transactionCheckMax checks (about 76 s after the request)"
  for _ in $(seq 1 300); do
    grep -F "$WRONG_ID" "$log" | grep -q "checked too many times" && break
    sleep 0.5
  done
  grep -F "$WRONG_ID" "$log" | grep -q "checked too many times" ||
    fail "the broker did not discard order $WRONG_ID's event within 150 s of waiting ($log)"
  echo "$((SECONDS - WRONG_T0))s after the request, the broker's transaction.log says:"
  grep -F "$WRONG_ID" "$log" | grep "checked too many times" | tail -n 1 | cut -c 1-220
  echo "...moved to TRANS_CHECK_MAX_TIME_TOPIC: nothing will ever deliver it."
fi
