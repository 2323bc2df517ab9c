#!/usr/bin/env bash
# Scenario (cluster): one broker of two dies while orders come in, holding half messages whose
# commit it has to ask for. Orders keep being placed on the other broker; after the restart the
# broker checks back (the services heartbeat every few seconds, pkg/mq/heartbeat.go) and the held
# orders reach their carts. Needs the local cluster suite, with the same environment as here:
#
#   BROKERS=2 CARTS=2 scripts/suite-up.sh && scripts/scenarios/cluster-broker-kill.sh
#
# INFRA_DIR (and the port variables of scripts/infra-up.sh) as for suite-up.sh. scripts/e2e's
# TestClusterKillEverythingUnderLoad does the same under load, and kills everything else too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$SUITE" = local ] || fail "this scenario kills a broker process of the local cluster (SUITE=local)"
INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
[ -f "$INFRA_DIR/broker-b/broker.pid" ] ||
  fail "no broker-b under $INFRA_DIR: start the cluster first (BROKERS=2 CARTS=2 scripts/suite-up.sh)"

title "cluster-broker-kill"
say "four orders whose commit is never sent (skip-end-transaction): the broker holding each must check back"
held=()
for i in 1 2 3 4; do
  u=$(new_user)-h$i
  fill_cart "$u" >/dev/null
  url=$ORDER_URL; [ $((i % 2)) = 0 ] && url=$ORDER_URL_2
  req POST "$url/orders" "$(ORDER_BODY "$u")" "X-Fault: skip-end-transaction" >/dev/null
  [ "$STATUS" = 201 ] || fail "POST answered $STATUS, want 201"
  held+=("$u")
done

say "SIGKILL broker-a (pid $(cat "$INFRA_DIR/broker/broker.pid"))"
kill -9 "$(cat "$INFRA_DIR/broker/broker.pid")"
killed=$SECONDS

say "30 orders while broker-a is down, alternating instances"
declare -A seen=()
for i in $(seq 1 30); do
  u=$(new_user)-d$i
  curl -fsS -o /dev/null -X PUT --max-time 10 "$CART_URL/carts/$u/items/A-1" -d '{"quantity":5}' || true
  url=$ORDER_URL; [ $((i % 2)) = 0 ] && url=$ORDER_URL_2
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' \
    --data "$(ORDER_BODY "$u")" "$url/orders" 2>/dev/null) || code=000
  seen[$code]=$((${seen[$code]:-0} + 1))
done
for code in "${!seen[@]}"; do echo "   $code: ${seen[$code]}"; done
refused=$((30 - ${seen[201]:-0}))
echo "refused or unanswered while one broker of two was down: $refused of 30"

say "restart broker-a, as an operator would: BROKERS=2 scripts/infra-up.sh"
out="${TMPDIR:-/tmp}/scenario-infra.$$.log"
BROKERS=2 "$ROOT/scripts/infra-up.sh" >"$out" 2>&1 || { tail -n 20 "$out" >&2; fail "infra-up.sh could not restart broker-a"; }
rm -f "$out"
up=$SECONDS
echo "broker-a down for $((up - killed)) s"

say "every held order reaches its cart (the ones broker-b held already did)"
for u in "${held[@]}"; do
  took=$(wait_qty "$u" A-1 3 90)
  echo "$u: cart updated (waited ${took}s)"
done
echo "all held orders applied $((SECONDS - up)) s after broker-a was up again"
verdict
