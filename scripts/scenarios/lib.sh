#!/usr/bin/env bash
# Shared by the scenario scripts: talk to a running suite with curl, print every request and
# answer, read the services' metrics to show what the broker did, and judge the end state.
#
#   SUITE=local    (default) the suite of scripts/suite-up.sh; a crashed service is restarted by
#                  running suite-up.sh again, as an operator would
#   SUITE=compose  docker compose up; a crashed service is restarted by its restart policy
#   ORDER_URL (http://127.0.0.1:8081), ORDER_URL_2 (http://127.0.0.1:8083), CART_URL (http://127.0.0.1:8082)
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) fails the script too

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SUITE=${SUITE:-local}
ORDER_URL=${ORDER_URL:-http://127.0.0.1:8081}
ORDER_URL_2=${ORDER_URL_2:-http://127.0.0.1:8083}
CART_URL=${CART_URL:-http://127.0.0.1:8082}
HAVE_JQ=false
command -v jq >/dev/null && HAVE_JQ=true

STATUS= BODY=
B=$'\e[1m' N=$'\e[0m'
[ -t 1 ] || { B= N=; }

title() { printf '\n%s=== %s ===%s\n' "$B" "$*" "$N"; }
say() { printf '\n%s# %s%s\n' "$B" "$*" "$N"; }
fail() { printf '\nSCENARIO FAILED: %s\n' "$*" >&2; exit 1; }

pretty() {
  if $HAVE_JQ && jq . <<<"$1" 2>/dev/null; then return; fi
  printf '%s\n' "$1"
}

# req METHOD URL [BODY [HEADER...]]: sets STATUS ("000" if no answer) and BODY.
req() {
  local method=$1 url=$2 body=${3:-} args=(-sS -o /tmp/scenario.$$ -w '%{http_code}' -X "$1" --max-time 60)
  shift 2; [ $# -gt 0 ] && shift
  printf '\n-> %s %s' "$method" "$url"
  for h in "$@"; do printf '  [%s]' "$h"; args+=(-H "$h"); done
  printf '\n'
  if [ -n "$body" ]; then
    printf '   %s\n' "$body"
    args+=(-H 'Content-Type: application/json' --data "$body")
  fi
  STATUS=$(curl "${args[@]}" "$url" 2>/dev/null) || STATUS=000
  BODY=$(cat /tmp/scenario.$$ 2>/dev/null || true)
  rm -f /tmp/scenario.$$
  if [ "$STATUS" = 000 ]; then
    printf '<- no answer: the connection died with the process\n'
  else
    printf '<- %s\n' "$STATUS"
    [ -n "$BODY" ] && pretty "$BODY" | sed 's/^/   /'
  fi
  return 0
}

json() { # json <field path, e.g. .order.order_id>
  if $HAVE_JQ; then jq -r "$1 // empty" <<<"$BODY"; else
    { grep -o "\"${1##*.}\":\"[^\"]*\"" <<<"$BODY" || true; } | head -n1 | cut -d'"' -f4
  fi
}

# metric URL SERIES: the value of one Prometheus series (0 if the service has not counted it yet).
# An unreachable service fails the script: assign the value to a variable (n=$(metric ...)) so
# that set -e sees the failure.
metric() {
  local body
  body=$(curl -fsS --max-time 5 "$1/metrics" 2>/dev/null) || fail "$1/metrics did not answer"
  awk -v s="$2" '$1 == s { v += $2 } END { print v + 0 }' <<<"$body"
}

# wait_metric URL SERIES MIN SECONDS: waits until the series reaches MIN, and prints its value.
wait_metric() {
  local v
  for _ in $(seq 1 $(($4 * 5))); do
    v=$(metric "$1" "$2")
    if [ "$v" -ge "$3" ]; then echo "$v"; return 0; fi
    sleep 0.2
  done
  fail "$1: $2 = $v, want at least $3 within $4 s"
}

# expect STATUS: the last answer's status must be STATUS.
expect() { [ "$STATUS" = "$1" ] || fail "answered $STATUS, want $1"; }

# expect_orders N: the last answer (GET /orders?user_id=...) is 200 and lists exactly N orders.
expect_orders() {
  expect 200
  grep -q '"orders":\[' <<<"$BODY" || fail "no orders array in the answer: $BODY"
  local n
  n=$({ grep -o '"order_id":' <<<"$BODY" || true; } | wc -l)
  [ "$n" -eq "$1" ] || fail "$n orders listed, want $1"
}

# wait_step ORDER_ID PATTERN SECONDS: waits until the order's timeline (GET /orders/{id}/timeline,
# written in batches) has a step matching the extended regular expression PATTERN, e.g.
# '"step":"check_back","detail":"commit:'.
wait_step() {
  local body
  for _ in $(seq 1 $(($3 * 5))); do
    body=$(curl -fsS --max-time 5 "$ORDER_URL/orders/$1/timeline" 2>/dev/null || true)
    if grep -Eq "$2" <<<"$body"; then return 0; fi
    sleep 0.2
  done
  fail "the timeline of order $1 has no step matching $2 after $3 s: $body"
}

new_user() { echo "scn-$(date +%s)-$RANDOM"; }

fill_cart() { # fill_cart USER: A-1 x5, B-2 x2
  req PUT "$CART_URL/carts/$1/items/A-1" '{"quantity":5}' >/dev/null
  req PUT "$CART_URL/carts/$1/items/B-2" '{"quantity":2}' >/dev/null
  req GET "$CART_URL/carts/$1"
}

ORDER_BODY() { printf '{"user_id":"%s","items":[{"sku":"A-1","quantity":2,"unit_price_cents":1999}]}' "$1"; }

qty() { # qty USER SKU: the cart quantity (0 when the line is gone; "unreadable" if the cart is)
  local body
  body=$(curl -fsS --max-time 5 "$CART_URL/carts/$1" 2>/dev/null) && grep -q '"items":' <<<"$body" || { echo unreadable; return 0; }
  if $HAVE_JQ; then jq -r --arg s "$2" '[.items[] | select(.sku == $s) | .quantity][0] // 0' <<<"$body"; else
    grep -o "\"sku\":\"$2\",\"quantity\":[0-9]*" <<<"$body" | grep -o '[0-9]*$' || echo 0
  fi
}

wait_qty() { # wait_qty USER SKU WANT SECONDS: prints the time it took
  local start=$SECONDS
  for _ in $(seq 1 $(($4 * 5))); do
    if [ "$(qty "$1" "$2")" = "$3" ]; then echo "$((SECONDS - start))"; return 0; fi
    sleep 0.2
  done
  fail "cart of $1: $2 = $(qty "$1" "$2"), want $3 after $4 s"
}

stays_qty() { # stays_qty USER SKU WANT SECONDS: the cart does not change for a while
  for _ in $(seq 1 $(($4 * 2))); do
    [ "$(qty "$1" "$2")" = "$3" ] || fail "cart of $1: $2 changed to $(qty "$1" "$2"), want it to stay $3"
    sleep 0.5
  done
}

wait_ready() { # wait_ready URL SECONDS
  for _ in $(seq 1 $(($2 * 2))); do
    curl -fsS -o /dev/null --max-time 2 "$1/readyz" 2>/dev/null && return 0
    sleep 0.5
  done
  fail "$1 not ready after $2 s"
}

restart_crashed() { # restart_crashed URL: bring back a service that crashed on purpose
  if [ "$SUITE" = compose ]; then
    say "docker compose restarts the crashed container (restart: unless-stopped)"
  else
    say "restarting it, as an operator would: scripts/suite-up.sh"
    local out="${TMPDIR:-/tmp}/scenario-restart.$$.log"
    if ! "$ROOT/scripts/suite-up.sh" >"$out" 2>&1; then
      tail -n 20 "$out" >&2
      fail "suite-up.sh could not restart the suite"
    fi
    rm -f "$out"
  fi
  wait_ready "$1" 120
}

checkbacks() { # checkbacks ANSWER: check-backs answered so far by both order-service instances
  local a b
  a=$(metric "$ORDER_URL" "order_checkbacks_total{answer=\"$1\"}")
  b=$(metric "$ORDER_URL_2" "order_checkbacks_total{answer=\"$1\"}")
  echo $((a + b))
}

# wait_checkbacks ANSWER BEFORE SECONDS: waits until both instances together have answered more
# check-backs ANSWER than BEFORE, and prints how many more.
wait_checkbacks() {
  local n
  for _ in $(seq 1 $(($3 * 5))); do
    n=$(checkbacks "$1")
    if [ "$n" -gt "$2" ]; then echo $((n - $2)); return 0; fi
    sleep 0.2
  done
  fail "no check-back answered $1 within $3 s"
}

verdict() {
  say "the invariant checker reads both databases"
  if [ "$SUITE" = compose ]; then
    ORDERS_DSN=${ORDERS_DSN:-order_svc:${ORDER_DB_PASSWORD:-order-demo-password}@tcp(127.0.0.1:13306)/orders} \
      CARTS_DSN=${CARTS_DSN:-cart_svc:${CART_DB_PASSWORD:-cart-demo-password}@tcp(127.0.0.1:13306)/carts} \
      go -C "$ROOT/scripts/e2e" run ./cmd/checkinv -wait 30s || fail "invariants violated"
  else
    command -v go >/dev/null || fail "go is not installed: the invariant checker cannot run, so nothing is proven"
    go -C "$ROOT/scripts/e2e" run ./cmd/checkinv -wait 30s || fail "invariants violated"
  fi
}

# use_consumer MODE: restart cart-service with CONSUMER=MODE, as an operator would, and wait until
# it is ready and reports that mode. The modes other than correct are wrong on purpose
# (cart-service/internal/cart/wrong.go) and need FAULT_INJECTION=on; a crashed cart-service
# restarted later by restart_crashed keeps MODE.
use_consumer() {
  export CONSUMER=$1
  say "cart-service restarts with CONSUMER=$1"
  if [ "$SUITE" = compose ]; then
    docker compose -f "$ROOT/docker-compose.yml" up -d --no-deps cart-service >/dev/null ||
      fail "docker compose could not restart cart-service"
  else
    local pidfile="${SUITE_DIR:-$ROOT/.infra/suite}/cart-service.pid" pid out="${TMPDIR:-/tmp}/scenario-consumer.$$.log"
    if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && fail "cart-service (pid $pid) did not stop within 60 s of SIGTERM"
    fi
    if ! "$ROOT/scripts/suite-up.sh" >"$out" 2>&1; then
      tail -n 20 "$out" >&2
      fail "suite-up.sh could not start cart-service with CONSUMER=$1"
    fi
    rm -f "$out"
  fi
  wait_ready "$CART_URL" 120
  local mode
  mode=$(metric "$CART_URL" "cart_consumer_mode{mode=\"$1\"}")
  [ "$mode" = 1 ] || fail "cart-service does not report cart_consumer_mode{mode=\"$1\"} 1"
  echo "cart_consumer_mode{mode=\"$1\"} 1"
}

# wait_crash URL SECONDS: waits until the service at URL no longer answers (a crash fault point).
wait_crash() {
  for _ in $(seq 1 $(($2 * 5))); do
    curl -fsS -o /dev/null --max-time 1 "$1/healthz" 2>/dev/null || return 0
    sleep 0.2
  done
  fail "$1 still answers $2 s later: it did not crash"
}

# build_checker: builds the invariant checker once per script (go run would add a line of its own
# to a non-zero exit) into CHECKINV_BIN, removed when the script ends.
build_checker() {
  [ -n "${CHECKINV_BIN:-}" ] && return 0
  command -v go >/dev/null || fail "go is not installed: the invariant checker cannot run, so nothing is proven"
  CHECKINV_BIN=$(mktemp "${TMPDIR:-/tmp}/checkinv.XXXXXX")
  trap 'rm -f "$CHECKINV_BIN"' EXIT
  go -C "$ROOT/scripts/e2e" build -o "$CHECKINV_BIN" ./cmd/checkinv || fail "could not build the invariant checker"
}

# checker WAIT USER...: the invariant checker on the orders and carts of these users only (a wrong
# way leaves its damage in the databases; the users keep each run apart). Prints the report; its
# exit status is the checker's (0 all hold, 1 violated, 2 could not check).
checker() {
  local wait=$1 users
  shift
  users=$(IFS=,; echo "$*")
  build_checker
  if [ "$SUITE" = compose ]; then
    ORDERS_DSN=${ORDERS_DSN:-order_svc:${ORDER_DB_PASSWORD:-order-demo-password}@tcp(127.0.0.1:13306)/orders} \
      CARTS_DSN=${CARTS_DSN:-cart_svc:${CART_DB_PASSWORD:-cart-demo-password}@tcp(127.0.0.1:13306)/carts} \
      "$CHECKINV_BIN" -wait "$wait" -users "$users"
  else
    "$CHECKINV_BIN" -wait "$wait" -users "$users"
  fi
}

# verdict_for USER...: the checker, on these users only, must find every invariant holding.
verdict_for() {
  say "the invariant checker reads both databases (users $*)"
  build_checker
  checker 30s "$@" || fail "invariants violated"
}

# verdict_catches ORDER_ID SECTION DETAIL WAIT USER...: the checker, on these users only, must
# report SECTION (an extended regular expression matching an invariant's line, e.g. '^I1 ')
# VIOLATED, with an offender line naming ORDER_ID and matching DETAIL ('' for any).
verdict_catches() {
  local id=$1 section=$2 detail=$3 wait=$4 out rc=0
  shift 4
  say "the invariant checker reads both databases (users $*)"
  build_checker
  out=$(checker "$wait" "$@") || rc=$?
  printf '%s\n' "$out"
  [ "$rc" = 1 ] || fail "the checker exited $rc, want 1 (a violation)"
  awk -v s="$section" -v id="$id" -v d="$detail" '
    /^[^ ]/ { in_s = ($0 ~ s && $0 ~ /VIOLATED/) }
    in_s && /^    / && index($0, id) && $0 ~ d { found = 1 }
    END { exit !found }' <<<"$out" ||
    fail "the checker does not name order $id under $section${detail:+ as $detail}"
  printf '\n%sCAUGHT: the checker names order %s%s\n' "$B" "$id" "$N"
}
