#!/usr/bin/env bash
# Creates trendcast's topics on an Apache Kafka cluster.
# Sales and clicks MUST have the same partition count and be keyed by SKU (co-partitioning).
# Usage: BOOTSTRAP=127.0.0.1:9092 PARTITIONS=12 REPLICATION=1 deploy/kafka/create-topics.sh
set -euo pipefail
BOOTSTRAP="${BOOTSTRAP:-127.0.0.1:9092}"
PARTITIONS="${PARTITIONS:-12}"
REPLICATION="${REPLICATION:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-docker compose -f $(dirname "$0")/docker-compose.yml exec -T kafka /opt/kafka/bin/kafka-topics.sh}"
create() {
  $KAFKA_TOPICS --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$1" \
    --partitions "$2" --replication-factor "$REPLICATION" "${@:3}"
}
create sales "$PARTITIONS"
create clicks "$PARTITIONS"
# Latest-value outputs (trend updates, restock signals, new-product forecasts): compacted, so a
# new subscriber reads one message per SKU plus the last hour in full (crates/engine/src/kafka.rs,
# LATEST_VALUE_CONFIG). Not the hot-products topic: its rankings share one key.
LATEST=(--config cleanup.policy=compact --config min.compaction.lag.ms=3600000)
create trend-updates "$PARTITIONS" "${LATEST[@]}"
# Signals ([signals] in deploy/trendcast.toml): inventory snapshots are joined with trend updates
# per SKU, so they share the partition count (and the Java client's default partitioner).
create inventory "$PARTITIONS"
create restock-signals "$PARTITIONS" "${LATEST[@]}"
create hot-products 1
# New-product forecasts (signals.catalog_topic / new_product_topic, docs/COLD_START.md): catalog
# entries are keyed by SKU and co-partitioned with the trend updates like the inventory.
create catalog "$PARTITIONS"
create new-product-forecasts "$PARTITIONS" "${LATEST[@]}"
create trendcast-dead-letter 1 --config retention.ms=1209600000 --config max.message.bytes=4194304
# The checkpoint changelog (checkpoint.changelog_topic = "{group_id}-changelog"): same partition
# count as the inputs; compaction keeps only the newest record per SKU, which bounds it.
# The engine creates a missing changelog with the same configuration (crates/engine/src/kafka.rs,
# CHANGELOG_CONFIG).
CHANGELOG=(--config cleanup.policy=compact --config min.compaction.lag.ms=600000)
create "${GROUP_ID:-trendcast}-changelog" "$PARTITIONS" "${CHANGELOG[@]}"
# The signals changelog (signals.changelog_topic = "{group_id}-signals-changelog"): the same,
# for the restock, ranking and embedding state of the signals component.
create "${GROUP_ID:-trendcast}-signals-changelog" "$PARTITIONS" "${CHANGELOG[@]}"
