//! Feeds the [`LatestView`] from the output topics: one consumer that assigns itself every
//! partition of every topic from the beginning, outside any consumer group, and never commits.
//!
//! Assigning rather than subscribing is what makes the view global: each instance reads all of
//! it, whichever partitions its engine owns, so a SKU's answer does not depend on which instance
//! is asked, and a rebalance moves nothing. The cost is that every instance reads every output
//! message; the compacted latest-value topics keep that to one message per SKU at start.
//!
//! A topic that does not exist yet (the signals topics appear once the signals component runs)
//! is looked for again every few seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset};

use super::view::{LatestView, Output};
use crate::kafka::KafkaSettings;

/// How often topics not found yet are looked for again.
const RETRY_TOPICS: Duration = Duration::from_secs(5);

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
}

/// What each topic holds, and how far the reader still has to go to catch up.
struct Progress {
    outputs: HashMap<String, Output>,
    /// `(topic, partition)` → the end offset at assignment, until read to it.
    pending: HashMap<(String, i32), i64>,
}

/// Runs until `stop` is set, taking every message of `topics` into `view`.
pub fn run(
    kafka: &KafkaSettings,
    topics: Vec<(String, Output)>,
    view: &LatestView,
    state: &ReaderState,
    stop: &AtomicBool,
) -> Result<(), rdkafka::error::KafkaError> {
    let result = read(kafka, topics, view, state, stop);
    if result.is_err() {
        state.failed.store(true, Ordering::Release);
    }
    result
}

fn read(
    kafka: &KafkaSettings,
    topics: Vec<(String, Output)>,
    view: &LatestView,
    state: &ReaderState,
    stop: &AtomicBool,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut config = kafka.consumer_config();
    config
        .set("group.id", format!("{}-query-view", kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let mut reader = Reader {
        consumer: config.create()?,
        kafka: kafka.clone(),
        progress: Progress {
            outputs: topics.iter().cloned().collect(),
            pending: HashMap::new(),
        },
        missing: topics,
        last_lookup: Instant::now() - RETRY_TOPICS,
    };
    while !stop.load(Ordering::Acquire) {
        if !reader.missing.is_empty() && reader.last_lookup.elapsed() >= RETRY_TOPICS {
            reader.assign_found()?;
        }
        match reader.consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => reader.progress.take(&m, view),
            Some(Err(e)) => tracing::warn!(error = %e, "query view reader"),
            None => {}
        }
        if reader.missing.is_empty() && reader.progress.pending.is_empty() && !state.caught_up() {
            tracing::info!("query view caught up with the output topics");
            state.caught_up.store(true, Ordering::Release);
        }
    }
    Ok(())
}

impl Reader {
    /// Adds every partition of the topics that now exist to the assignment, from the beginning.
    fn assign_found(&mut self) -> Result<(), rdkafka::error::KafkaError> {
        self.last_lookup = Instant::now();
        let mut assignment = self.consumer.assignment()?;
        let mut still_missing = Vec::new();
        for (topic, output) in std::mem::take(&mut self.missing) {
            let Ok(partitions) = crate::kafka::partition_count(&self.kafka, &topic) else {
                tracing::debug!(topic, "query view: topic not found yet");
                still_missing.push((topic, output));
                continue;
            };
            for p in 0..partitions as i32 {
                assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
                let (low, high) =
                    self.consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))?;
                if high > low {
                    self.progress.pending.insert((topic.clone(), p), high);
                }
            }
        }
        self.missing = still_missing;
        self.consumer.assign(&assignment)?;
        drop(assignment);
        Ok(())
    }
}

impl Progress {
    /// Takes one message into the view and marks its partition's progress.
    fn take(&mut self, m: &rdkafka::message::BorrowedMessage<'_>, view: &LatestView) {
        let key = (m.topic().to_string(), m.partition());
        if self
            .pending
            .get(&key)
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            self.pending.remove(&key);
        }
        let Some(output) = self.outputs.get(m.topic()).copied() else {
            return;
        };
        let Some(payload) = m.payload() else {
            return;
        };
        if let Err(e) = view.apply(output, payload) {
            tracing::warn!(topic = m.topic(), offset = m.offset(), error = %e, "query view skipped a message");
        }
    }
}
