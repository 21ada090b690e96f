#!/usr/bin/env bash
# Follows the transitions topic with kcat and prints one readable line per transition:
#   scripts/tail-transitions.sh BROKERS [TOPIC]      (default topic: segment-transitions)
# Needs kcat (apt-get install kcat) and jq (apt-get install jq).
set -euo pipefail
brokers=${1:?usage: $0 BROKERS [TOPIC]}
topic=${2:-segment-transitions}
for tool in kcat jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$0: $tool is required (apt-get install $tool)" >&2; exit 2; }
done
kcat -b "$brokers" -t "$topic" -C -o end -u -q -f '%s\n' |
  jq -r --unbuffered '.data | "\(.at)  \(.contact_id)  \(.group): \(.from // "(none)") -> \(.to // "(none)")  (\(.cause.kind)\(if .cause.event_type then " " + .cause.event_type else "" end))"'
