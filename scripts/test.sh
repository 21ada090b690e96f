#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what is missing, builds, runs `swift test`
# (engine, Kafka layer and daemon tests, the daemon's end to end through a broker), then the
# public conformance suite (../shared/conformance) against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
swift build --build-tests
swift test --skip-build
conf=${SEGMENTD_CONFORMANCE_DIR:-../shared/conformance}
if [ -x "$conf/run.sh" ] || [ -f "$conf/run.sh" ]; then
  bash "$conf/run.sh" .build/debug/segmentd all
else
  echo "conformance suite not found at $conf (set SEGMENTD_CONFORMANCE_DIR)" >&2
  exit 1
fi
