#!/usr/bin/env bash
# Stops exactly what scripts/infra-up.sh started, by the process ids it recorded: brokers first (so
# they can flush), then NameServers, then MariaDB. Servers that infra-up.sh found already running and
# re-used are left alone.
#
#   scripts/infra-down.sh          stop, keep data (next infra-up.sh starts where this left off)
#   scripts/infra-down.sh --wipe   stop and delete data and logs (the RocketMQ jar cache is kept)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
wipe=no
case "${1:-}" in
  --wipe) wipe=yes ;;
  "") ;;
  *) echo "usage: $0 [--wipe]" >&2; exit 2 ;;
esac

stop() {
  # stop <name> <pidfile>: SIGTERM, wait up to 30 s, then SIGKILL.
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "infra-down: stopping $name (pid $pid)" >&2
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "infra-down: $name did not stop in 30 s; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# broker-b and the second NameServer exist only in a cluster (BROKERS=2 scripts/infra-up.sh).
stop broker-b "$INFRA_DIR/broker-b/broker.pid"
stop broker "$INFRA_DIR/broker/broker.pid"
stop namesrv-2 "$INFRA_DIR/namesrv-2/namesrv.pid"
stop namesrv "$INFRA_DIR/namesrv/namesrv.pid"
stop mariadb "$INFRA_DIR/mariadb/mariadbd.pid"

if [ "$wipe" = yes ] && [ -d "$INFRA_DIR" ]; then
  echo "infra-down: wiping data under $INFRA_DIR (keeping the jar cache)" >&2
  rm -rf "$INFRA_DIR/broker" "$INFRA_DIR/broker-b" "$INFRA_DIR/namesrv" "$INFRA_DIR/namesrv-2" "$INFRA_DIR/mariadb" "$INFRA_DIR/env" "$INFRA_DIR"/*.log
fi
