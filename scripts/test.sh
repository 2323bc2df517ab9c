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

echo "test.sh: go test -race" >&2
go test -race -count=1 -timeout 30m "$@" "${modules[@]}"
