#!/bin/sh
# Makes sure the JPEG reference tools are there for test/jpeg.test.ts: cjpeg and djpeg (Debian's
# libjpeg-turbo-progs: libjpeg-turbo, the library OpenCV's imread decodes JPEGs with) and ImageMagick's
# convert (the only encoder at hand that writes CMYK JPEGs). Idempotent and quiet: does nothing when
# they are there; otherwise, as root, installs the missing packages with apt-get. Exits non-zero (with
# one line on stderr) when it cannot.
set -u
missing=""
command -v cjpeg >/dev/null 2>&1 && command -v djpeg >/dev/null 2>&1 || missing="libjpeg-turbo-progs"
# A real ImageMagick answers -version with its name; stand-ins may not.
convert -version 2>/dev/null | grep -q ImageMagick || missing="$missing imagemagick"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup-jpeg-tools: missing $missing, and installing it needs root (apt-get install $missing)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-jpeg-tools: missing $missing, and there is no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# shellcheck disable=SC2086
if ! { apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $missing; } >"$log" 2>&1; then
  echo "setup-jpeg-tools: apt-get could not install $missing: $(tail -n 1 "$log")" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
