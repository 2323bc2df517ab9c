#!/usr/bin/env bash
# Scenario: the broker is down while order-service runs the transactional outbox
# (PLACEMENT=outbox, order-service/internal/order/outbox.go). The order and its event commit in
# one local transaction, so the order is accepted (201) without the broker: its event waits in the
# outbox table, and the relay publishes it once the broker is back. The transactional flow refuses
# the same order with 503 broker_unavailable: its first step is the half message.
#
# It STOPS THE BROKER the suite uses (SIGKILL, as a crash), and starts it again:
#   SUITE=local    the broker of scripts/infra-up.sh ($INFRA_DIR/broker/broker.pid), started again
#                  with infra-up.sh. With the default INFRA_DIR that is the broker of this machine's
#                  servers: anything else using it sees the outage too. Run it on servers of its own
#                  (INFRA_DIR, NAMESRV_PORT, BROKER_PORT; the suite's ROCKETMQ_NAMESRV and
#                  ROCKETMQ_BROKER_ADDR pointing at them) where that matters.
#   SUITE=compose  docker compose kill broker, then docker compose start broker
# If the suite does not run PLACEMENT=outbox, both order-service instances are restarted in it
# (local: suite-up.sh; compose: PLACEMENT=outbox docker compose up) and put back afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
SUITE_DIR=${SUITE_DIR:-$ROOT/.infra/suite}
SWITCHED=false BROKER_STOPPED=false

# use_placement PLACEMENT: restart both order-service instances in it.
use_placement() {
  export PLACEMENT=$1
  if [ "$SUITE" = compose ]; then
    (cd "$ROOT" && docker compose up -d --no-deps order-service-1 order-service-2) >/dev/null 2>&1 ||
      fail "docker compose could not recreate the order-service instances with PLACEMENT=$1"
  else
    local name pid out="${TMPDIR:-/tmp}/scenario-placement.$$.log"
    for name in order-service-1 order-service-2; do
      [ -f "$SUITE_DIR/$name.pid" ] || continue
      pid=$(cat "$SUITE_DIR/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      rm -f "$SUITE_DIR/$name.pid"
    done
    if ! "$ROOT/scripts/suite-up.sh" >"$out" 2>&1; then
      tail -n 20 "$out" >&2
      fail "suite-up.sh could not start order-service with PLACEMENT=$1"
    fi
    rm -f "$out"
  fi
  wait_ready "$ORDER_URL" 120
  wait_ready "$ORDER_URL_2" 120
}

broker_stop() {
  if [ "$SUITE" = compose ]; then
    (cd "$ROOT" && docker compose kill broker) >/dev/null 2>&1 || fail "docker compose could not kill the broker"
  else
    local pid
    pid=$(cat "$INFRA_DIR/broker/broker.pid" 2>/dev/null) || fail "no broker pid in $INFRA_DIR/broker/broker.pid"
    kill -9 "$pid" 2>/dev/null || fail "broker pid $pid is not running"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && fail "broker pid $pid still runs"
  fi
  BROKER_STOPPED=true
  echo "broker killed"
}

broker_start() {
  if [ "$SUITE" = compose ]; then
    (cd "$ROOT" && docker compose start broker) >/dev/null 2>&1 || fail "docker compose could not start the broker"
  else
    local out="${TMPDIR:-/tmp}/scenario-broker.$$.log"
    if ! INFRA_DIR=$INFRA_DIR "$ROOT/scripts/infra-up.sh" >"$out" 2>&1; then
      tail -n 20 "$out" >&2
      fail "infra-up.sh could not start the broker again"
    fi
    rm -f "$out"
  fi
  BROKER_STOPPED=false
}

# The broker back, and the placement as it was, however the script ends.
restore() {
  local rc=$?
  if $BROKER_STOPPED; then
    printf '\n(starting the broker again)\n' >&2
    broker_start || true
  fi
  if $SWITCHED; then
    printf '\n(putting the transactional placement back)\n' >&2
    use_placement transactional >/dev/null || true
  fi
  exit $rc
}
trap restore EXIT

# outbox_rows: the outbox's size, as instance 1 counts it for /metrics (the table is shared).
outbox_rows() { metric "$ORDER_URL" outbox_rows; }

title "outbox: the broker is down, the order is accepted and its event waits"
if [ "$(metric "$ORDER_URL" 'order_placement_mode{mode="outbox"}')" != 1 ] ||
  [ "$(metric "$ORDER_URL_2" 'order_placement_mode{mode="outbox"}')" != 1 ]; then
  say "both order-service instances restart with PLACEMENT=outbox"
  SWITCHED=true
  use_placement outbox
fi
curl -fsS --max-time 5 "$ORDER_URL/metrics" | grep '^order_placement_mode'

u=$(new_user)
fill_cart "$u"
say "the broker goes down"
broker_stop
say "an order, with the broker down: the local transaction writes the order and its event"
req POST "$ORDER_URL/orders" "$(ORDER_BODY "$u")"
expect 201
id=$(json .order.order_id)
[ -n "$id" ] || fail "the answer names no order_id"
echo "(the transactional flow answers 503 broker_unavailable here: it cannot store the half message)"
n=$(outbox_rows)
[ "$n" -ge 1 ] || fail "outbox_rows = $n, want the order's event waiting"
echo "outbox_rows $n"
say "instance 1 stays ready: readiness does not depend on the broker in this placement"
req GET "$ORDER_URL/readyz"
expect 200
say "the cart is untouched while the event waits"
stays_qty "$u" A-1 5 3

say "the broker comes back; the relay publishes the waiting event at its next poll"
start=$SECONDS
broker_start
echo "broker up again after $((SECONDS - start)) s"
took=$(wait_qty "$u" A-1 3 120)
echo "cart updated ${took}s after the broker was up"
for _ in $(seq 1 150); do
  n=$(outbox_rows)
  [ "$n" = 0 ] && break
  sleep 0.2
done
[ "$n" = 0 ] || fail "outbox_rows = $n after the cart was updated, want 0"
echo "outbox_rows 0"
stays_qty "$u" A-1 3 2
req GET "$CART_URL/carts/$u"
verdict_for "$u"
