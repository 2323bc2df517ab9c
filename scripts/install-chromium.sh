#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the browser test of the web page
# (scripts/e2e/browser_test.go) drives it headless. Safe to run again: it does nothing when
# chromium is there.
#
# Environment (optional):
#   CHROMIUM   the browser to look for (default: /usr/bin/chromium)
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: $CHROMIUM is missing and there is no apt-get; install Chromium and set CHROMIUM to it" >&2
  exit 1
fi
echo "install-chromium: installing Debian's chromium (for the browser test)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version >&2
