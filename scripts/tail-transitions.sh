#!/usr/bin/env bash
# Follows the transitions topic and prints one readable line per transition (segmentd tail):
#   scripts/tail-transitions.sh BROKERS [TOPIC]      (default topic: segment-transitions)
set -euo pipefail
brokers=${1:?usage: $0 BROKERS [TOPIC]}
topic=${2:-segment-transitions}
exec bash "$(dirname "$0")/segmentd.sh" tail --brokers "$brokers" --output-topic "$topic"
