#!/usr/bin/env bash
# Produces realistic synthetic B2B traffic to any broker (segmentd loadgen):
#   scripts/loadgen.sh --brokers HOST:9092 [--rate 1000] [--seconds 60] [--contacts 10000] [--kafka sasl.mechanism=…]
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/segmentd.sh loadgen "$@"
