#!/usr/bin/env bash
# Runs segmentd from a fresh clone: installs what is missing (librdkafka-dev, pkg-config),
# builds the release binary, and runs it. With no arguments it runs the daemon on the embedded
# broker (`segmentd run --brokers embedded`); any arguments are passed on: `scripts/segmentd.sh demo`,
# `scripts/segmentd.sh replay events.ndjson --until 2026-06-01T00:00:00Z`, `scripts/segmentd.sh run --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
swift build -c release --product segmentd >&2
[ $# -gt 0 ] || set -- run --brokers embedded
exec .build/release/segmentd "$@"
