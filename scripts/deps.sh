#!/usr/bin/env bash
# Installs what a clean Debian machine lacks to build and test segmentd: the librdkafka C
# library (with its mock cluster) and pkg-config. Idempotent; needs root or sudo when
# something is missing. Swift itself is expected at /opt/swift or on PATH. With --browser (the
# test setup), also Debian's chromium: the report's and the console's tests render their pages headless.
set -euo pipefail
need=()
if [ "${1:-}" = "--browser" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
dpkg -s librdkafka-dev >/dev/null 2>&1 || need+=(librdkafka-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "segmentd: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  echo "export PATH=/opt/swift/usr/bin:\$PATH" >&2
fi
