#!/usr/bin/env bash
# Runs every test of the project against real servers: starts MariaDB and RocketMQ with
# scripts/infra-up.sh (installing them first on a fresh machine) and makes sure Chromium is there
# for the browser test (scripts/install-chromium.sh), then gofmt, go vet and
# go test -race over every module, integration and end-to-end tests included.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -run TestName   extra arguments go to go test
#
# The servers are left running for the next run; scripts/infra-down.sh stops them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

"$ROOT/scripts/infra-up.sh"
# The browser test of the web page drives a headless Chromium.
"$ROOT/scripts/install-chromium.sh"
# shellcheck disable=SC1091
source "${INFRA_DIR:-$ROOT/.infra}/env"

modules=(./pkg/... ./order-service/... ./cart-service/... ./scripts/e2e/... ./scripts/composetest/...)

echo "test.sh: gofmt" >&2
unformatted=$(gofmt -l pkg order-service cart-service scripts)
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "test.sh: module versions (workspace = images)" >&2
"$ROOT/scripts/check-modules.sh"

echo "test.sh: go vet" >&2
go vet "${modules[@]}"

# The end-to-end tests run the services as binaries; build them once, the way the images are
# (scripts/build-services.sh) plus the race detector, for both runs below.
E2E_BIN=$(mktemp -d)
beside_pid=
beside_log=
cleanup() {
  # Interrupted while the second go test runs: stop it and what it started (its own process group)
  # before its binaries are deleted.
  if [ -n "$beside_pid" ] && kill -0 "$beside_pid" 2>/dev/null; then
    kill -TERM -- "-$beside_pid" 2>/dev/null || true
    wait "$beside_pid" 2>/dev/null || true
  fi
  rm -rf "$E2E_BIN"
  [ -z "$beside_log" ] || rm -f "$beside_log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "test.sh: build the services for the end-to-end tests" >&2
"$ROOT/scripts/build-services.sh" "$E2E_BIN" -race
export E2E_BIN

if [ $# -gt 0 ]; then
  echo "test.sh: go test -race $*" >&2
  go test -race -count=1 -timeout 30m "$@" "${modules[@]}"
  exit 0
fi

# Three end-to-end tests run in a second go test of scripts/e2e, beside everything else: the
# cluster test, which brings every server of its own (NameServers, brokers, MariaDB on ports of
# their own), the wrong placements' scenario scripts, which run a suite of their own (ports,
# databases, topic, groups) on the shared servers, and short runs of the measurement scripts
# (bench.sh, overload.sh, timeline-cost.sh: processes, databases and topics of their own). The
# first two mostly wait for processes to die, restart or be checked back, not on the CPU. That run
# starts no suite broker (E2E_BROKER=off) and keeps its logs apart (E2E_LOGS).
beside='TestClusterKillEverythingUnderLoad|TestWrongScenarioScripts|TestMeasurementScripts'
beside_log=$(mktemp)
echo "test.sh: go test -race ($beside beside the rest; their output follows)" >&2
E2E_BROKER=off E2E_LOGS="$ROOT/.infra/e2e-logs-beside" \
  setsid go test -race -count=1 -timeout 30m -run "^($beside)\$" ./scripts/e2e/ >"$beside_log" 2>&1 &
beside_pid=$!

status=0
go test -race -count=1 -timeout 30m -skip "^($beside)\$" "${modules[@]}" || status=$?
beside_status=0
wait "$beside_pid" || beside_status=$?
echo "test.sh: $beside:" >&2
beside_pid=
cat "$beside_log"
if [ "$status" -ne 0 ] || [ "$beside_status" -ne 0 ]; then
  echo "test.sh: FAIL (go test exit $status, $beside exit $beside_status)" >&2
  exit 1
fi
echo "test.sh: every test passed" >&2
