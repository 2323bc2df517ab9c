#!/usr/bin/env bash
# Shared by the wrong-way scenarios: run one wrong placement of order-service
# (order-service/internal/order/wrong.go) with the fault that breaks it, show the broken outcome
# and the invariant checker naming the offending order, then run the right way with the same
# fault and show that it holds. Each script exits 0 only when the wrong way was caught and the
# right way held.
#
# Both order-service instances are restarted in the wrong placement for the first half (they share
# one producer group, so a check-back may reach either), and in the transactional one for the
# second; the script puts the right way back however it ends. The wrong placement runs in a
# producer group of its own (<group>-<placement>): a half message it left pending must not be
# checked back by the right way's instances afterwards, which would rescue it from tx_log. The wrong way's damage stays in the
# databases: the checker lists its order from then on (run the scenarios on a fresh suite, or wipe
# it: scripts/suite-down.sh; scripts/infra-down.sh --wipe).
#
#   WAIT_FOR_DISCARD (on) no-check-back only: wait for the broker to give up on the event and log it
#                    (local suite only: it reads the broker's transaction.log)
# Everything else as in ../lib.sh (SUITE=local|compose, ORDER_URL, ORDER_URL_2, CART_URL).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

SUITE_DIR=${SUITE_DIR:-$ROOT/.infra/suite}
RUNNING_PLACEMENT=transactional
RIGHT_GROUP=${ORDER_GROUP:-order-service}

# use_placement PLACEMENT: restart both order-service instances in it and wait until they are ready.
use_placement() {
  export PLACEMENT=$1 ORDER_GROUP=$RIGHT_GROUP
  [ "$1" = transactional ] || ORDER_GROUP=$RIGHT_GROUP-$1
  if [ "$SUITE" = compose ]; then
    (cd "$ROOT" && docker compose up -d --no-deps order-service-1 order-service-2) >/dev/null 2>&1 ||
      fail "docker compose could not recreate the order-service instances with PLACEMENT=$1"
  else
    local name pid
    for name in order-service-1 order-service-2; do
      [ -f "$SUITE_DIR/$name.pid" ] || continue
      pid=$(cat "$SUITE_DIR/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      rm -f "$SUITE_DIR/$name.pid"
    done
    local out="${TMPDIR:-/tmp}/scenario-placement.$$.log"
    if ! "$ROOT/scripts/suite-up.sh" >"$out" 2>&1; then
      tail -n 20 "$out" >&2
      fail "suite-up.sh could not start order-service with PLACEMENT=$1"
    fi
    rm -f "$out"
  fi
  wait_ready "$ORDER_URL" 120
  wait_ready "$ORDER_URL_2" 120
  RUNNING_PLACEMENT=$1
  printf '   /metrics of instance 1: %s\n' "$(curl -fsS --max-time 5 "$ORDER_URL/metrics" | grep '^order_placement_mode')"
}

# back to the right way however the script ends
restore_placement() {
  local rc=$?
  [ -z "$CHECKINV" ] || rm -f "$CHECKINV"
  if [ "$RUNNING_PLACEMENT" != transactional ]; then
    printf '\n(putting the transactional placement back)\n' >&2
    use_placement transactional >/dev/null || true
  fi
  exit $rc
}
trap restore_placement EXIT

# check: run the invariant checker now (the script waited for what it needed); sets CHECK_OUT
# (its report) and CHECK_RC (0 all hold, 1 violated, 2 could not check).
CHECKINV=
check() {
  if [ -z "$CHECKINV" ]; then
    CHECKINV="${TMPDIR:-/tmp}/scenario-checkinv.$$"
    go -C "$ROOT/scripts/e2e" build -o "$CHECKINV" ./cmd/checkinv || fail "could not build the checker"
  fi
  local args=(-wait 0s)
  set +e
  if [ "$SUITE" = compose ]; then
    CHECK_OUT=$(ORDERS_DSN=${ORDERS_DSN:-order_svc:${ORDER_DB_PASSWORD:-order-demo-password}@tcp(127.0.0.1:13306)/orders} \
      CARTS_DSN=${CARTS_DSN:-cart_svc:${CART_DB_PASSWORD:-cart-demo-password}@tcp(127.0.0.1:13306)/carts} \
      "$CHECKINV" "${args[@]}" 2>&1)
  else
    CHECK_OUT=$("$CHECKINV" "${args[@]}" 2>&1)
  fi
  CHECK_RC=$?
  set -e
  [ "$CHECK_RC" -le 1 ] || { printf '%s\n' "$CHECK_OUT"; fail "the checker could not check"; }
}

# offenders: what the last check listed, one line per offender, each after its invariant
# ("I1 <order id>", "I2 <order id>", "I3 order ... of user ...").
offenders() {
  awk '/^I[0-9] / { k = $1; next } /^    / && k != "" { sub(/^ +/, ""); print k, $0; next } { k = "" }' <<<"$CHECK_OUT" | sort
}

# wrong_way PLACEMENT FAULT BROKEN [SHOWN TIMES]: the whole scenario. BROKEN is lost (I1) or
# phantom (I2). SHOWN: a check-back answer (commit, rollback, unknown) that shows the wrong way's
# mechanism, and how many times to wait for it. RESTART=1 restarts a crashed instance 1 in the wrong
# placement (its empty memory is the point); HOLD (5) is how many seconds a lost event is watched not to
# arrive after the wrong way's mechanism showed (the right way's arrives within it).
wrong_way() {
  local placement=$1 fault=$2 broken=$3 shown=${4:-} times=${5:-1}
  local u id start before after new want_kind

  title "the wrong way: PLACEMENT=$placement, X-Fault: $fault"
  check
  before=$(offenders)
  say "both order-service instances restart with PLACEMENT=$placement (it starts only with FAULT_INJECTION=on, and says so)"
  use_placement "$placement"
  u=$(new_user)
  fill_cart "$u"
  say "order with X-Fault: $fault, sent to instance 1"
  WRONG_T0=$SECONDS
  req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: $fault"
  id=$(json .order.order_id)
  if [ "$STATUS" = 000 ] && [ "${RESTART:-0}" = 1 ]; then
    restart_crashed "$ORDER_URL"
  fi
  if [ -n "$shown" ]; then
    say "waiting for the broker's check-back to be answered the wrong way ($shown, ${times}x)"
    start=$SECONDS
    for _ in $(seq 1 450); do
      [ "$(checkbacks "$shown")" -ge "$times" ] && break
      sleep 0.2
    done
    [ "$(checkbacks "$shown")" -ge "$times" ] || fail "no check-back answered $shown within 90 s"
    echo "check-backs answered $shown: $(checkbacks "$shown"), $((SECONDS - WRONG_T0))s after the request"
  fi
  case $broken in
    lost)
      say "the order exists, and its event does not arrive (the right way's arrives within a few seconds)"
      stays_qty "$u" A-1 5 "${HOLD:-5}"
      req GET "$ORDER_URL_2/orders?user_id=$u"
      [ -n "$id" ] || id=$(json .orders[0].order_id)
      [ -n "$id" ] || fail "no order of $u exists; the wrong way should have committed one"
      want_kind=I1
      ;;
    phantom)
      say "cart-service takes the items off the cart, for an order that does not exist"
      echo "cart updated after $(wait_qty "$u" A-1 3 60)s"
      req GET "$ORDER_URL_2/orders?user_id=$u"
      [ "$(json .orders[0].order_id)" = "" ] || fail "an order of $u exists; a phantom is an effect without an order"
      want_kind=I2
      ;;
  esac
  req GET "$CART_URL/carts/$u"
  say "the invariant checker reads both databases"
  check
  printf '%s\n' "$CHECK_OUT"
  after=$(offenders)
  new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep . || true)
  [ "$CHECK_RC" = 1 ] || fail "the checker did not catch the wrong way (exit $CHECK_RC)"
  [ "$(wc -l <<<"$new")" = 1 ] && [ "${new%% *}" = "$want_kind" ] ||
    fail "the checker should list one new order under $want_kind, it lists: ${new:-nothing new}"
  [ -z "$id" ] || [ "${new#* }" = "$id" ] || fail "the checker names ${new#* }, not the wrong way's order $id"
  printf '\n%sCAUGHT:%s %s names order %s, %ss after the request\n' "$B" "$N" "${new%% *}" "${new#* }" "$((SECONDS - WRONG_T0))"
  WRONG_ID=${new#* }
  WRONG_OFFENDERS=$after
}

# right_way FAULT DELIVERS: the same fault against the transactional placement. DELIVERS is yes
# (the order exists and reaches the cart) or no (it never exists; the cart is untouched).
right_way() {
  local fault=$1 delivers=$2 u id t0 rollbacks

  title "the right way: PLACEMENT=transactional, the same X-Fault: $fault"
  say "both order-service instances restart with the transactional placement"
  use_placement transactional
  u=$(new_user)
  fill_cart "$u"
  say "order with X-Fault: $fault, sent to instance 1"
  t0=$SECONDS
  req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")" "X-Fault: $fault"
  id=$(json .order.order_id)
  [ "$STATUS" = 000 ] && restart_crashed "$ORDER_URL"
  if [ "$delivers" = yes ]; then
    say "the order reaches the cart"
    wait_qty "$u" A-1 3 60 >/dev/null
    echo "cart updated $((SECONDS - t0))s after the request (a restart included, if it crashed)"
    req GET "$ORDER_URL/orders?user_id=$u"
  else
    if [ "$STATUS" = 000 ]; then
      say "waiting for the check-back to roll the half message back"
      for _ in $(seq 1 450); do
        rollbacks=$(checkbacks rollback)
        [ "$rollbacks" -ge 1 ] && break
        sleep 0.2
      done
      [ "$rollbacks" -ge 1 ] || fail "no rollback check-back within 90 s"
    fi
    say "no order exists, and the cart is untouched"
    req GET "$ORDER_URL/orders?user_id=$u"
    [ "$(json .orders[0].order_id)" = "" ] || fail "an order of $u exists"
    stays_qty "$u" A-1 5 3
  fi
  req GET "$CART_URL/carts/$u"
  say "the invariant checker: nothing new (the wrong way's order $WRONG_ID stays listed: its damage is done)"
  check
  printf '%s\n' "$CHECK_OUT"
  [ "$(offenders)" = "$WRONG_OFFENDERS" ] || fail "the right way added a violation"
  [ -z "$id" ] || ! grep -q "$id" <<<"$CHECK_OUT" || fail "the checker lists the right way's order $id"
  printf '\n%sHELD:%s the right way passed the same fault; the wrong way was caught.\n' "$B" "$N"
}
