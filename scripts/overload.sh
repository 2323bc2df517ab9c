#!/usr/bin/env bash
# Offers order-service about three times the orders it can place, and prints what happened to
# them: how many were placed, how fast the admitted ones and the refused ones were answered, how
# many failed late, and the invariant checker's verdict afterwards.
#
# It starts the servers of scripts/infra-up.sh, then its own processes in the layout of
# scripts/suite-up.sh (two order-service instances in one producer group, one cart-service) on
# ports of their own, with fresh databases, topic and groups. With the load generator
# (scripts/e2e/cmd/loadgen) it then measures, in turn:
#
#   1. the HTTP latency at 8 clients, a load the services carry easily (the reference p99);
#   2. the closed-loop capacity: the orders/s that CAPACITY_CLIENTS clients get;
#   3. an open-loop offer of FACTOR times the best closed-loop orders/s, for OVERLOAD_SECONDS;
#
# then runs the invariant checker (scripts/e2e/cmd/checkinv) and prints a table with the goals.
# Figures only: it fails when a step fails or an invariant is violated, never on a number.
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
#   scripts/overload.sh                          about 2 minutes
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
#   CAPACITY_CLIENTS   (16)   FACTOR (3)   USERS (500)   MAX_CONCURRENCY (1024: loadgen's in-flight bound)
#   CELL_SECONDS (10)  OVERLOAD_SECONDS (20)  WARMUP_SECONDS (2)
#   MAX_IN_FLIGHT, ADMISSION_WAIT   passed to order-service when set (its defaults otherwise)
#   LOG_LEVEL (info)   TIMELINE (on)   as scripts/suite-up.sh runs the services
#   LOADGEN_NICE       the load generator's niceness relative to the script's (-10); 0 or not
#                      permitted: the same as the rest
#   SERVICES_REV       build order-service and cart-service from this git revision
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OVERLOAD_DIR=${OVERLOAD_DIR:-$ROOT/.infra/overload}
PORT_BASE=${PORT_BASE:-18381}
CAPACITY_CLIENTS=${CAPACITY_CLIENTS:-16}
FACTOR=${FACTOR:-3}
USERS=${USERS:-500}
MAX_CONCURRENCY=${MAX_CONCURRENCY:-1024}
CELL_SECONDS=${CELL_SECONDS:-10}
OVERLOAD_SECONDS=${OVERLOAD_SECONDS:-20}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
LOG_LEVEL=${LOG_LEVEL:-info}
TIMELINE=${TIMELINE:-on}
SERVICES_REV=${SERVICES_REV:-}
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
# get <json> <jq path>
get() { jq -r "$2" <<<"$1"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "8 clients for ${CELL_SECONDS}s: the reference latency"
base=$(loadgen "8 clients" -concurrency 8 -duration "${CELL_SECONDS}s")
log "$CAPACITY_CLIENTS clients for ${CELL_SECONDS}s: the closed-loop capacity"
capacity_run=$(loadgen "$CAPACITY_CLIENTS clients" -concurrency "$CAPACITY_CLIENTS" -duration "${CELL_SECONDS}s")
capacity=$(jq -rn --argjson a "$base" --argjson b "$capacity_run" '[$a.orders_per_s, $b.orders_per_s] | max')
rate=$(awk -v c="$capacity" -v f="$FACTOR" 'BEGIN { r = c * f; if (r > 20000) r = 20000; printf "%.0f", r }')

# Local transactions that ran out of LOCAL_TX_TIMEOUT, from the logs: the lines before the overload
# run are not counted.
timed_out() { cat "$OVERLOAD_DIR"/logs/order-*.log | grep 'local transaction failed' | grep -c 'deadline exceeded' || true; }
timeouts_before=$(timed_out)
log "offering $rate orders/s ($FACTOR x $capacity) for ${OVERLOAD_SECONDS}s, at most $MAX_CONCURRENCY in flight"
over=$(loadgen "overload" -rate "$rate" -concurrency "$MAX_CONCURRENCY" -duration "${OVERLOAD_SECONDS}s")
timeouts=$(($(timed_out) - timeouts_before))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

log "invariant checker (waits up to 60s for the orders to reach the carts)"
verdict=0
check=$(ORDERS_DSN="${MYSQL_BASE}overload_orders" CARTS_DSN="${MYSQL_BASE}overload_carts" "$bin/checkinv" -wait 60s) || verdict=$?
missing=$(awk '/\(missing\)/ { print $NF }' <<<"$check")
phantom=$(awk '/\(phantom\)/ { print $NF }' <<<"$check")

limit=$(curl -fsS "http://127.0.0.1:$order1/metrics" | awk '$1 == "http_admission_limit" { print $2 }')
echo
echo "Overload: $(nproc) cores, load average $load_before before and $load_after after; services: $services;" \
  "MAX_IN_FLIGHT ${limit:-none} per instance, ADMISSION_WAIT ${ADMISSION_WAIT:-default}; LOG_LEVEL=$LOG_LEVEL, TIMELINE=$TIMELINE;" \
  "load generator's niceness $LOADGEN_NICE"
stolen() { jq -r '.cpu_cores.stolen // "?"' <<<"$1"; }
echo "  cores stolen by the hypervisor: $(stolen "$base") at 8 clients, $(stolen "$capacity_run") at $CAPACITY_CLIENTS," \
  "$(stolen "$over") under overload$(jq -rn --argjson a "$base" --argjson b "$capacity_run" --argjson c "$over" \
    'if ([$a, $b, $c] | map(.cpu_cores.stolen // 0) | max) >= 0.1 then " (0.1 or more in a phase: that phase ran on a slower machine; compare with care)" else "" end')"
printf '  %-44s %s\n' "HTTP p99 at 8 clients" "$(get "$base" '.http_ms.p99') ms ($(get "$base" '.orders_per_s') orders/s)"
printf '  %-44s %s\n' "closed-loop orders/s at $CAPACITY_CLIENTS clients" "$(get "$capacity_run" '.orders_per_s') (HTTP p99 $(get "$capacity_run" '.http_ms.p99') ms)"
printf '  %-44s %s\n' "capacity (best closed loop)" "$capacity orders/s"
printf '  %-44s %s\n' "offered" "$rate orders/s for ${OVERLOAD_SECONDS}s ($(get "$over" '.requests') requests; loadgen's own bound skipped $(get "$over" '.errors.overload // 0'))"
echo
printf '  %-44s %-34s %s\n' "under ${FACTOR}x overload" "measured" "goal"
share=$(jq -rn --argjson o "$over" --argjson c "$capacity" '100 * $o.orders_per_s / $c | . * 10 | round / 10')
printf '  %-44s %-34s %s\n' "placed orders/s, share of capacity" "$(get "$over" '.orders_per_s') = $share %" ">= 95 %"
ratio=$(jq -rn --argjson o "$over" --argjson b "$base" 'if $b.http_ms.p99 > 0 then $o.admitted_ms.p99 / $b.http_ms.p99 | . * 10 | round / 10 else "-" end')
printf '  %-44s %-34s %s\n' "HTTP p99 of admitted requests" "$(get "$over" '.admitted_ms.p99') ms = ${ratio} x the 8-client p99" "<= 3 x"
printf '  %-44s %-34s %s\n' "  (p50, max)" "$(get "$over" '.admitted_ms.p50') ms, $(get "$over" '.admitted_ms.max') ms" ""
printf '  %-44s %-34s %s\n' "refused 503 overloaded: count, p99" "$(get "$over" '.refused'), p99 $(get "$over" '.refused_ms.p99') ms" "p99 <= 10 ms"
printf '  %-44s %-34s %s\n' "  load generator's own lag (due -> sent), p99" "$(get "$over" '.send_lag_ms.p99') ms (in every latency above)" ""
printf '  %-44s %-34s %s\n' "  refused, from sent to answered: p50, p99" "$(get "$over" '.refused_from_sent_ms.p50') ms, $(get "$over" '.refused_from_sent_ms.p99') ms" ""
printf '  %-44s %-34s %s\n' "answered 500 (local transaction timed out)" "$(get "$over" '.errors.http_500 // 0') ($timeouts timeouts in the logs)" "0"
printf '  %-44s %-34s %s\n' "other errors" "$(get "$over" '.errors | del(.http_503_overloaded, .http_500, .overload) | to_entries | map("\(.key)=\(.value)") | join(" ") | if . == "" then "none" else . end')" ""
printf '  %-44s %-34s %s\n' "CPU cores used under overload" "$(get "$over" '.cpu_cores | to_entries | map("\(.key) \(.value)") | join(", ")')" ""
printf '  %-44s %-34s %s\n' "checker: missing, phantom" "${missing:-?}, ${phantom:-?}" "0, 0"
echo
echo "$check"
exit "$verdict"
