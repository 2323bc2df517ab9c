#!/usr/bin/env bash
# Measures what the transactional flow costs, side by side with the two ways people would
# otherwise write it and with the other right way, in one run on this machine:
#
#   A  direct         the same rows, the same code, no messaging at all: the database's ceiling
#   B  save-then-send commit, then send a plain message: the naive way, which loses events
#   C  transactional  the flow of order-service/internal/order/place.go
#   D  outbox         the transactional outbox: the event committed with the order in an outbox
#                     row, published by a relay (order-service/internal/order/outbox.go, relay.go)
#
# A and B are wrong ways of placing orders, kept to measure against (PLACEMENT=direct|save-then-send;
# order-service/internal/order/wrong_send.go says exactly how each one is wrong). A wrong placement
# starts only with FAULT_INJECTION=on, so their two cells turn it on; no request here names a fault
# point, and the transactional and outbox cells run with it off.
#
# It starts the servers of scripts/infra-up.sh, then its own processes on ports of their own, with
# fresh databases, topic and groups, so a suite already running is not disturbed: one
# order-service per placement and one cart-service consuming B's, C's and D's events. Each
# placement runs at 1, 8 and 32 clients; then B, C and D run at one fixed offered rate (half of C's
# best throughput) to compare the end-to-end latency, order created -> cart updated. D's outbox
# table is counted every 100 ms while it runs (its backlog), and its relay's idle cost is measured
# at the end: 10 s without orders, the CPU of C's and D's order-service. The peak memory of every
# service is sampled throughout. It prints a table (scripts/e2e/cmd/benchtable) and
# whether each target holds. Figures only: nothing here fails on a number.
#
#   scripts/bench.sh                      about 4 minutes: 15 runs of 2 s warm-up + 10 s measured
#   CELL_SECONDS=15 scripts/bench.sh      longer runs
#   PPROF=on scripts/bench.sh             services serve /debug/pprof/ (to profile during a run)
#
# Environment (all optional):
#   BENCH_DIR        binaries, logs, results              (default: <repo>/.infra/bench)
#   CELL_SECONDS     measured seconds per run (10)        WARMUP_SECONDS (2)
#   CLIENTS          concurrencies ("1 8 32")             USERS (200 carts)
#   PORT_BASE        first of five ports (18181)          LOG_LEVEL (warn: measure the flow, not the logger)
#   PPROF            on/off (off)
#   OUTBOX_POLL_INTERVAL  D's relay poll (100ms). Rows an instance writes wake its own relay at
#                    once; the poll only bounds how long rows left by another instance (or a broker
#                    outage) wait, and costs one claim transaction per interval per instance idle.
#   TIMELINE         on/off (off). The order timeline (a teaching aid, on by default in the services)
#                    writes rows of its own in C's local transaction and in cart-service's; the
#                    baselines write none, so off compares like with like. on measures C as shipped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/.infra/bench}
CELL_SECONDS=${CELL_SECONDS:-10}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
CLIENTS=${CLIENTS:-"1 8 32"}
USERS=${USERS:-200}
PORT_BASE=${PORT_BASE:-18181}
LOG_LEVEL=${LOG_LEVEL:-warn}
PPROF=${PPROF:-off}
TIMELINE=${TIMELINE:-off}

log() { printf 'bench: %s\n' "$*" >&2; }

"$ROOT/scripts/infra-up.sh"
# shellcheck disable=SC1091
source "${INFRA_DIR:-$ROOT/.infra}/env"
NAMESRV=$TEST_ROCKETMQ_NAMESRV
BROKER=$TEST_ROCKETMQ_BROKER
MYSQL_BASE=$TEST_MYSQL_DSN # user:password@tcp(host:port)/

mkdir -p "$BENCH_DIR/bin" "$BENCH_DIR/logs"
log "building order-service, cart-service, loadgen and benchtable"
"$ROOT/scripts/build-services.sh" "$BENCH_DIR/bin"
(cd "$ROOT/scripts/e2e" && go build -o "$BENCH_DIR/bin/loadgen" ./cmd/loadgen && go build -o "$BENCH_DIR/bin/benchtable" ./cmd/benchtable)

# Fresh databases every run: the same table sizes for every run of the benchmark.
user_pass=${MYSQL_BASE%%@*}
host_port=${MYSQL_BASE#*tcp(}
host_port=${host_port%%)*}
sql() {
  MYSQL_PWD=${user_pass#*:} mariadb --no-defaults --protocol=tcp -h"${host_port%:*}" -P"${host_port#*:}" -u"${user_pass%%:*}" -e "$1"
}
for db in bench_orders_direct bench_orders_save_then_send bench_orders_transactional bench_orders_outbox bench_carts; do
  sql "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
done
run_id=$(date +%s)
TOPIC=bench_orders_$run_id

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start <name> <binary> <port> <database> <group> [VAR=value...]: prints the pid.
start() {
  local name=$1 bin=$2 port=$3 db=$4 group=$5
  shift 5
  env HTTP_ADDR="127.0.0.1:$port" MYSQL_DSN="${MYSQL_BASE}$db" ROCKETMQ_NAMESRV="$NAMESRV" \
    ROCKETMQ_BROKER_ADDR="$BROKER" ROCKETMQ_TOPIC="$TOPIC" ROCKETMQ_GROUP="$group" \
    LOG_LEVEL="$LOG_LEVEL" FAULT_INJECTION=off PPROF="$PPROF" TIMELINE="$TIMELINE" OTEL_EXPORTER_OTLP_ENDPOINT= "$@" \
    "$BENCH_DIR/bin/$bin" </dev/null >"$BENCH_DIR/logs/$name.log" 2>&1 &
  echo $!
}
wait_ready() {
  local name=$1 port=$2 pid=$3
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { log "FAILED: $name exited"; tail -n 20 "$BENCH_DIR/logs/$name.log" >&2; exit 1; }
    sleep 0.5
  done
  log "FAILED: $name not ready after 120 s"
  exit 1
}

declare -A port pid
port[direct]=$PORT_BASE
port[save-then-send]=$((PORT_BASE + 1))
port[transactional]=$((PORT_BASE + 2))
port[cart]=$((PORT_BASE + 3))
port[outbox]=$((PORT_BASE + 4))
log "starting the services (topic $TOPIC, logs in $BENCH_DIR/logs)"
# What is measured here is what each placement costs, not admission control (scripts/overload.sh
# measures that): each order-service admits as many orders at once as its database pool has
# connections, so that 32 clients are all served. With the default MAX_IN_FLIGHT (8) most of the
# 32 clients' orders were refused at once and sent again, and the 32-client cells measured the
# refusals.
for p in direct save-then-send transactional outbox; do
  faults=on # a wrong placement refuses to start without it
  case $p in transactional | outbox) faults=off ;; esac
  pid[$p]=$(start "order-$p" order-service "${port[$p]}" "bench_orders_${p//-/_}" "bench_pg_${p//-/_}_$run_id" PLACEMENT="$p" FAULT_INJECTION="$faults" \
    OUTBOX_POLL_INTERVAL="${OUTBOX_POLL_INTERVAL:-100ms}" MAX_IN_FLIGHT=32)
  pids+=("${pid[$p]}")
done
pid[cart]=$(start cart cart-service "${port[cart]}" bench_carts "bench_cg_$run_id")
pids+=("${pid[cart]}")
for p in direct save-then-send transactional outbox cart; do
  wait_ready "$p" "${port[$p]}" "${pid[$p]}"
done

# The servers share the machine's cores with the services: watch their CPU too (when
# infra-up.sh started them, it knows their pids).
INFRA=${INFRA_DIR:-$ROOT/.infra}
servers=()
for pair in mariadb=mariadb/mariadbd.pid broker=broker/broker.pid; do
  f="$INFRA/${pair#*=}"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && servers+=(-pid "${pair%%=*}=$(cat "$f")")
done

results="$BENCH_DIR/results.jsonl"
: >"$results"
# cell <placement> <loadgen flags...>: one run, appended to the results.
cell() {
  local p=$1
  shift
  local e2e=()
  [ "$p" != direct ] && e2e=(env CARTS_DSN="${MYSQL_BASE}bench_carts")
  [ "$p" = outbox ] && e2e+=(OUTBOX_DSN="${MYSQL_BASE}bench_orders_outbox")
  "${e2e[@]}" "$BENCH_DIR/bin/loadgen" -json -order "http://127.0.0.1:${port[$p]}" -cart "http://127.0.0.1:${port[cart]}" \
    -duration "${CELL_SECONDS}s" -warmup "${WARMUP_SECONDS}s" -users "$USERS" \
    -pid "order-service ($p)=${pid[$p]}" -pid "cart-service=${pid[cart]}" "${servers[@]}" "$@" >>"$results"
}

started=$SECONDS
# Interleaved by concurrency, so that a drift of the machine during the run (the broker's page
# cache, MariaDB's buffer pool) affects the four placements alike.
for c in $CLIENTS; do
  for p in direct save-then-send transactional outbox; do
    log "$p, $c clients"
    cell "$p" -concurrency "$c" -label "$p c=$c"
  done
done
rate=$("$BENCH_DIR/bin/benchtable" -half-rate "$results")
for p in save-then-send transactional outbox; do
  log "$p, $rate orders/s offered"
  cell "$p" -rate "$rate" -concurrency 256 -label "$p rate"
done
elapsed=$((SECONDS - started))

# The relay's idle cost: with no orders, D's relay still polls the outbox (one claim transaction
# per OUTBOX_POLL_INTERVAL); C's order-service only heartbeats the broker. CPU time from
# /proc/<pid>/stat (utime + stime, in clock ticks) over the same 10 s.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
idle_seconds=10
declare -A idle_from
for p in transactional outbox; do idle_from[$p]=$(ticks "${pid[$p]}"); done
polls_from=$(curl -fsS "http://127.0.0.1:${port[outbox]}/metrics" | awk '/^outbox_polls_total /{print $2}')
sleep "$idle_seconds"
polls_to=$(curl -fsS "http://127.0.0.1:${port[outbox]}/metrics" | awk '/^outbox_polls_total /{print $2}')
hz=$(getconf CLK_TCK)
idle_line="Idle, ${idle_seconds} s without orders (OUTBOX_POLL_INTERVAL=${OUTBOX_POLL_INTERVAL:-100ms}): outbox relay polls/s $(awk -v a="${polls_from:-0}" -v b="${polls_to:-0}" -v s="$idle_seconds" 'BEGIN{printf "%.1f", (b-a)/s}')"
for p in transactional outbox; do
  used=$(($(ticks "${pid[$p]}") - idle_from[$p]))
  idle_line+=", order-service ($p) $(awk -v t="$used" -v hz="$hz" -v s="$idle_seconds" 'BEGIN{printf "%.1f", t*1000/hz/s}') ms CPU/s"
done

echo
echo "Benchmark: $(nproc) cores, $CELL_SECONDS s measured per run after ${WARMUP_SECONDS} s warm-up, $USERS carts," \
  "LOG_LEVEL=$LOG_LEVEL, TIMELINE=$TIMELINE, runs took ${elapsed} s"
"$BENCH_DIR/bin/benchtable" "$results"
echo
echo "$idle_line"
