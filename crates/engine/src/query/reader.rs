//! Feeds the [`LatestView`] from the output topics: one consumer that assigns itself every
//! partition of every topic from the beginning, outside any consumer group, and never commits.
//!
//! Assigning rather than subscribing is what makes the view global: each instance reads all of
//! it, whichever partitions its engine owns, so a SKU's answer does not depend on which instance
//! is asked, and a rebalance moves nothing. The cost is that every instance reads every output
//! message; the compacted latest-value topics keep that to one message per SKU at start.
//!
//! A topic that does not exist yet (the signals topics appear once the signals component runs)
//! is looked for again every few seconds, and its partitions are added to the assignment
//! incrementally, so those already being read keep their place. Readiness needs the
//! trend-update topic read to where it ended at assignment; the signals topics join when they
//! appear.
//!
//! Catalog entries may be Avro (an upstream catalog service writing through a schema registry),
//! and so may the engine's own outputs (`[schema_registry] output_format = "avro"`): they are
//! read through the registry as the signals component reads them (`crate::ingest::avro`) and
//! answered as their JSON form. A registry that cannot be asked stops the reader (the view would
//! otherwise lose those SKUs' categories for good): `trendcast serve` then exits non-zero, and
//! under `trendcast run` the API's `/healthz` answers 503.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset};

use super::view::{LatestView, Output};
use crate::ingest::avro::AvroInputs;
use crate::kafka::KafkaSettings;
use crate::publish::{RegistryError, SchemaRegistry};
use crate::vocab::wire;

/// How often topics not found yet are looked for again.
const RETRY_TOPICS: Duration = Duration::from_secs(5);

/// Why the reader stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The consumer could not be created.
    #[error("the query view's consumer could not be created")]
    Consumer(#[from] rdkafka::error::KafkaError),
    /// The schema of an Avro catalog entry or output could not be fetched.
    #[error("the schema registry could not be asked for an Avro value's schema")]
    Registry(#[from] RegistryError),
}

/// Whether the reader has caught up with what the topics held when it started.
#[derive(Debug, Default)]
pub struct ReaderState {
    caught_up: AtomicBool,
    failed: AtomicBool,
}

impl ReaderState {
    /// True once every partition has been read to the end it had at assignment.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// True when the reader stopped on an error.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// The reader's consumer and where it stands.
struct Reader {
    consumer: BaseConsumer,
    kafka: KafkaSettings,
    /// Topics not assigned yet.
    missing: Vec<(String, Output)>,
    progress: Progress,
    last_lookup: Instant,
    last_position_check: Instant,
}

/// What each topic holds, and how far the reader still has to go to catch up.
struct Progress {
    outputs: HashMap<String, Output>,
    /// `(topic, partition)` → the end offset at assignment, until read to it.
    pending: HashMap<(String, i32), i64>,
    /// Avro catalog entries and outputs, read through the schema registry.
    avro: AvroInputs,
}

/// Runs until `stop` is set, taking every message of `topics` into `view` (Avro catalog
/// entries read through `registry`).
pub fn run(
    kafka: &KafkaSettings,
    topics: Vec<(String, Output)>,
    registry: Option<SchemaRegistry>,
    view: &LatestView,
    state: &ReaderState,
    stop: &AtomicBool,
) -> Result<(), ReaderError> {
    let result = read(kafka, topics, registry, view, state, stop);
    if result.is_err() {
        state.failed.store(true, Ordering::Release);
    }
    result
}

fn read(
    kafka: &KafkaSettings,
    topics: Vec<(String, Output)>,
    registry: Option<SchemaRegistry>,
    view: &LatestView,
    state: &ReaderState,
    stop: &AtomicBool,
) -> Result<(), ReaderError> {
    let mut config = kafka.consumer_config();
    config
        .set("group.id", format!("{}-query-view", kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    // it assigns partitions itself and joins no group: no static member identity
    config.remove("group.instance.id");
    let mut reader = Reader {
        consumer: config.create()?,
        kafka: kafka.clone(),
        progress: Progress {
            outputs: topics.iter().cloned().collect(),
            pending: HashMap::new(),
            avro: AvroInputs::new(registry),
        },
        missing: topics,
        last_lookup: Instant::now() - RETRY_TOPICS,
        last_position_check: Instant::now(),
    };
    while !stop.load(Ordering::Acquire) {
        if !reader.missing.is_empty() && reader.last_lookup.elapsed() >= RETRY_TOPICS {
            reader.assign_found();
        }
        match reader.consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => reader.progress.take(&m, view)?,
            Some(Err(e)) => tracing::debug!(error = %e, "query view reader"),
            None => {}
        }
        if !state.caught_up() && reader.caught_up() {
            tracing::info!("query view caught up with the output topics");
            state.caught_up.store(true, Ordering::Release);
        }
    }
    Ok(())
}

impl Reader {
    /// Adds the partitions of the topics that now exist to the assignment, from the beginning
    /// (incrementally: partitions already assigned keep their place). A topic whose partitions
    /// or end offsets cannot be read now is tried again later.
    fn assign_found(&mut self) {
        self.last_lookup = Instant::now();
        let mut added = rdkafka::TopicPartitionList::new();
        let mut still_missing = Vec::new();
        for (topic, output) in std::mem::take(&mut self.missing) {
            match self.topic_ends(&topic) {
                Ok(ends) => {
                    for (p, start, end) in ends {
                        let assigned = added.add_partition_offset(&topic, p, Offset::Beginning);
                        // an empty partition has nothing to catch up with
                        if assigned.is_ok() && end > start {
                            self.progress.pending.insert((topic.clone(), p), end);
                        }
                    }
                }
                Err(reason) => {
                    tracing::debug!(topic, reason, "query view: topic not readable yet");
                    still_missing.push((topic, output));
                }
            }
        }
        self.missing = still_missing;
        if added.count() > 0 {
            if let Err(e) = self.consumer.incremental_assign(&added) {
                tracing::warn!(error = %e, "query view: assigning partitions failed; retrying");
                for e in added.elements() {
                    let topic = e.topic().to_string();
                    self.progress
                        .pending
                        .remove(&(topic.clone(), e.partition()));
                    if let Some(output) = self.progress.outputs.get(&topic).copied() {
                        if !self.missing.iter().any(|(t, _)| *t == topic) {
                            self.missing.push((topic, output));
                        }
                    }
                }
            }
        }
        drop(added);
    }

    /// `(partition, start offset, end offset)` of every partition of `topic`.
    fn topic_ends(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, String> {
        let partitions =
            crate::kafka::partition_count(&self.kafka, topic).map_err(|e| e.to_string())?;
        (0..partitions as i32)
            .map(|p| {
                self.consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .map(|(low, high)| (p, low, high))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// True once every assigned partition has been read to the end it had at assignment, and
    /// the trend-update topic is among them (the others may not exist in this deployment). The
    /// consumer's position counts, not only messages seen: it also moves past control records
    /// and over a tail that retention removed.
    fn caught_up(&mut self) -> bool {
        if self
            .missing
            .iter()
            .any(|(_, output)| *output == Output::Forecasts)
        {
            return false;
        }
        if self.progress.pending.is_empty() {
            return true;
        }
        if self.last_position_check.elapsed() >= Duration::from_millis(500) {
            self.last_position_check = Instant::now();
            if let Ok(positions) = self.consumer.position() {
                for e in positions.elements() {
                    let key = (e.topic().to_string(), e.partition());
                    let reached = match (e.offset(), self.progress.pending.get(&key)) {
                        (Offset::Offset(at), Some(end)) => at >= *end,
                        _ => false,
                    };
                    if reached {
                        self.progress.pending.remove(&key);
                    }
                }
                drop(positions);
            }
        }
        self.progress.pending.is_empty()
    }
}

impl Progress {
    /// Takes one message into the view and marks its partition's progress; only a registry
    /// that cannot be asked about an Avro value is an error.
    fn take(
        &mut self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        view: &LatestView,
    ) -> Result<(), RegistryError> {
        let key = (m.topic().to_string(), m.partition());
        if self
            .pending
            .get(&key)
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            self.pending.remove(&key);
        }
        let Some(output) = self.outputs.get(m.topic()).copied() else {
            return Ok(());
        };
        let Some(payload) = m.payload() else {
            return Ok(());
        };
        let transcoded = match output {
            // no size limit: the view keeps a category per SKU
            Output::Catalog => self.avro.transcode(Some(payload), usize::MAX)?,
            // the engine's own outputs, Avro under `[schema_registry] output_format = "avro"`
            _ => self.avro.transcode_output(Some(payload))?,
        };
        // framed outputs (`[schema_registry] frame_outputs`) are answered as their JSON body
        let taken = transcoded.map_err(|r| r.to_string()).and_then(|json| {
            let body = json.as_deref().unwrap_or(wire::unframe(payload).1);
            view.apply(output, body).map_err(|e| e.to_string())
        });
        if let Err(e) = taken {
            tracing::warn!(topic = m.topic(), offset = m.offset(), error = %e, "query view skipped a message");
        }
        Ok(())
    }
}
