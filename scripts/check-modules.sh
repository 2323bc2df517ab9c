#!/usr/bin/env bash
# The tests build inside the workspace (go.work), where the module graph of every module decides
# dependency versions; the images build each service from its own go.mod (GOWORK=off). This check
# fails when the two could disagree, so the binary in an image is the binary the tests ran:
#   1. `go work sync` would change a go.mod or go.sum (run on a copy of the tree);
#   2. `go mod tidy` would change a module's files when it is built alone;
#   3. a service's packages and tests link a module at another version with GOWORK=off.
#
#   scripts/check-modules.sh          check (scripts/test.sh runs it)
#   scripts/check-modules.sh --fix    bring every go.mod and go.sum in line
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
modules=$(go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')

fix() {
  # tidy after sync: sync raises versions to the workspace's, tidy drops what a module alone does
  # not need; once more settles both.
  for _ in 1 2; do
    go work sync
    for m in $modules; do (cd "$m" && GOWORK=off go mod tidy); done
  done
}

if [ "${1:-}" = "--fix" ]; then
  fix
  exit 0
fi

fail() {
  echo "check-modules: $*" >&2
  echo "check-modules: run scripts/check-modules.sh --fix and commit the go.mod and go.sum files it changes" >&2
  exit 1
}

# 1. go work sync, on a copy of the tracked and new files.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files -co --exclude-standard -z -- go.work go.work.sum '*.go' '*go.mod' '*go.sum' '*.sql' '*.html' '*.js' '*.css' |
  xargs -0 cp --parents -t "$tmp" 2>/dev/null || true
(cd "$tmp" && go work sync)
for m in $modules; do
  for f in go.mod go.sum; do
    if ! cmp -s "$m/$f" "$tmp/$m/$f"; then
      diff -u "$m/$f" "$tmp/$m/$f" >&2 || true
      fail "go work sync would change $m/$f"
    fi
  done
done

# 2. each module tidy on its own.
for m in $modules; do
  if ! (cd "$m" && GOWORK=off go mod tidy -diff >&2); then
    fail "go mod tidy (GOWORK=off) would change $m"
  fi
done

# 3. the modules each service links, in the workspace and alone (the local rmqtx/pkg module has
# no version in a workspace and v0.0.0 through the replace directive: it is the same source).
for svc in order-service cart-service; do
  list() { (cd "$svc" && go list -deps -test -f '{{with .Module}}{{.Path}} {{.Version}}{{end}}' ./... | grep -v '^rmqtx/' | sort -u); }
  if ! diff -u <(list) <(GOWORK=off list) >&2; then
    fail "$svc links other module versions with GOWORK=off than in the workspace"
  fi
done
echo "check-modules: workspace and GOWORK=off builds use the same module versions" >&2
