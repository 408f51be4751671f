#!/bin/sh
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests (test/web/).
# Idempotent and quiet: does nothing when it is already there; otherwise, as root, installs the
# `chromium` package with apt-get. Exits non-zero (with one line on stderr) when it cannot.
set -u
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup-chromium: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-chromium: $CHROMIUM is missing and there is no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# Without its Recommends (printer tools, upower, ...): the browser itself is all the tests need.
# DPkg::Lock::Timeout waits for another apt-get that holds the lock instead of failing at once.
if ! { apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends chromium; } >"$log" 2>&1; then
  echo "setup-chromium: apt-get could not install chromium: $(tail -n 1 "$log")" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
[ -x "$CHROMIUM" ] || { echo "setup-chromium: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
