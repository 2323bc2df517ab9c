#!/usr/bin/env bash
# Measures what recording the timeline costs: the transactional flow with TIMELINE=on and with
# TIMELINE=off, side by side in one run on this machine. Two pairs of order-service + cart-service
# run at once, each with fresh databases, topic and groups; the load generator
# (scripts/e2e/cmd/loadgen) drives them in turn, alternating which goes first each round so that a
# drift of the machine (page cache, buffer pool) affects both alike. It prints orders/s and the
# end-to-end latency (order created -> cart updated) of each run, the means, and off/on. Figures
# only: nothing here fails on a number.
#
#   scripts/timeline-cost.sh                       3 rounds of 2 s warm-up + 10 s measured, 8 clients
#   ROUNDS=5 CLIENTS=32 scripts/timeline-cost.sh
#
# Environment (all optional):
#   COST_DIR   binaries, logs, results   (default: <repo>/.infra/timeline-cost)
#   ROUNDS (3)  CLIENTS (8)  CELL_SECONDS (10)  WARMUP_SECONDS (2)  USERS (200)
#   PORT_BASE   first of four ports      (18281)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COST_DIR=${COST_DIR:-$ROOT/.infra/timeline-cost}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
CELL_SECONDS=${CELL_SECONDS:-10}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
USERS=${USERS:-200}
PORT_BASE=${PORT_BASE:-18281}

log() { printf 'timeline-cost: %s\n' "$*" >&2; }

"$ROOT/scripts/infra-up.sh"
# shellcheck disable=SC1091
source "${INFRA_DIR:-$ROOT/.infra}/env"
MYSQL_BASE=$TEST_MYSQL_DSN # user:password@tcp(host:port)/

mkdir -p "$COST_DIR/bin" "$COST_DIR/logs"
log "building order-service, cart-service and loadgen"
"$ROOT/scripts/build-services.sh" "$COST_DIR/bin"
(cd "$ROOT/scripts/e2e" && go build -o "$COST_DIR/bin/loadgen" ./cmd/loadgen)

user_pass=${MYSQL_BASE%%@*}
host_port=${MYSQL_BASE#*tcp(}
host_port=${host_port%%)*}
sql() {
  MYSQL_PWD=${user_pass#*:} mariadb --no-defaults --protocol=tcp -h"${host_port%:*}" -P"${host_port#*:}" -u"${user_pass%%:*}" -e "$1"
}
run_id=$(date +%s)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start <name> <binary> <port> <database> <group> <timeline>: prints the pid. Only the
# transactional placement runs here, so fault injection stays off (a wrong PLACEMENT, as in
# scripts/bench.sh, would need FAULT_INJECTION=on to start). MAX_IN_FLIGHT is the database pool,
# as in scripts/bench.sh: CLIENTS=32 measures the timeline's cost, not refusals.
start() {
  env HTTP_ADDR="127.0.0.1:$3" MYSQL_DSN="${MYSQL_BASE}$4" ROCKETMQ_NAMESRV="$TEST_ROCKETMQ_NAMESRV" \
    ROCKETMQ_BROKER_ADDR="$TEST_ROCKETMQ_BROKER" ROCKETMQ_TOPIC="tlcost_${6}_$run_id" ROCKETMQ_GROUP="$5" \
    LOG_LEVEL=warn FAULT_INJECTION=off TIMELINE="$6" MAX_IN_FLIGHT=32 OTEL_EXPORTER_OTLP_ENDPOINT= \
    "$COST_DIR/bin/$2" </dev/null >"$COST_DIR/logs/$1.log" 2>&1 &
  echo $!
}
wait_ready() {
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { log "FAILED: $1 exited"; tail -n 20 "$COST_DIR/logs/$1.log" >&2; exit 1; }
    sleep 0.5
  done
  log "FAILED: $1 not ready after 120 s"
  exit 1
}

declare -A order_port cart_port
order_port[on]=$PORT_BASE cart_port[on]=$((PORT_BASE + 1))
order_port[off]=$((PORT_BASE + 2)) cart_port[off]=$((PORT_BASE + 3))
for tl in on off; do
  sql "DROP DATABASE IF EXISTS tlcost_orders_$tl; CREATE DATABASE tlcost_orders_$tl; DROP DATABASE IF EXISTS tlcost_carts_$tl; CREATE DATABASE tlcost_carts_$tl"
  o=$(start "order-$tl" order-service "${order_port[$tl]}" "tlcost_orders_$tl" "tlcost_pg_${tl}_$run_id" "$tl")
  c=$(start "cart-$tl" cart-service "${cart_port[$tl]}" "tlcost_carts_$tl" "tlcost_cg_${tl}_$run_id" "$tl")
  pids+=("$o" "$c")
  wait_ready "order-$tl" "${order_port[$tl]}" "$o"
  wait_ready "cart-$tl" "${cart_port[$tl]}" "$c"
done

results="$COST_DIR/results.jsonl"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  order=(on off)
  [ $((round % 2)) -eq 0 ] && order=(off on)
  for tl in "${order[@]}"; do
    log "round $round, TIMELINE=$tl, $CLIENTS clients"
    CARTS_DSN="${MYSQL_BASE}tlcost_carts_$tl" "$COST_DIR/bin/loadgen" -json \
      -order "http://127.0.0.1:${order_port[$tl]}" -cart "http://127.0.0.1:${cart_port[$tl]}" \
      -concurrency "$CLIENTS" -duration "${CELL_SECONDS}s" -warmup "${WARMUP_SECONDS}s" -users "$USERS" \
      -label "$tl" >>"$results"
  done
done

echo
echo "Timeline cost: $(nproc) cores, $CLIENTS clients, $ROUNDS rounds of $CELL_SECONDS s measured after ${WARMUP_SECONDS} s warm-up"
awk '
  {
    label = $0; sub(/.*"label":"/, "", label); sub(/".*/, "", label)
    ops = $0; sub(/.*"orders_per_s":/, "", ops); sub(/[,}].*/, "", ops)
    e2e = $0; sub(/.*"e2e_ms":\{/, "", e2e); p50 = e2e; sub(/.*"p50":/, "", p50); sub(/[,}].*/, "", p50)
    printf "  TIMELINE=%-3s  %7.1f orders/s   e2e p50 %6.1f ms\n", label, ops, p50
    sum[label] += ops; n[label]++
  }
  END {
    on = sum["on"] / n["on"]; off = sum["off"] / n["off"]
    printf "mean: on %.1f orders/s, off %.1f orders/s; on/off = %.3f (recording costs %.1f%% of throughput)\n",
      on, off, on / off, 100 * (1 - on / off)
  }' "$results"
