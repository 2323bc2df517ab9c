#!/usr/bin/env bash
# Offers order-service about three times the orders it can place, and prints what happened to
# them: how many were placed, how fast the admitted ones and the refused ones were answered, how
# many failed late, and the invariant checker's verdict afterwards.
#
# It starts the servers of scripts/infra-up.sh, then its own processes in the layout of
# scripts/suite-up.sh (two order-service instances in one producer group, one cart-service) on
# ports of their own, with fresh databases, topic and groups. With the load generator
# (scripts/e2e/cmd/loadgen) it then measures, ROUNDS times in turn:
#
#   1. the HTTP latency at 8 clients, a load the services carry easily (the reference p99);
#   2. the closed-loop capacity: the orders/s that CAPACITY_CLIENTS clients get (by default as
#      many as the two instances admit at once, so that the capacity and the overload run with
#      the same number of orders in flight, and only the excess differs);
#   3. an open-loop offer of FACTOR times the best closed-loop orders/s, for OVERLOAD_SECONDS;
#
# then runs the invariant checker (scripts/e2e/cmd/checkinv) and prints a table, a line per round,
# their median and the goals. A shared virtual machine can lose a third of its speed from one
# minute to the next: each overload is compared with what was measured just before it, and one
# round alone says little. Figures only: it fails when a step fails or an invariant is violated,
# never on a number.
#
# The load generator stands for clients on other machines, but here it shares the cores with what
# it measures: when an order is due and the generator waits for a CPU, that wait would be counted
# as the service's latency (on two cores, tens of milliseconds at the 99th percentile). So, when
# the script may (as root), it runs the generator ahead of everything else (LOADGEN_NICE, -10);
# the services, MariaDB and the broker still compete for the cores among themselves as they would
# anyway. Each phase also reports the cores the hypervisor took from this virtual machine ("stolen"):
# a phase with a tenth of a core or more stolen ran on a slower machine than the others, and its
# ratios say little.
#
#   scripts/overload.sh                          about 3 minutes
#   MAX_IN_FLIGHT=8 ADMISSION_WAIT=2ms scripts/overload.sh
#   SERVICES_REV=<commit> scripts/overload.sh    the services as of that commit (the same load
#                                                generator and checker): before and after a change
#   LOADGEN_NICE=0 scripts/overload.sh           the load generator at the same priority as the rest
#   scripts/infra-up.sh && nice -n -10 scripts/overload.sh
#                                                (as root) the services too ahead of the already
#                                                running MariaDB and broker for the CPU: close to what
#                                                the figures would be if they did not share two cores
#
# Environment (all optional):
#   OVERLOAD_DIR       binaries, logs, results               (default: <repo>/.infra/overload)
#   PORT_BASE          first of three ports                  (18381)
#   CAPACITY_CLIENTS   (2 x MAX_IN_FLIGHT)   FACTOR (3)   USERS (500)   MAX_CONCURRENCY (1024: loadgen's in-flight bound)
#   CELL_SECONDS (10)  OVERLOAD_SECONDS (20)  WARMUP_SECONDS (2)  ROUNDS (3)
#   MAX_IN_FLIGHT, ADMISSION_WAIT   passed to order-service when set (its defaults otherwise)
#   LOG_LEVEL (info)   TIMELINE (on)   as scripts/suite-up.sh runs the services
#   LOADGEN_NICE       the load generator's niceness relative to the script's (-10); 0 or not
#                      permitted: the same as the rest
#   SERVICES_REV       build order-service and cart-service from this git revision
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OVERLOAD_DIR=${OVERLOAD_DIR:-$ROOT/.infra/overload}
PORT_BASE=${PORT_BASE:-18381}
CAPACITY_CLIENTS=${CAPACITY_CLIENTS:-}
FACTOR=${FACTOR:-3}
USERS=${USERS:-500}
MAX_CONCURRENCY=${MAX_CONCURRENCY:-1024}
CELL_SECONDS=${CELL_SECONDS:-10}
OVERLOAD_SECONDS=${OVERLOAD_SECONDS:-20}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
LOG_LEVEL=${LOG_LEVEL:-info}
TIMELINE=${TIMELINE:-on}
SERVICES_REV=${SERVICES_REV:-}
ROUNDS=${ROUNDS:-3}
LOADGEN_NICE=${LOADGEN_NICE:--10}

log() { printf 'overload: %s\n' "$*" >&2; }
command -v jq >/dev/null || { log "needs jq to read the load generator's results (apt-get install jq)"; exit 1; }

"$ROOT/scripts/infra-up.sh"
# shellcheck disable=SC1091
source "${INFRA_DIR:-$ROOT/.infra}/env"
MYSQL_BASE=$TEST_MYSQL_DSN # user:password@tcp(host:port)/

bin=$OVERLOAD_DIR/bin
mkdir -p "$bin" "$OVERLOAD_DIR/logs"
services="working tree"
if [ -n "$SERVICES_REV" ]; then
  services=$(git -C "$ROOT" rev-parse --short "$SERVICES_REV")
  log "building order-service and cart-service as of $services"
  src=$(mktemp -d)
  git -C "$ROOT" archive "$SERVICES_REV" | tar -x -C "$src"
  "$src/scripts/build-services.sh" "$bin"
  rm -rf "$src"
else
  log "building order-service and cart-service"
  "$ROOT/scripts/build-services.sh" "$bin"
fi
(cd "$ROOT/scripts/e2e" && go build -o "$bin/loadgen" ./cmd/loadgen && go build -o "$bin/checkinv" ./cmd/checkinv)

user_pass=${MYSQL_BASE%%@*}
host_port=${MYSQL_BASE#*tcp(}
host_port=${host_port%%)*}
sql() {
  MYSQL_PWD=${user_pass#*:} mariadb --no-defaults --protocol=tcp -h"${host_port%:*}" -P"${host_port#*:}" -u"${user_pass%%:*}" -e "$1"
}
sql "DROP DATABASE IF EXISTS overload_orders; CREATE DATABASE overload_orders; DROP DATABASE IF EXISTS overload_carts; CREATE DATABASE overload_carts"
run_id=$(date +%s)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start <name> <binary> <port> <database> <group> [VAR=value...]: prints the pid.
start() {
  local name=$1 binary=$2 port=$3 db=$4 group=$5
  shift 5
  env -u MAX_IN_FLIGHT -u ADMISSION_WAIT HTTP_ADDR="127.0.0.1:$port" MYSQL_DSN="${MYSQL_BASE}$db" ROCKETMQ_NAMESRV="$TEST_ROCKETMQ_NAMESRV" \
    ROCKETMQ_BROKER_ADDR="$TEST_ROCKETMQ_BROKER" ROCKETMQ_TOPIC="overload_$run_id" ROCKETMQ_GROUP="$group" \
    LOG_LEVEL="$LOG_LEVEL" FAULT_INJECTION=off TIMELINE="$TIMELINE" OTEL_EXPORTER_OTLP_ENDPOINT= \
    "$@" "$bin/$binary" </dev/null >"$OVERLOAD_DIR/logs/$name.log" 2>&1 &
  echo $!
}
wait_ready() {
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { log "FAILED: $1 exited"; tail -n 20 "$OVERLOAD_DIR/logs/$1.log" >&2; exit 1; }
    sleep 0.5
  done
  log "FAILED: $1 not ready after 120 s"
  exit 1
}

# The bound under test is order-service's; cart-service keeps its own default.
admission=()
[ -n "${MAX_IN_FLIGHT:-}" ] && admission+=(MAX_IN_FLIGHT="$MAX_IN_FLIGHT")
[ -n "${ADMISSION_WAIT:-}" ] && admission+=(ADMISSION_WAIT="$ADMISSION_WAIT")
order1=$PORT_BASE order2=$((PORT_BASE + 1)) cart=$((PORT_BASE + 2))
log "starting two order-service instances and cart-service (topic overload_$run_id, logs in $OVERLOAD_DIR/logs)"
o1=$(start order-1 order-service "$order1" overload_orders "overload_pg_$run_id" INSTANCE_NAME=order-1 "${admission[@]}")
o2=$(start order-2 order-service "$order2" overload_orders "overload_pg_$run_id" INSTANCE_NAME=order-2 "${admission[@]}")
c=$(start cart cart-service "$cart" overload_carts "overload_cg_$run_id")
pids+=("$o1" "$o2" "$c")
wait_ready order-1 "$order1" "$o1"
wait_ready order-2 "$order2" "$o2"
wait_ready cart "$cart" "$c"

# The bound under test, as the instances report it (their default unless MAX_IN_FLIGHT is set).
limit=$(curl -fsS "http://127.0.0.1:$order1/metrics" | awk '$1 == "http_admission_limit" { print $2 }')
[ -n "$limit" ] || { log "FAILED: order-1 reports no http_admission_limit"; exit 1; }
CAPACITY_CLIENTS=${CAPACITY_CLIENTS:-$((2 * limit))}

# The servers share the two cores with the services: watch their CPU too (when infra-up.sh started
# them, it knows their pids).
servers=()
for pair in mariadb=mariadb/mariadbd.pid broker=broker/broker.pid; do
  f="${INFRA_DIR:-$ROOT/.infra}/${pair#*=}"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && servers+=(-pid "${pair%%=*}=$(cat "$f")")
done
results=$OVERLOAD_DIR/results.jsonl
: >"$results"
ahead=()
if [ "$LOADGEN_NICE" != 0 ]; then
  if nice -n "$LOADGEN_NICE" true 2>/dev/null && [ "$(nice -n "$LOADGEN_NICE" nice)" -lt "$(nice)" ]; then
    ahead=(nice -n "$LOADGEN_NICE")
  else
    log "cannot run the load generator at niceness $LOADGEN_NICE (not root): its own wait for a CPU counts as latency"
    LOADGEN_NICE=0
  fi
fi
# loadgen <label> <flags...>: one run, its JSON result on stdout and appended to the results.
loadgen() {
  local label=$1
  shift
  "${ahead[@]}" "$bin/loadgen" -json -label "$label" -order "http://127.0.0.1:$order1,http://127.0.0.1:$order2" \
    -cart "http://127.0.0.1:$cart" -warmup "${WARMUP_SECONDS}s" -users "$USERS" -settle 0s \
    -pid "order-1=$o1" -pid "order-2=$o2" -pid "cart=$c" "${servers[@]}" "$@" | tee -a "$results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Local transactions that ran out of LOCAL_TX_TIMEOUT, from the logs.
timed_out() { cat "$OVERLOAD_DIR"/logs/order-*.log | grep 'local transaction failed' | grep -c 'deadline exceeded' || true; }
# Rounds of (reference latency, capacity, overload): the machine drifts by more than the effects
# measured here within minutes, so each overload is compared with the capacity and latency measured
# just before it, and the summary is the median of the rounds.
rounds=$OVERLOAD_DIR/rounds.jsonl
: >"$rounds"
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS: 8 clients for ${CELL_SECONDS}s, the reference latency"
  base=$(loadgen "8 clients, round $r" -concurrency 8 -duration "${CELL_SECONDS}s")
  log "round $r: $CAPACITY_CLIENTS clients for ${CELL_SECONDS}s, the closed-loop capacity"
  capacity_run=$(loadgen "$CAPACITY_CLIENTS clients, round $r" -concurrency "$CAPACITY_CLIENTS" -duration "${CELL_SECONDS}s")
  capacity=$(jq -rn --argjson a "$base" --argjson b "$capacity_run" '[$a.orders_per_s, $b.orders_per_s] | max')
  rate=$(awk -v c="$capacity" -v f="$FACTOR" 'BEGIN { r = c * f; if (r > 20000) r = 20000; printf "%.0f", r }')
  timeouts_before=$(timed_out)
  log "round $r: offering $rate orders/s ($FACTOR x $capacity) for ${OVERLOAD_SECONDS}s, at most $MAX_CONCURRENCY in flight"
  over=$(loadgen "overload, round $r" -rate "$rate" -concurrency "$MAX_CONCURRENCY" -duration "${OVERLOAD_SECONDS}s")
  jq -cn --argjson r "$r" --argjson a "$base" --argjson b "$capacity_run" --argjson o "$over" --argjson cap "$capacity" \
    --argjson rate "$rate" --argjson timeouts "$(($(timed_out) - timeouts_before))" '{
      round: $r, capacity: $cap, rate: $rate, timeouts: $timeouts,
      stolen: ([$a, $b, $o] | map(.cpu_cores.stolen // 0) | max),
      p99_8: $a.http_ms.p99, placed: $o.orders_per_s,
      share: (100 * $o.orders_per_s / $cap),
      admitted_p99: $o.admitted_ms.p99,
      ratio: (if $a.http_ms.p99 > 0 then $o.admitted_ms.p99 / $a.http_ms.p99 else null end),
      refused: $o.refused, refused_p99: $o.refused_ms.p99, refused_sent_p99: $o.refused_from_sent_ms.p99,
      lag_p99: $o.send_lag_ms.p99, http_500: ($o.errors.http_500 // 0),
      skipped: ($o.errors.overload // 0),
      other: ($o.errors | del(.http_503_overloaded, .http_500, .overload) | to_entries | map("\(.key)=\(.value)") | join(" ")),
      cpu: ($o.cpu_cores | to_entries | map("\(.key) \(.value)") | join(", "))
    }' >>"$rounds"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

log "invariant checker (waits up to 60s for the orders to reach the carts)"
verdict=0
check=$(ORDERS_DSN="${MYSQL_BASE}overload_orders" CARTS_DSN="${MYSQL_BASE}overload_carts" "$bin/checkinv" -wait 60s) || verdict=$?
missing=$(awk '/\(missing\)/ { print $NF }' <<<"$check")
phantom=$(awk '/\(phantom\)/ { print $NF }' <<<"$check")

echo
echo "Overload: $(nproc) cores, load average $load_before before and $load_after after; services: $services;" \
  "MAX_IN_FLIGHT $limit per instance, ADMISSION_WAIT ${ADMISSION_WAIT:-default}; LOG_LEVEL=$LOG_LEVEL, TIMELINE=$TIMELINE;" \
  "load generator's niceness $LOADGEN_NICE; $ROUNDS rounds of 8 clients and $CAPACITY_CLIENTS clients for ${CELL_SECONDS}s each," \
  "then $FACTOR x the better one's orders/s offered for ${OVERLOAD_SECONDS}s (latencies in ms)"
echo
# The table: one line per round, then the median of the rounds and the goals.
{
  printf 'round\tstolen\tcapacity\toffered\tplaced\tshare\tp99@8\tadmitted p99\tratio\trefused\trefused p99\tfrom sent\tgen lag\t500s\n'
  jq -r 'def r1: . * 10 | round / 10;
    [.round, .stolen, (.capacity | r1), .rate, (.placed | r1), "\(.share | r1) %", (.p99_8 | r1), (.admitted_p99 | r1),
    (if .ratio then "\(.ratio | r1) x" else "-" end), .refused, (.refused_p99 | r1), (.refused_sent_p99 | r1), (.lag_p99 | r1),
    "\(.http_500)"] | @tsv' "$rounds"
  jq -rs 'def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def r1: . * 10 | round / 10;
    ["median", (map(.stolen) | median | . * 100 | round / 100), (map(.capacity) | median | r1), "", (map(.placed) | median | r1),
     "\(map(.share) | median | r1) %", (map(.p99_8) | median | r1), (map(.admitted_p99) | median | r1),
     "\(map(.ratio // 0) | median | r1) x", "", (map(.refused_p99) | median | r1), (map(.refused_sent_p99) | median | r1),
     (map(.lag_p99) | median | r1), "\(map(.http_500) | add) in all"] | @tsv' "$rounds"
  printf 'goal\t\t\t\t\t>= 95 %%\t\t\t<= 3 x\t\t<= 10\t\t\t0\n'
} | awk -F'\t' '{ printf "  %-7s %6s %8s %7s %7s %8s %7s %12s %7s %8s %11s %9s %8s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 }'
echo
echo "  stolen: the most cores the hypervisor took in any phase of the round (0.1 or more: that round ran on a"
echo "  slower machine); share: placed / capacity; ratio: admitted p99 / p99@8; from sent: the refusals' p99"
echo "  without the load generator's own lag (gen lag, p99)."
jq -r '"  round \(.round): answered 500 \(.http_500) (\(.timeouts) local transactions timed out in the logs); other errors: \(if .other == "" then "none" else .other end); load generator skipped \(.skipped); CPU cores under overload: \(.cpu)"' "$rounds"
printf '  %-44s %-34s %s\n' "checker: missing, phantom" "${missing:-?}, ${phantom:-?}" "0, 0"
echo
echo "$check"
exit "$verdict"
