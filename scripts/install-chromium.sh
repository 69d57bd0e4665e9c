#!/usr/bin/env sh
# Headless Chromium for the HTML report test (Debian's package). Needs root; does nothing otherwise,
# and the test then skips with its reason.
set -e
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not installed and no root apt-get: the HTML rendering test will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq chromium >/dev/null 2>&1 || echo "could not install chromium; HTML rendering test will skip" >&2
