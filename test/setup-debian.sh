#!/bin/sh
# Makes sure the Debian packages some tests need are installed: called with pairs of a shell
# test that says whether a package's tool is there and the package that brings it, e.g.
#   setup-debian.sh 'test -x /usr/bin/chromium' chromium
# Idempotent and quiet: does nothing when every test passes; otherwise, as root, installs the
# missing packages with apt-get (without their Recommends). Exits non-zero, with one line on
# stderr, when it cannot.
set -u
missing=""
while [ $# -ge 2 ]; do
  sh -c "$1" >/dev/null 2>&1 || missing="$missing $2"
  shift 2
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup-debian: missing$missing, and installing it needs root (apt-get install$missing)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-debian: missing$missing, and there is no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# DPkg::Lock::Timeout waits for another apt-get that holds the lock instead of failing at once.
# shellcheck disable=SC2086
if ! { apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $missing; } >"$log" 2>&1; then
  echo "setup-debian: apt-get could not install$missing: $(tail -n 1 "$log")" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
