#!/usr/bin/env bash
# Runs the whole suite locally, without Docker: the servers of scripts/infra-up.sh, then two
# order-service instances (one producer group) and one cart-service (or two, CARTS=2, in one
# consumer group) as plain processes, the same layout as docker-compose.yml. Safe to run again: it
# (re)starts only what is not running, which is also how the scenario scripts bring back a service
# they crashed.
#
#   scripts/suite-up.sh && scripts/demo.sh && scripts/scenarios/skip-end-transaction.sh
#   scripts/suite-down.sh
#
# Environment (all optional):
#   SUITE_DIR       binaries, logs, pid files          (default: <repo>/.infra/suite)
#   ORDER_ADDR_1    (127.0.0.1:8081)  ORDER_ADDR_2 (127.0.0.1:8083)  CART_ADDR (127.0.0.1:8082)
#   CARTS           (1) 2 runs a second cart-service, in the same consumer group, on CART_ADDR_2
#                   (127.0.0.1:8084): the topic's queues are shared between the two
#   BROKERS         (1) 2 runs the servers as a cluster (see infra-up.sh); the services then get
#                   both NameServers and both brokers unless ROCKETMQ_NAMESRV/ROCKETMQ_BROKER_ADDR say
#   ORDERS_DSN      (rmqtx:rmqtx@tcp(127.0.0.1:3306)/orders)
#   CARTS_DSN       (rmqtx:rmqtx@tcp(127.0.0.1:3306)/carts)
#   FAULT_INJECTION (on: the scenario scripts need it; never on in production)
#   TIMELINE        (on: record each order's steps for the web page; off to measure their cost)
#   PLACEMENT       (transactional) how both order-service instances place orders; outbox is the
#                   other right way (order-service/internal/order/outbox.go); any other value
#                   is a wrong way on purpose (order-service/internal/order/wrong.go) and needs
#                   FAULT_INJECTION=on. An instance already running keeps its placement: the
#                   scenarios under scenarios/wrong/ and outbox-broker-down.sh stop both first.
#   CONSUMER        (correct: cart-service's consumer; the others are wrong on purpose, for
#                   scripts/scenarios/wrong/, and need FAULT_INJECTION=on)
#   ROCKETMQ_NAMESRV, ROCKETMQ_BROKER_ADDR, ROCKETMQ_TOPIC, ORDER_GROUP, CART_GROUP, LOG_LEVEL
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE_DIR=${SUITE_DIR:-$ROOT/.infra/suite}
ORDER_ADDR_1=${ORDER_ADDR_1:-127.0.0.1:8081}
ORDER_ADDR_2=${ORDER_ADDR_2:-127.0.0.1:8083}
CART_ADDR=${CART_ADDR:-127.0.0.1:8082}
CART_ADDR_2=${CART_ADDR_2:-127.0.0.1:8084}
CARTS=${CARTS:-1}
case "$CARTS" in 1 | 2) ;; *) echo "suite-up: CARTS must be 1 or 2, got $CARTS" >&2; exit 2 ;; esac
if [ "${BROKERS:-1}" = 2 ]; then
  ROCKETMQ_NAMESRV=${ROCKETMQ_NAMESRV:-127.0.0.1:${NAMESRV_PORT:-9876};127.0.0.1:${NAMESRV2_PORT:-9877}}
  ROCKETMQ_BROKER_ADDR=${ROCKETMQ_BROKER_ADDR:-127.0.0.1:${BROKER_PORT:-10911};127.0.0.1:${BROKER2_PORT:-10921}}
fi
ORDERS_DSN=${ORDERS_DSN:-rmqtx:rmqtx@tcp(127.0.0.1:3306)/orders}
CARTS_DSN=${CARTS_DSN:-rmqtx:rmqtx@tcp(127.0.0.1:3306)/carts}

"$ROOT/scripts/infra-up.sh"
mkdir -p "$SUITE_DIR/bin"

log() { printf 'suite-up: %s\n' "$*" >&2; }
# alive <pidfile>: the process runs (a killed process can linger as a zombie until reaped).
alive() {
  local st
  [ -f "$1" ] && st=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) && [[ $st != Z* ]]
}

log "building order-service and cart-service"
"$ROOT/scripts/build-services.sh" "$SUITE_DIR/bin"

# start <name> <binary> <addr> <dsn> <group>
start() {
  local name=$1 bin=$2 addr=$3 dsn=$4 group=$5 pidfile="$SUITE_DIR/$1.pid" logfile="$SUITE_DIR/$1.log"
  if alive "$pidfile"; then
    log "$name already running (pid $(cat "$pidfile"))"
    return
  fi
  # A process that just crashed may still hold its port for a moment.
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null || break
    sleep 0.2
  done
  log "starting $name on $addr (log: $logfile)"
  HTTP_ADDR=$addr MYSQL_DSN=$dsn ROCKETMQ_GROUP=$group PLACEMENT=${PLACEMENT:-transactional} \
    ROCKETMQ_NAMESRV=${ROCKETMQ_NAMESRV:-127.0.0.1:9876} \
    ROCKETMQ_BROKER_ADDR=${ROCKETMQ_BROKER_ADDR:-127.0.0.1:10911} \
    ROCKETMQ_TOPIC=${ROCKETMQ_TOPIC:-} LOG_LEVEL=${LOG_LEVEL:-info} \
    FAULT_INJECTION=${FAULT_INJECTION:-on} TIMELINE=${TIMELINE:-on} \
    "$SUITE_DIR/bin/$bin" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$pidfile"
}

# CART_URL: the web page each order-service serves reaches cart-service through it.
INSTANCE_NAME=order-service-1 CART_URL=http://$CART_ADDR start order-service-1 order-service "$ORDER_ADDR_1" "$ORDERS_DSN" "${ORDER_GROUP:-order-service}"
INSTANCE_NAME=order-service-2 CART_URL=http://$CART_ADDR start order-service-2 order-service "$ORDER_ADDR_2" "$ORDERS_DSN" "${ORDER_GROUP:-order-service}"
CONSUMER=${CONSUMER:-correct} start cart-service cart-service "$CART_ADDR" "$CARTS_DSN" "${CART_GROUP:-cart-service}"
services=(order-service-1="$ORDER_ADDR_1" order-service-2="$ORDER_ADDR_2" cart-service="$CART_ADDR")
if [ "$CARTS" = 2 ]; then
  CONSUMER=${CONSUMER:-correct} start cart-service-2 cart-service "$CART_ADDR_2" "$CARTS_DSN" "${CART_GROUP:-cart-service}"
  services+=(cart-service-2="$CART_ADDR_2")
fi

for pair in "${services[@]}"; do
  name=${pair%%=*} addr=${pair#*=}
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://$addr/readyz" 2>/dev/null && break
    if ! alive "$SUITE_DIR/$name.pid"; then
      printf 'suite-up: FAILED: %s exited; last lines of its log:\n' "$name" >&2
      tail -n 20 "$SUITE_DIR/$name.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://$addr/readyz" || { log "FAILED: $name not ready after 120 s"; exit 1; }
  log "$name ready at http://$addr"
done
log "web page: http://$ORDER_ADDR_1/ (place an order and watch its steps)"
