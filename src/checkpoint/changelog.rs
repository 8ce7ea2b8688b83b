//! The changelog topic: checkpoints on Kafka, for handing a partition's state to another host.
//!
//! Records of input partition `p` go to changelog partition `p`, keyed by SKU (a reserved key for
//! cuts), so the topic has the inputs' partition count. Writing goes through the engine's shared
//! producer; the checkpointer flushes it before committing offsets. Reading assigns one
//! partition from its beginning and reads up to the high watermark seen at the start.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::format::{decode, encode, storage, CheckpointError, Record};
use crate::kafka::KafkaSettings;
use crate::publish::{MessageKind, Publisher};

/// The changelog of one engine.
#[derive(Debug, Clone)]
pub struct Changelog {
    topic: String,
}

fn kafka_err(what: String) -> impl Fn(rdkafka::error::KafkaError) -> CheckpointError {
    storage(what)
}

impl Changelog {
    /// The changelog on `topic`.
    pub fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_string(),
        }
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Enqueues `records` on the partition they belong to (delivery is awaited by the caller's
    /// flush of `publisher`).
    pub fn write(&self, publisher: &Publisher, records: &[Record]) -> Result<(), CheckpointError> {
        for r in records {
            let bytes = encode(r);
            publisher
                .send_to(
                    MessageKind::Changelog,
                    &self.topic,
                    Some(i32::from(r.partition())),
                    Some(r.key()),
                    Some(&bytes),
                    None,
                )
                .map_err(storage(format!("producing to {}", self.topic)))?;
        }
        Ok(())
    }

    /// Reads every record of `partition`, in order, up to the high watermark at the start.
    /// Undecodable records are skipped and counted (logged by the caller).
    pub fn read(
        &self,
        kafka: &KafkaSettings,
        partition: u16,
        capacity: usize,
        timeout: Duration,
    ) -> Result<(Vec<Record>, usize), CheckpointError> {
        let what = format!("reading {} partition {partition}", self.topic);
        let mut config = kafka.client_config();
        config
            .set("group.id", format!("{}-changelog-reader", kafka.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = config.create().map_err(kafka_err(what.clone()))?;
        let p = i32::from(partition);
        let (low, high) = consumer
            .fetch_watermarks(&self.topic, p, timeout)
            .map_err(kafka_err(what.clone()))?;
        let mut records = Vec::new();
        let mut bad = 0;
        if high <= low {
            return Ok((records, bad));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, p, Offset::Beginning)
            .map_err(kafka_err(what.clone()))?;
        consumer.assign(&tpl).map_err(kafka_err(what.clone()))?;
        drop(tpl);
        let deadline = Instant::now() + timeout;
        let mut next = low;
        while next < high {
            if Instant::now() > deadline {
                return Err(CheckpointError::Io {
                    what,
                    message: format!("timed out at offset {next} of {high}"),
                });
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    next = m.offset() + 1;
                    match m.payload().map(|b| decode(b, capacity)) {
                        Some(Ok(r)) => records.push(r),
                        Some(Err(e)) => {
                            bad += 1;
                            tracing::warn!(error = %e, offset = m.offset(), "changelog record skipped");
                        }
                        None => {}
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "changelog read error (retrying)"),
                None => {}
            }
        }
        Ok((records, bad))
    }
}
