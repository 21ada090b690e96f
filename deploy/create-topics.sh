#!/usr/bin/env bash
# Creates segmentd's topics on a real Kafka cluster with the Kafka CLI tools.
#   BOOTSTRAP=kafka:9092 PARTITIONS=12 REPLICATION=3 deploy/create-topics.sh
# The changelog must have the same partition count as the input (state of input partition p
# lives in changelog partition p) and must be compacted (only the latest state per contact is
# needed; compaction keeps restore time proportional to contacts, not to history).
# The repartition topic (repartition: auto, the default) has the input's partition count too;
# its name is GROUP_ID-INPUT_TOPIC-repartition unless repartition_topic is set. It is read once,
# soon after it is written: keep it a few days (delete policy), like Kafka Streams' own.
# The instances topic (GROUP_ID-instances unless instances_topic is set) holds one small record per
# running instance (its partitions and HTTP address) so any instance can forward a contact query
# to the owner: one partition, compacted.
set -euo pipefail
B=${BOOTSTRAP:-localhost:9092}
P=${PARTITIONS:-12}
R=${REPLICATION:-1}
KT=${KAFKA_TOPICS:-kafka-topics.sh}
$KT --bootstrap-server "$B" --create --if-not-exists --topic engagement-events --partitions "$P" --replication-factor "$R"
$KT --bootstrap-server "$B" --create --if-not-exists --topic segment-transitions --partitions "$P" --replication-factor "$R"
$KT --bootstrap-server "$B" --create --if-not-exists --topic segmentd-dead-letters --partitions "$P" --replication-factor "$R" \
  --config retention.ms=2592000000
$KT --bootstrap-server "$B" --create --if-not-exists --topic segmentd-changelog --partitions "$P" --replication-factor "$R" \
  --config cleanup.policy=compact --config min.compaction.lag.ms=60000
$KT --bootstrap-server "$B" --create --if-not-exists --topic "${REPARTITION_TOPIC:-segmentd-engagement-events-repartition}" \
  --partitions "$P" --replication-factor "$R" --config retention.ms=604800000
$KT --bootstrap-server "$B" --create --if-not-exists --topic "${INSTANCES_TOPIC:-segmentd-instances}" \
  --partitions 1 --replication-factor "$R" --config cleanup.policy=compact
