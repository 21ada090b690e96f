#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what is missing, builds, runs `swift test`
# (engine, Kafka layer and daemon tests with the repository's own fixtures, the daemon's end to
# end through a broker); then, when it is present beside the clone (as in CI), the public
# conformance suite (../shared/conformance, or $SEGMENTD_CONFORMANCE_DIR) against the built
# binary. A lone clone needs nothing beside it: the suite's absence is reported, not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
swift build --build-tests
swift test --skip-build
conf=${SEGMENTD_CONFORMANCE_DIR:-../shared/conformance}
if [ -x "$conf/run.sh" ] || [ -f "$conf/run.sh" ]; then
  bash "$conf/run.sh" .build/debug/segmentd all
elif [ -n "${SEGMENTD_CONFORMANCE_DIR:-}" ]; then
  echo "conformance suite not found at $conf (SEGMENTD_CONFORMANCE_DIR is set)" >&2
  exit 1
else
  echo "conformance suite not present at $conf: skipped (the project's own tests above passed; set SEGMENTD_CONFORMANCE_DIR to run it)"
fi
