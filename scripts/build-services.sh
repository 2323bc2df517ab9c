#!/usr/bin/env bash
# Builds order-service and cart-service into a folder the way their Dockerfiles do: each from its
# own go.mod (GOWORK=off), static (CGO_ENABLED=0), -trimpath. So the suite, the benchmark and the
# end-to-end tests run the binary the image ships, with the same dependency versions;
# scripts/check-modules.sh (run by scripts/test.sh) keeps those versions equal to the workspace's.
#
#   scripts/build-services.sh OUT_DIR          the image build
#   scripts/build-services.sh OUT_DIR -race    the same, with the race detector (which needs cgo)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: build-services.sh OUT_DIR [-race]}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cgo=0
flags=(-trimpath)
if [ "${2:-}" = "-race" ]; then
  cgo=1
  flags+=(-race)
fi
for svc in order-service cart-service; do
  (cd "$ROOT/$svc" && GOWORK=off CGO_ENABLED=$cgo go build "${flags[@]}" -o "$out/$svc" "./cmd/$svc")
done
