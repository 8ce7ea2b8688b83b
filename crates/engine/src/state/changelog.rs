//! The changelog topic of a state table: its checkpoints on Kafka, for handing a partition's
//! state to another host.
//!
//! Records of table partition `p` go to topic partition `p`, keyed by the record's key, so the
//! topic has the inputs' partition count and `cleanup.policy=compact` keeps the newest record
//! per key (correctness does not depend on it: without compaction a takeover reads more).
//! Writing goes through the engine's shared producer; the owner flushes it before it commits
//! offsets. Reading assigns one partition from its beginning and reads to the end of the log
//! seen at the start ([`read_to_end`]).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{storage, StorageError, TableRecord};
use crate::kafka::KafkaSettings;
use crate::publish::{MessageKind, Publisher};

/// The changelog of one table, on one topic.
#[derive(Debug, Clone)]
pub struct ChangelogTopic {
    topic: String,
}

impl ChangelogTopic {
    /// The changelog on `topic`.
    pub fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_string(),
        }
    }

    /// Enqueues `records` on `partition` (delivery is awaited by the caller's flush of
    /// `publisher`).
    pub fn write<R: TableRecord>(
        &self,
        publisher: &Publisher,
        partition: u16,
        records: &[R],
    ) -> Result<(), StorageError> {
        for r in records {
            let bytes = r.encode();
            publisher
                .send_to(
                    MessageKind::Changelog,
                    &self.topic,
                    Some(i32::from(partition)),
                    Some(r.key()),
                    Some(&bytes),
                    None,
                )
                .map_err(storage(format!("producing to {}", self.topic)))?;
        }
        Ok(())
    }

    /// Reads every record of `partition`, in order, to the end of the log at the start (see
    /// [`read_to_end`]). Undecodable records are skipped with a warning and counted: another
    /// host's newer build, or damage, must not keep the partition from being taken over.
    pub fn read<R: TableRecord>(
        &self,
        kafka: &KafkaSettings,
        partition: u16,
        context: &R::Context,
        timeout: Duration,
    ) -> Result<(Vec<R>, usize), StorageError> {
        let mut records = Vec::new();
        let mut bad = 0;
        for (offset, payload) in read_to_end(kafka, &self.topic, partition, timeout)? {
            match R::decode(&payload, context) {
                Ok(r) => records.push(r),
                Err(e) => {
                    bad += 1;
                    tracing::warn!(topic = %self.topic, partition, offset, error = %e, "changelog record skipped");
                }
            }
        }
        Ok((records, bad))
    }
}

/// How long the reader waits for more of the last record batch once it has reached the high
/// watermark (see [`read_to_end`]).
const TAIL_QUIET: Duration = Duration::from_millis(200);

/// Reads the (offset, value) of every record of `topic`'s `partition`, in order, from its
/// beginning to the end of the log at the start; records without a value are left out.
///
/// The end is the high watermark, and then whatever else arrives without a pause of
/// [`TAIL_QUIET`]: Tansu 0.6.0 reports the last record batch's first offset + 1 as the high
/// watermark, and the rest of that batch, already fetched with it, would otherwise be cut off.
pub fn read_to_end(
    kafka: &KafkaSettings,
    topic: &str,
    partition: u16,
    timeout: Duration,
) -> Result<Vec<(i64, Vec<u8>)>, StorageError> {
    let what = format!("reading {topic} partition {partition}");
    let mut config = kafka.client_config();
    config
        .set("group.id", format!("{}-changelog-reader", kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create().map_err(storage(what.clone()))?;
    let p = i32::from(partition);
    let (low, high) = consumer
        .fetch_watermarks(topic, p, timeout)
        .map_err(storage(what.clone()))?;
    let mut records = Vec::new();
    if high <= low {
        return Ok(records);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Beginning)
        .map_err(storage(what.clone()))?;
    consumer.assign(&tpl).map_err(storage(what.clone()))?;
    drop(tpl);
    let deadline = Instant::now() + timeout;
    let mut next = low;
    loop {
        let reached = next >= high;
        if !reached && Instant::now() > deadline {
            return Err(StorageError {
                what,
                message: format!("timed out at offset {next} of {high}"),
            });
        }
        let wait = if reached {
            TAIL_QUIET
        } else {
            Duration::from_millis(200)
        };
        match consumer.poll(wait) {
            Some(Ok(m)) => {
                next = m.offset() + 1;
                if let Some(payload) = m.payload() {
                    records.push((m.offset(), payload.to_vec()));
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, "changelog read error (retrying)"),
            None if reached => return Ok(records),
            None => {}
        }
    }
}
