#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what is missing (chromium too, for the
# report's and the console's browser tests), builds, runs `swift test`
# (engine, Kafka layer and daemon tests with the repository's own fixtures, the daemon's end to
# end through a broker), a short libFuzzer campaign over the fuzz targets (scripts/fuzz.sh all
# 15: 15 s per target, about 75 s, plus the fuzz package's build); then, when it is present
# beside the clone (as in CI), the public conformance suite (../shared/conformance, or
# $SEGMENTD_CONFORMANCE_DIR) against the built binary. A lone clone needs nothing beside it:
# the suite's absence is reported, not a failure. A fuzz finding fails the run after the conformance suite has run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --browser
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
swift build --build-tests
swift test --skip-build
fuzz_status=0
bash scripts/fuzz.sh all "${SEGMENTD_FUZZ_SECONDS:-15}" || fuzz_status=$?
conf=${SEGMENTD_CONFORMANCE_DIR:-../shared/conformance}
if [ -x "$conf/run.sh" ] || [ -f "$conf/run.sh" ]; then
  bash "$conf/run.sh" .build/debug/segmentd all
elif [ -n "${SEGMENTD_CONFORMANCE_DIR:-}" ]; then
  echo "conformance suite not found at $conf (SEGMENTD_CONFORMANCE_DIR is set)" >&2
  exit 1
else
  echo "conformance suite not present at $conf: skipped (the project's own tests above passed; set SEGMENTD_CONFORMANCE_DIR to run it)"
fi
if [ "$fuzz_status" -ne 0 ]; then
  echo "scripts/test.sh: the fuzz targets found something (scripts/fuzz.sh, Fuzz/findings/)" >&2
  exit "$fuzz_status"
fi
