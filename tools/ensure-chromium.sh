#!/usr/bin/env bash
# Installs Debian's chromium for the report's browser test (tools/ensure-chromium.sh), once:
# nothing to do when /usr/bin/chromium exists. Needs root (or sudo) and the Debian package
# mirror; prints the browser's path on stdout, progress on stderr.
set -euo pipefail
BIN=${MS_CHROMIUM:-/usr/bin/chromium}
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ensure-chromium: $BIN is missing and installing it needs root (apt-get install chromium)" >&2; exit 1; }
  SUDO="sudo"
fi
# One installer at a time: parallel test workers may all get here.
exec 9>/tmp/ms-ensure-chromium.lock
flock -w 900 9
if [ ! -x "$BIN" ]; then
  echo "ensure-chromium: installing Debian's chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 $SUDO apt-get update -q >&2
  timeout 900 $SUDO apt-get install -y -q --no-install-recommends chromium >&2
fi
[ -x "$BIN" ] || { echo "ensure-chromium: $BIN still missing after apt-get install chromium" >&2; exit 1; }
echo "$BIN"
