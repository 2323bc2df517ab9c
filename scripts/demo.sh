#!/usr/bin/env bash
# A tour of the suite with curl: fill a cart, order part of it, and watch the cart change once
# cart-service has consumed the order's OrderCreated event (a RocketMQ transactional message).
#
#   docker compose up --build -d && scripts/demo.sh
#
# Works against any running suite (compose or local processes):
#   ORDER_URL           order-service, default http://127.0.0.1:8081
#   CART_URL            cart-service,  default http://127.0.0.1:8082
#   DEMO_READY_SECONDS  how long to wait for both services to be ready, default 120
#   DEMO_WAIT_SECONDS   how long to wait for the cart to change, default 30
#
# Every run uses a fresh user, so it can be repeated. Prints each request and answer (pretty with
# jq when installed) and exits non-zero if a step fails or the cart never changes.
# Needs bash and curl; jq is optional.
set -euo pipefail

ORDER_URL=${ORDER_URL:-http://127.0.0.1:8081}
CART_URL=${CART_URL:-http://127.0.0.1:8082}
READY_SECONDS=${DEMO_READY_SECONDS:-120}
WAIT_SECONDS=${DEMO_WAIT_SECONDS:-30}
ORDER_URL=${ORDER_URL%/}
CART_URL=${CART_URL%/}

USER_ID="demo-$(date +%s)-$RANDOM"

command -v curl >/dev/null || { echo "demo.sh: curl is required" >&2; exit 2; }
HAVE_JQ=false
command -v jq >/dev/null && HAVE_JQ=true

BODY_FILE=$(mktemp)
trap 'rm -f "$BODY_FILE"' EXIT

# Set by call: the status code and body of the last answer.
STATUS=
BODY=

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\ndemo.sh: FAILED: %s\n' "$*" >&2; exit 1; }

show_json() {
	if $HAVE_JQ && jq . <<<"$1" 2>/dev/null; then
		return
	fi
	printf '%s\n' "$1"
}

# call METHOD URL [JSON_BODY]: prints the request and the answer, sets STATUS and BODY.
# Fails only when the server cannot be reached; callers check STATUS.
call() {
	local method=$1 url=$2 data=${3-}
	local args=(-sS -o "$BODY_FILE" -w '%{http_code}' -X "$method" --max-time 30)
	printf -- '-> %s %s\n' "$method" "$url"
	if [ -n "$data" ]; then
		show_json "$data" | sed 's/^/   /'
		args+=(-H 'Content-Type: application/json' --data "$data")
	fi
	STATUS=$(curl "${args[@]}" "$url") || fail "$method $url: no answer (is the suite running?)"
	BODY=$(cat "$BODY_FILE")
	printf -- '<- %s\n' "$STATUS"
	show_json "$BODY" | sed 's/^/   /'
}

# expect CODE...: the last answer's status must be one of them.
expect() {
	local code
	for code in "$@"; do
		[ "$STATUS" = "$code" ] && return 0
	done
	fail "expected HTTP $*, got $STATUS"
}

# json_string FIELD: the first string value of FIELD in BODY (jq-free, enough for our answers).
json_string() {
	sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" <<<"$BODY" | head -n1
}

# compact: BODY without whitespace, for jq-free comparisons.
compact() { tr -d ' \t\r\n' <<<"$BODY"; }

# cart_quantity SKU: the quantity of SKU in the cart in BODY, 0 when it has no such line.
cart_quantity() {
	local q
	if $HAVE_JQ; then
		q=$(jq -r --arg sku "$1" '[.items[]? | select(.sku == $sku) | .quantity][0] // 0' <<<"$BODY")
	else
		q=$(compact | sed -n "s/.*\"sku\":\"$1\",\"quantity\":\([0-9]*\).*/\1/p")
	fi
	echo "${q:-0}"
}

wait_ready() {
	local name=$1 url=$2 deadline=$((SECONDS + READY_SECONDS))
	printf 'waiting for %s (%s/readyz) ' "$name" "$url"
	until curl -fsS -o /dev/null --max-time 5 "$url/readyz" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo
			fail "$name at $url not ready after ${READY_SECONDS}s"
		fi
		printf '.'
		sleep 2
	done
	echo ' ready'
}

step "0. Both services ready? (user for this run: $USER_ID)"
wait_ready order-service "$ORDER_URL"
wait_ready cart-service "$CART_URL"

step "1. Fill the cart: 3 x A-1 and 1 x B-2"
call PUT "$CART_URL/carts/$USER_ID/items/A-1" '{"quantity":3}'
expect 200
call PUT "$CART_URL/carts/$USER_ID/items/B-2" '{"quantity":1}'
expect 200

step "2. The cart before ordering"
call GET "$CART_URL/carts/$USER_ID"
expect 200
CART_BEFORE=$(compact)

step "3. Order 2 x A-1: order-service writes the order and publishes OrderCreated in one transaction"
call POST "$ORDER_URL/orders" "{\"user_id\":\"$USER_ID\",\"items\":[{\"sku\":\"A-1\",\"quantity\":2,\"unit_price_cents\":1999}]}"
# 201: durable and announced. 202: the outcome was unknown (pending); the broker's check-back
# settles it within seconds, and the cart tells us which way.
expect 201 202
ORDER_ID=$(json_string order_id)
[ -n "$ORDER_ID" ] || fail "no order_id in the answer"
[ "$STATUS" = 202 ] && echo "   (pending: the transaction check-back will decide)"

step "4. Wait up to ${WAIT_SECONDS}s for cart-service to consume the event"
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
	STATUS=$(curl -sS -o "$BODY_FILE" -w '%{http_code}' --max-time 10 "$CART_URL/carts/$USER_ID") ||
		fail "GET $CART_URL/carts/$USER_ID: no answer"
	BODY=$(cat "$BODY_FILE")
	expect 200
	if [ "$(compact)" != "$CART_BEFORE" ]; then
		break
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		fail "the cart did not change within ${WAIT_SECONDS}s of order $ORDER_ID"
	fi
	sleep 1
done
call GET "$CART_URL/carts/$USER_ID"
expect 200
# Decrement, don't delete: A-1 goes from 3 to 1, and B-2 (not ordered) stays.
a1=$(cart_quantity A-1) b2=$(cart_quantity B-2)
if [ "$a1" != 1 ] || [ "$b2" != 1 ]; then
	fail "the cart changed, but to $a1 x A-1 and $b2 x B-2 instead of 1 and 1"
fi
echo "   A-1 went from 3 to 1; B-2 was left alone."

step "5. Read the order back"
call GET "$ORDER_URL/orders/$ORDER_ID"
expect 200

step "6. The user's orders, newest first"
call GET "$ORDER_URL/orders?user_id=$USER_ID"
expect 200
case "$BODY" in
*"$ORDER_ID"*) ;;
*) fail "order $ORDER_ID is not in the user's list" ;;
esac

printf '\ndemo.sh: OK (user %s, order %s)\n' "$USER_ID" "$ORDER_ID"
