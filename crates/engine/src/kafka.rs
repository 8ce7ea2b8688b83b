//! Kafka client settings shared by the consumer, the producers and the tools.
//!
//! Every client is built from the same [`KafkaSettings`], so TLS/SASL properties given once in
//! `[kafka.properties]` reach all of them.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Brokers, topic names and pass-through librdkafka properties.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group id.
    pub group_id: String,
    /// Static membership identity (`group.instance.id`) of this instance's consumers; `None`
    /// for dynamic membership.
    pub group_instance_id: Option<String>,
    /// Sales event topic.
    pub sales_topic: String,
    /// Click event topic.
    pub clicks_topic: String,
    /// Trend update topic.
    pub output_topic: String,
    /// Dead-letter topic.
    pub dead_letter_topic: String,
    /// Extra librdkafka properties applied to every client.
    pub properties: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// Base client config: brokers plus the pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Config for the engine's consumer: manual offset store, committed after state is applied.
    ///
    /// With a `group_instance_id` the consumer is a static group member (KIP-345): a restarted
    /// instance that rejoins under the same identity within the session timeout gets its
    /// partitions back at once, without a rebalance and without waiting for its dead predecessor
    /// to time out. The price, as for Kafka Streams: a static member does not leave the group
    /// when it stops, so a partition of an instance that is gone for good moves only after the
    /// session timeout.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        if let Some(id) = &self.group_instance_id {
            config.set("group.instance.id", id);
        }
        config
            .set("group.id", &self.group_id)
            // offsets are committed by the checkpointer, never ahead of checkpointed state
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Config for the engine's producers: acks=all (librdkafka default), lz4, a small linger for batching.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("linger.ms", "5")
            // keys land where Java clients put them, so topics produced by other clients
            // (inventory snapshots) are co-partitioned with trend updates
            .set("partitioner", "murmur2_random")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "200000");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// The static membership identity that `group_instance_id` (from `[kafka]`) asks for.
///
/// - `""`: none (dynamic membership);
/// - `"auto"`: `trendcast-{host}-{hash of the absolute checkpoint folder}`, the same on every
///   restart of one instance (a systemd unit, a StatefulSet pod with its volume) and different for
///   two instances on one host, which must not share a checkpoint folder anyway. Without a
///   checkpoint folder nothing identifies the instance, so membership stays dynamic;
/// - anything else: used as is, with `{hostname}` replaced.
pub fn instance_identity(
    configured: &str,
    checkpoint_dir: Option<&std::path::Path>,
) -> Option<String> {
    let configured = configured.trim();
    match configured {
        "" => None,
        "auto" => {
            let dir = std::path::absolute(checkpoint_dir?).ok()?;
            let hash = murmur2(dir.to_string_lossy().as_bytes());
            Some(format!("trendcast-{}-{hash:08x}", hostname()?))
        }
        id => Some(id.replace("{hostname}", &hostname().unwrap_or_default())),
    }
}

/// This host's name (Linux; `HOSTNAME` elsewhere), `None` when unknown.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Errors of the topic helper.
#[derive(Debug, thiserror::Error)]
#[error("topic {topic}: {reason}")]
pub struct TopicError {
    /// Topic name.
    pub topic: String,
    /// Broker's or client's reason.
    pub reason: String,
}

/// Topic configuration of the checkpoint and signals changelogs: compacted to the newest record
/// per key, and never before ten minutes (a restore reading the tail still finds every record of
/// the newest checkpoint). `deploy/kafka/create-topics.sh` uses the same (checked by
/// `tests/docs_consistency.rs`).
pub const CHANGELOG_CONFIG: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("min.compaction.lag.ms", "600000"),
];

/// Topic configuration of the latest-value outputs (trend updates, restock signals, new-product
/// forecasts): compacted, so a new subscriber reads one message per SKU, plus what the last
/// hour published in full. The hot-products topic is not among them: its rankings come from
/// several instances under one key, and compaction would keep only one of them.
pub const LATEST_VALUE_CONFIG: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("min.compaction.lag.ms", "3600000"),
];

/// Creates `topics` (name, partitions) with replication 1 and waits until their metadata shows
/// every partition. Used by the load test and tools; production topics are made by operators.
pub fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<(), TopicError> {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", brokers);
    create_topics_with(&base, topics)
}

/// [`create_topics`] with the clients built from `base` (brokers plus, for the engine, the
/// `[kafka.properties]` that carry TLS/SASL settings).
pub fn create_topics_with(base: &ClientConfig, topics: &[(&str, i32)]) -> Result<(), TopicError> {
    create_configured(base, topics, &[])
}

/// [`create_topics_with`], every topic with the topic configuration `config` (e.g.
/// [`CHANGELOG_CONFIG`]).
pub fn create_configured(
    base: &ClientConfig,
    topics: &[(&str, i32)],
    config: &'static [(&'static str, &'static str)],
) -> Result<(), TopicError> {
    // on a thread of its own: it runs a small runtime, which must not nest in the caller's
    let owned: Vec<(String, i32)> = topics.iter().map(|(t, p)| (t.to_string(), *p)).collect();
    let base = base.clone();
    let first = owned.first().map(|t| t.0.clone()).unwrap_or_default();
    std::thread::spawn(move || {
        let refs: Vec<(&str, i32)> = owned.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        create_topics_here(&base, &refs, config)
    })
    .join()
    .map_err(|_| TopicError {
        topic: first,
        reason: "the topic creation thread panicked".into(),
    })?
}

fn create_topics_here(
    base: &ClientConfig,
    topics: &[(&str, i32)],
    config: &[(&str, &str)],
) -> Result<(), TopicError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::time::{Duration, Instant};

    let err = |topic: &str, reason: String| TopicError {
        topic: topic.to_string(),
        reason,
    };
    let first = topics.first().map(|t| t.0).unwrap_or("");
    let admin: AdminClient<DefaultClientContext> =
        base.create().map_err(|e| err(first, e.to_string()))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, parts)| {
            config.iter().fold(
                NewTopic::new(name, *parts, TopicReplication::Fixed(1)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(first, e.to_string()))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.create_topics(&new, &options))
        .map_err(|e| err(first, e.to_string()))?;
    for r in results {
        r.map_err(|(t, e)| err(&t, e.to_string()))?;
    }
    let meta: BaseConsumer = base.create().map_err(|e| err(first, e.to_string()))?;
    for (name, parts) in topics {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = meta
                .fetch_metadata(Some(name), Duration::from_secs(5))
                .map(|m| {
                    m.topics()
                        .first()
                        .is_some_and(|t| t.partitions().len() == *parts as usize)
                })
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(err(
                    name,
                    "metadata did not show the topic within 20 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Number of partitions of `topic` (an error names a missing topic).
pub fn partition_count(kafka: &KafkaSettings, topic: &str) -> Result<usize, TopicError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::time::Duration;

    let err = |reason: String| TopicError {
        topic: topic.to_string(),
        reason,
    };
    let client: BaseConsumer = kafka
        .client_config()
        .create()
        .map_err(|e| err(e.to_string()))?;
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| err(format!("metadata request failed: {e}")))?;
    let Some(t) = metadata.topics().first() else {
        return Err(err("the broker returned no metadata for it".into()));
    };
    if let Some(e) = t.error() {
        return Err(err(format!(
            "the broker reports {e:?} (does the topic exist?)"
        )));
    }
    if t.partitions().is_empty() {
        return Err(err("it has no partitions (does the topic exist?)".into()));
    }
    Ok(t.partitions().len())
}

/// Checks that the sales and clicks topics exist with the same partition count: a SKU's sales
/// and clicks must land in partitions with the same number, so that one instance of a consumer
/// group holds all of a SKU's input. Returns the partition count.
pub fn check_copartitioned(kafka: &KafkaSettings) -> Result<usize, TopicError> {
    let sales = partition_count(kafka, &kafka.sales_topic)?;
    let clicks = partition_count(kafka, &kafka.clicks_topic)?;
    if sales != clicks {
        return Err(TopicError {
            topic: kafka.clicks_topic.clone(),
            reason: format!(
                "sales topic {} has {sales} partitions but clicks topic {} has {clicks}: \
                 they must be co-partitioned (same partition count, keyed by SKU)",
                kafka.sales_topic, kafka.clicks_topic
            ),
        });
    }
    Ok(sales)
}

/// Checks that the changelog topic has the inputs' partition count, creating it when missing
/// (operators of secured clusters create it beforehand, see `deploy/kafka/create-topics.sh`).
pub fn ensure_changelog(
    kafka: &KafkaSettings,
    topic: &str,
    partitions: usize,
) -> Result<(), TopicError> {
    match partition_count(kafka, topic) {
        Ok(n) if n == partitions => Ok(()),
        Ok(n) => Err(TopicError {
            topic: topic.to_string(),
            reason: format!(
                "the changelog has {n} partitions but the inputs have {partitions}: they must match"
            ),
        }),
        Err(_) => {
            tracing::info!(
                topic,
                partitions,
                "creating the changelog topic (compacted)"
            );
            // the same security properties as every other client (a SASL/TLS cluster)
            let created = create_configured(
                &kafka.client_config(),
                &[(topic, partitions as i32)],
                CHANGELOG_CONFIG,
            );
            match created {
                Ok(()) => Ok(()),
                // instances starting together race to create it: one wins, the others find it
                // once its metadata shows
                Err(e) => {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    while std::time::Instant::now() < deadline {
                        if partition_count(kafka, topic).is_ok_and(|n| n == partitions) {
                            return Ok(());
                        }
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    Err(e)
                }
            }
        }
    }
}

/// The partition the Java client's default partitioner (and librdkafka's `murmur2_random`)
/// gives a non-empty `key` among `partitions`: Kafka's murmur2 hash, sign bit cleared, modulo.
pub fn murmur2_partition(key: &[u8], partitions: usize) -> usize {
    (murmur2(key) & 0x7fff_ffff) as usize % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod murmur_tests {
    /// Kafka's own test vectors (UtilsTest.testMurmur2).
    #[test]
    fn matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(
                super::murmur2(key) as i32,
                want,
                "{:?}",
                std::str::from_utf8(key)
            );
        }
    }
}

#[cfg(test)]
mod identity_tests {
    use std::path::Path;

    use super::instance_identity;

    #[test]
    fn auto_identity_is_stable_per_checkpoint_folder() {
        let a = instance_identity("auto", Some(Path::new("/var/lib/trendcast/a")));
        let again = instance_identity("auto", Some(Path::new("/var/lib/trendcast/a")));
        let b = instance_identity("auto", Some(Path::new("/var/lib/trendcast/b")));
        let a = a.expect("an identity on a host with a name");
        assert!(a.starts_with("trendcast-"), "{a}");
        assert_eq!(Some(a.clone()), again);
        assert_ne!(Some(a), b);
        assert_eq!(
            instance_identity("auto", None),
            None,
            "no folder, no identity"
        );
        assert_eq!(instance_identity("", Some(Path::new("/x"))), None);
        assert_eq!(
            instance_identity(" pod-0 ", None).as_deref(),
            Some("pod-0"),
            "explicit ids are used as is"
        );
        assert!(!instance_identity("{hostname}-x", None)
            .expect("explicit")
            .contains('{'));
    }
}

#[cfg(test)]
mod admin_tests {
    use super::*;

    #[test]
    fn the_changelog_is_created_with_the_clients_security_properties() {
        // an invalid security property makes a client refuse to start; an admin client built
        // from the brokers alone would not see it (and would fail on a SASL/TLS cluster)
        let kafka = KafkaSettings {
            group_instance_id: None,
            brokers: "127.0.0.1:1".into(),
            group_id: "g".into(),
            sales_topic: "s".into(),
            clicks_topic: "c".into(),
            output_topic: "o".into(),
            dead_letter_topic: "d".into(),
            properties: [(
                "security.protocol".to_string(),
                "not-a-protocol".to_string(),
            )]
            .into(),
        };
        let e = ensure_changelog(&kafka, "changelog", 1).expect_err("refused");
        assert!(e.reason.contains("security.protocol"), "{e:?}");
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::BaseProducer;
    use rdkafka::ClientConfig;

    /// librdkafka refuses `SASL_SSL` and SCRAM at client creation when it was built without
    /// OpenSSL ("OpenSSL not available at build time"): deployments behind SASL need both.
    #[test]
    fn clients_can_be_made_for_sasl_ssl_with_scram() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", "trendcast")
            .set("sasl.password", "secret");
        let producer: Result<BaseProducer, _> = config.create();
        assert!(producer.is_ok(), "{:?}", producer.err());
        let consumer: Result<BaseConsumer, _> = config.clone().set("group.id", "g").create();
        assert!(consumer.is_ok(), "{:?}", consumer.err());
    }
}
