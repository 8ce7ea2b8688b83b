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
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "true")
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
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "200000");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}
