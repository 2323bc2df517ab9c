#!/usr/bin/env bash
# Stops the services started by scripts/suite-up.sh (SIGTERM: they finish in-flight requests).
# The servers keep running; scripts/infra-down.sh stops those.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE_DIR=${SUITE_DIR:-$ROOT/.infra/suite}

for name in order-service-1 order-service-2 cart-service cart-service-2; do
  pidfile="$SUITE_DIR/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "suite-down: stopping $name (pid $pid)" >&2
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "suite-down: $name still running; killing it" >&2; kill -9 "$pid"; }
  fi
  rm -f "$pidfile"
done
