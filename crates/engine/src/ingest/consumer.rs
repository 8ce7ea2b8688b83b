//! The ingest loop: consume sales and clicks, validate, apply to windows, tell the scorer,
//! checkpoint.
//!
//! It runs on a dedicated OS thread with a `BaseConsumer`: decoding and window updates are CPU
//! work, and a blocking poll loop keeps them off the async reactor without a hop per message.
//! Each input partition is read from its own queue, the one furthest behind in event time first
//! (see [`super::partition_queues`]); the consumer queue serves rebalances and statistics.
//! Being the only writer of window contents, it is also where checkpoints are cut (see
//! [`crate::checkpoint`]): periodically, when partitions are revoked, and at shutdown. Offsets are
//! committed only after a checkpoint, so a crash replays (never skips) input, and replayed
//! messages that a restored state already holds are skipped.
//!
//! Buckets close by the event-time frontier of all input partitions still being read (see
//! [`super::alignment`]), and before an event that closes a bucket is applied, ingest waits
//! until the scorer has copied every window closed so far (`FlushPoint::Copied`): every closed
//! bucket with data gets its own update, and no window slides past a bucket still to be scored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientContext, Offset};

use super::alignment::{Alignment, HoldLine};
use super::avro::{AvroInputs, Transcoded};
use super::dead_letter;
use super::event::{decode_counting, Event, Rejection, Source, ValidationLimits};
use super::holdback::{HoldBack, HOLD_LIMIT};
use super::offset_guard::{OffsetGuard, Verdict, STALL_AFTER};
use super::partition_queues::{Pair, PartitionQueues};
use crate::checkpoint::checkpointer::{Behind, CheckpointCall, FINAL_PATIENCE, PERIODIC_PATIENCE};
use crate::checkpoint::{
    CheckpointError, CheckpointSettings, Checkpointer, Completion, Marker, Passage,
};
use crate::kafka::KafkaSettings;
use crate::publish::{PublishError, Publisher, SchemaRegistry};
use crate::scoring::calibration::CalibrationTable;
use crate::scoring::{flush_scorer, FlushPoint, ScorerMsg, ScoringBacklog};
use crate::telemetry::{EngineStats, Health};
use crate::vocab::{EventTime, PerSource};
use crate::window::{Admission, WindowStore};

/// How long ingest waits for the scorer at a bucket close before going on regardless.
const CLOSE_BARRIER_TIMEOUT: Duration = Duration::from_secs(60);

/// How often lag marks are refreshed from librdkafka's statistics and partitions holding too
/// many held-back messages are paused or resumed.
const ALIGN_EVERY: Duration = Duration::from_millis(100);

/// How long ingest waits on the consumer queue when no partition queue has a message: the most
/// a message arriving meanwhile in a partition queue waits to be read.
const IDLE_WAIT: Duration = Duration::from_millis(2);
/// Messages read from the partition queues per turn of ingest's loop. The read order is
/// recomputed before each one, and a queue found empty is not polled again in the batch; the
/// turn's fixed costs (a poll of the consumer queue, the backpressure check, the clock reads of
/// the loop's timers, each taking locks inside librdkafka or ingest) are paid once per batch.
const READ_BATCH: usize = 64;

/// Consumer context: rebalances (checkpoint revoked partitions, restore assigned ones) and
/// librdkafka statistics (the lag gauge).
pub struct IngestContext {
    stats: Arc<EngineStats>,
    health: Arc<Health>,
    shared: Arc<Mutex<IngestState>>,
    /// High watermark per (topic, partition) from the latest statistics.
    highs: Mutex<HashMap<(String, i32), i64>>,
    /// The consumer itself, for splitting its partition queues in the rebalance callback.
    consumer: OnceLock<Weak<BaseConsumer<IngestContext>>>,
    /// Each assigned input partition's own queue (`partition_queues`).
    queues: Mutex<PartitionQueues>,
}

impl IngestContext {
    /// The high watermark of `topic`'s `partition` from the latest statistics.
    fn high(&self, topic: &str, partition: i32) -> Option<i64> {
        let highs = self.highs.lock().unwrap_or_else(|e| e.into_inner());
        highs.get(&(topic.to_string(), partition)).copied()
    }

    fn queues(&self) -> MutexGuard<'_, PartitionQueues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Splits the assigned input partitions into their own queues.
    fn split_queues(&self) {
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        // the queues first, then the state: the order ingest's loop takes them in
        let mut queues = self.queues();
        let a = lock(&self.shared);
        queues.split(&consumer, |topic, partition| a.pair_of(topic, partition));
    }
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        {
            let mut highs = self.highs.lock().unwrap_or_else(|e| e.into_inner());
            for (name, t) in &statistics.topics {
                for p in t.partitions.values().filter(|p| p.partition >= 0) {
                    if p.hi_offset >= 0 {
                        highs.insert((name.clone(), p.partition), p.hi_offset);
                    }
                }
            }
        }
        let mut lag = 0i64;
        for (name, t) in &statistics.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                self.stats
                    .set_partition_lag(name, p.partition, p.consumer_lag);
                lag += p.consumer_lag.max(0);
            }
        }
        self.stats.set_lag(lag);
    }
}

/// The partition numbers in `tpl` (any topic), sorted and deduplicated.
pub(crate) fn partitions_of(tpl: &TopicPartitionList) -> Vec<u16> {
    let mut v: Vec<u16> = tpl
        .elements()
        .iter()
        .filter_map(|e| u16::try_from(e.partition()).ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(?rebalance, "partitions being rebalanced");
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions_of(tpl);
            let mut a = lock(&self.shared);
            a.revoke(&parts, consumer);
            self.health.revoked(a.checkpoints.owned().len());
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // before the restore: fetching has hardly begun, so little reaches the consumer queue
        self.split_queues();
        if let Rebalance::Assign(tpl) = rebalance {
            // librdkafka keeps a partition's pause across unassign and assign (only the
            // application resumes it), while ingest forgets the pauses of revoked partitions:
            // without this, a partition paused when its assignment was lost (backpressure while
            // the broker was down) came back paused and was never read again. Backpressure
            // pauses the whole assignment again on ingest's next turn when it still applies.
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(error = %e, "could not resume newly assigned partitions");
            }
            let parts = partitions_of(tpl);
            let mut a = lock(&self.shared);
            let new: Vec<u16> = parts
                .into_iter()
                .filter(|p| !a.checkpoints.owns(*p))
                .collect();
            self.health.restoring(new.len());
            for &p in &new {
                a.restore(p, consumer);
            }
            self.health.assigned(a.checkpoints.owned().len(), new.len());
        }
    }
}

/// True when ingest does not read `key` (event time `wm`) now: it is ahead of the hold `line`,
/// or has `held` messages to apply first.
fn held_back(line: HoldLine, held: &HoldBack, key: Pair, wm: Option<EventTime>) -> bool {
    line.holds(wm) || held.holding(key)
}

fn lock(shared: &Mutex<IngestState>) -> MutexGuard<'_, IngestState> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// When ingest stops reading its partitions (from `[ingest]`): while the scorer or the producer
/// is behind, consuming more would only grow memory. Reads again below half of each bound.
#[derive(Debug, Clone, Copy)]
pub struct Backpressure {
    /// Windows waiting to be scored.
    pub max_scoring_backlog: usize,
    /// Messages waiting for the broker's acknowledgement.
    pub max_publish_in_flight: usize,
}

impl Backpressure {
    /// The scoring backlog allowed with `skus` SKUs held: `max_scoring_backlog`, or the number
    /// of SKUs when that is larger. One close can make every SKU wait for scoring at once; with
    /// a bound below that, ingest stopped at every such close and read again only once the
    /// scorer had nearly finished it, so the two took turns instead of overlapping (the 1M-SKU
    /// load run: 0.43-0.44x the bare consumer with 100,000, 0.50-0.53x with the bound at the
    /// SKU count; `docs/PERFORMANCE.md`).
    pub fn scoring_backlog_bound(&self, skus: usize) -> usize {
        self.max_scoring_backlog.max(skus)
    }
}

impl Default for Backpressure {
    fn default() -> Self {
        Self {
            max_scoring_backlog: 100_000,
            max_publish_in_flight: 100_000,
        }
    }
}

/// Errors that stop ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The consumer could not be created or subscribed.
    #[error("could not set up the Kafka consumer")]
    Consumer(#[source] KafkaError),
    /// A dead letter could not be enqueued.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Checkpoint storage could not be opened or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The scorer thread has stopped, so no window would be scored again.
    #[error("the scorer has stopped: window changes can no longer be scored")]
    ScorerGone,
    /// The schema of an Avro input value could not be fetched: stopping leaves its offset
    /// uncommitted, so a restart reads it again.
    #[error("the schema registry could not be asked for an input value's Avro schema")]
    Registry(#[source] crate::publish::RegistryError),
}

/// The ingest loop: the consumer plus the per-message logic.
pub struct Ingest {
    consumer: Arc<BaseConsumer<IngestContext>>,
    shared: Arc<Mutex<IngestState>>,
    backpressure: Backpressure,
    /// Backpressure holds off reading: queues left unread, or the consumer paused.
    backpressured: bool,
    /// An overdue checkpoint holds input until the scorer and the broker have caught up
    /// ([`CheckpointCall::HoldInput`]); backpressure does the holding.
    held_for_checkpoint: bool,
    /// The periodic checkpoint in flight: its marker is on its way through the scorer, and
    /// input is held until it comes back (`crate::checkpoint::marker`).
    marker: Option<Marker>,
    /// Partition queues found empty in this turn of the loop (reused, not reallocated).
    empty_queues: Vec<Pair>,
    health: Arc<Health>,
    /// The scorer's backlog, for backpressure.
    backlog: ScoringBacklog,
}

/// Ingest's state, shared by the poll loop and the rebalance callbacks: everything a message is
/// applied with, apart from the consumer itself.
struct IngestState {
    admission: Admission,
    checkpoints: Checkpointer,
    publisher: Publisher,
    stats: Arc<EngineStats>,
    limits: ValidationLimits,
    /// Avro input values, transcoded to JSON through the schema registry.
    avro: AvroInputs,
    /// `limits` for the JSON an Avro value becomes: its size was checked on the Avro bytes.
    avro_limits: ValidationLimits,
    sales_topic: String,
    clicks_topic: String,
    dead_letter_topic: String,
    scorer: Sender<ScorerMsg>,
    /// An error met inside a rebalance callback, reported by the loop.
    failed: Option<IngestError>,
    /// Event-time alignment of the owned input partitions.
    alignment: Alignment,
    /// How far (ms) a partition may run ahead of the frontier before it is paused.
    lead_ms: i64,
    /// (source, partition) pairs with their event times, refilled for each frontier update.
    pairs: Vec<((Source, u16), Option<EventTime>)>,
    /// Event times held back rather than applied, as of the last frontier update.
    hold_line: HoldLine,
    /// SKUs held at the last close, for backpressure's bound (counting the sharded map takes
    /// every shard's lock, too dear for each turn of the loop).
    skus_at_close: usize,
    /// Messages of pairs ahead of the frontier, waiting for it (`holdback`).
    held: HoldBack,
    /// The hold line the held messages were last checked against: a held pair's event time
    /// moves only when its messages are applied, so nothing more is released until the line
    /// moves.
    released_at: Option<HoldLine>,
    /// Expected next offset per input partition: gaps and stalls become rewinds.
    guard: OffsetGuard,
    /// The input pairs to read next, furthest behind first (`fill_read_order`).
    read_order: Vec<Pair>,
}

/// How far (ms) a partition may run ahead of the frontier before it is paused: the lateness
/// rounded up to whole buckets, less the lateness.
fn open_lead_ms(store: &WindowStore) -> i64 {
    let w = store.settings();
    let width = w.bucket.width_ms();
    let open_after = (w.lateness_ms + width - 1) / width;
    (open_after * width - w.lateness_ms).max(0)
}

impl Ingest {
    /// Creates the consumer and subscribes to the sales and clicks topics.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kafka: &KafkaSettings,
        limits: ValidationLimits,
        backpressure: Backpressure,
        idle_hold: Duration,
        checkpoint: CheckpointSettings,
        store: Arc<WindowStore>,
        publisher: Publisher,
        stats: Arc<EngineStats>,
        health: Arc<Health>,
        scorer: Sender<ScorerMsg>,
        backlog: ScoringBacklog,
        registry: Option<SchemaRegistry>,
        calibration: CalibrationTable,
    ) -> Result<Self, IngestError> {
        let mut config = kafka.consumer_config();
        // statistics carry the high watermarks that event-time alignment reads
        if !kafka.properties.contains_key("statistics.interval.ms") {
            config.set("statistics.interval.ms", "1000");
        }
        store.evictions().track_removed();
        store.clock().manage_frontier();
        let capacity = store.ring_capacity();
        let lead_ms = open_lead_ms(&store);
        let shared = Arc::new(Mutex::new(IngestState {
            admission: Admission::new(store),
            checkpoints: Checkpointer::new(checkpoint, kafka.clone(), capacity)?
                .with_calibration(calibration),
            publisher,
            stats: stats.clone(),
            avro_limits: ValidationLimits {
                max_payload_bytes: usize::MAX,
                ..limits.clone()
            },
            limits,
            avro: AvroInputs::new(registry),
            sales_topic: kafka.sales_topic.clone(),
            clicks_topic: kafka.clicks_topic.clone(),
            dead_letter_topic: kafka.dead_letter_topic.clone(),
            scorer,
            failed: None,
            alignment: Alignment::new(idle_hold),
            lead_ms,
            pairs: Vec::new(),
            hold_line: HoldLine::Nothing,
            skus_at_close: 0,
            held: HoldBack::default(),
            released_at: None,
            guard: OffsetGuard::default(),
            read_order: Vec::new(),
        }));
        let consumer: BaseConsumer<IngestContext> = config
            .create_with_context(IngestContext {
                stats,
                health: health.clone(),
                shared: shared.clone(),
                highs: Mutex::new(HashMap::new()),
                consumer: OnceLock::new(),
                queues: Mutex::new(PartitionQueues::default()),
            })
            .map_err(IngestError::Consumer)?;
        consumer
            .subscribe(&[&kafka.sales_topic, &kafka.clicks_topic])
            .map_err(IngestError::Consumer)?;
        let consumer = Arc::new(consumer);
        // set once, on a context made just above: it cannot be set already
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        Ok(Self {
            consumer,
            shared,
            backpressure,
            backpressured: false,
            held_for_checkpoint: false,
            marker: None,
            empty_queues: Vec::new(),
            health,
            backlog,
        })
    }

    /// Polls until `stop` is set; then stops consuming, lets the scorer score what is pending,
    /// checkpoints, commits and leaves the group.
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), IngestError> {
        let mut housekeeping = Instant::now();
        let mut aligned = Instant::now();
        let mut stall_watch = Instant::now();
        while !stop.load(Ordering::Acquire) {
            self.read_once()?;
            let mut a = lock(&self.shared);
            if housekeeping.elapsed() >= Duration::from_secs(5) {
                a.housekeeping();
                housekeeping = Instant::now();
            }
            let call = match self.marker.take() {
                Some(marker) => {
                    self.marker = a.follow_marker(marker, &self.consumer);
                    CheckpointCall::NotYet
                }
                None => a.checkpoints.due(|| Behind {
                    scoring: self
                        .backlog
                        .work(a.admission.store().clock().closed_index()),
                    in_flight: usize::try_from(a.publisher.in_flight()).unwrap_or(0),
                }),
            };
            if call == CheckpointCall::Now {
                self.marker = a.mark_checkpoint();
            }
            self.held_for_checkpoint = call == CheckpointCall::HoldInput || self.marker.is_some();
            // nothing is released or resumed while a marker is out: the state it cuts stays put
            if self.marker.is_none() && aligned.elapsed() >= ALIGN_EVERY {
                a.align(&self.consumer, self.backpressured);
                a.release_held(Instant::now())?;
                aligned = Instant::now();
            }
            if stall_watch.elapsed() >= STALL_AFTER {
                a.rewind_stalled(&self.consumer, self.backpressured);
                stall_watch = Instant::now();
            }
            drop(a);
            self.apply_backpressure();
        }
        let mut a = lock(&self.shared);
        // what is read by now closes what it can: ask the broker (not cached statistics)
        // which partitions are caught up, so the frontier reaches every bucket it can
        a.refresh_lag_from_broker(&self.consumer, None);
        a.alignment.drop_idle_hold();
        let now = Instant::now();
        a.advance_frontier(None, now);
        a.release_held(now)?;
        tracing::info!(
            frontier_ms = a.admission.store().clock().frontier().map(EventTime::millis),
            closed = a.admission.store().clock().closed_index(),
            pairs = ?a.pairs,
            lagging = ?a.alignment.lagging_pairs(),
            "final close before the shutdown checkpoint"
        );
        a.checkpoint(&[], &self.consumer, FINAL_PATIENCE);
        let owned = a.checkpoints.owned();
        a.checkpoints.release(&owned);
        drop(a);
        // the partition queues go before the consumer leaves the group
        self.consumer.context().queues().clear();
        self.consumer.unsubscribe();
        Ok(())
    }
}

impl Drop for Ingest {
    /// The partition queues hold the consumer: drop them so that the consumer can go.
    fn drop(&mut self) {
        self.consumer.context().queues().clear();
    }
}

impl Ingest {
    /// Reads up to [`READ_BATCH`] messages, each from the queue of the input partition furthest
    /// behind in event time that has one waiting, then polls the consumer queue: it serves
    /// rebalances and statistics, and delivers what was fetched before a split and partitions
    /// not split. It waits there (up to [`IDLE_WAIT`], or 100 ms before any partition is
    /// assigned) when no partition queue had a message.
    fn read_once(&mut self) -> Result<(), IngestError> {
        let mut from_queue = false;
        let (split, draining) = {
            let queues = self.consumer.context().queues();
            // under backpressure the partition queues are left unread (`apply_backpressure`)
            if !queues.is_empty() && !queues.draining() && !self.backpressured {
                let mut a = lock(&self.shared);
                self.empty_queues.clear();
                for _ in 0..READ_BATCH {
                    a.fill_read_order();
                    let Some(polled) = queues.poll_first(&a.read_order, &mut self.empty_queues)
                    else {
                        break;
                    };
                    from_queue = true;
                    a.take(polled, &self.consumer)?;
                }
            }
            (!queues.is_empty(), queues.draining())
        };
        let wait = if from_queue || draining {
            Duration::ZERO
        } else if self.marker.is_some() {
            // a marker out: back soon to see whether it has come back
            IDLE_WAIT
        } else if !split {
            Duration::from_millis(100)
        } else {
            IDLE_WAIT
        };
        let polled = self.consumer.poll(wait);
        self.health.polled();
        let mut a = lock(&self.shared);
        if let Some(e) = a.failed.take() {
            return Err(e);
        }
        match polled {
            Some(polled) => a.take(polled, &self.consumer)?,
            None if draining => {
                drop(a);
                self.consumer.context().queues().drained();
            }
            None => {}
        }
        Ok(())
    }

    /// Stops reading the input while the scorer or the producer is behind, or while an overdue
    /// checkpoint waits for them to catch up, and reads again once both are below half their
    /// bound and no checkpoint waits.
    ///
    /// With the partitions split into their own queues, ingest simply leaves those queues
    /// unread (`read_once`): librdkafka stops fetching a partition once its queue holds
    /// `queued.min.messages` or `queued.max.messages.kbytes`, and fetching goes on from where it
    /// stopped. Pausing and resuming in the consumer would restart the partition's fetch at the
    /// application's position, which on Tansu 0.6.0 may be inside a record batch and return
    /// nothing until the offset guard rewinds (the load run's slow rounds: 12 backpressure
    /// turns and 73 rewinds in one run). Without split queues every assigned partition is
    /// paused instead. Either way polling goes on, so the group session and rebalances are
    /// served.
    fn apply_backpressure(&mut self) {
        let (backlog, in_flight, skus) = {
            let a = lock(&self.shared);
            (
                self.backlog.get(),
                usize::try_from(a.publisher.in_flight()).unwrap_or(0),
                a.skus_at_close,
            )
        };
        let b = self.backpressure;
        let max_backlog = b.scoring_backlog_bound(skus);
        let hold = self.held_for_checkpoint;
        let over = hold || backlog > max_backlog || in_flight > b.max_publish_in_flight;
        let under = !hold && backlog <= max_backlog / 2 && in_flight <= b.max_publish_in_flight / 2;
        let change = if !self.backpressured && over {
            Some(true)
        } else if self.backpressured && under {
            Some(false)
        } else {
            None
        };
        let split = !self.consumer.context().queues().is_empty();
        // while held off, partitions assigned meanwhile are paused on each turn too
        let pause = change.unwrap_or(true);
        if !split && (self.backpressured || change.is_some()) && !self.pause_consumer(pause) {
            return;
        }
        if let Some(p) = change {
            self.backpressured = p;
            let mut a = lock(&self.shared);
            a.stats.set_paused(p);
            if !p {
                if !split {
                    // everything was resumed: alignment pauses again what is still ahead
                    a.alignment.forget_pauses();
                }
                a.guard.touch_all();
            }
            tracing::debug!(paused = p, split, backlog, in_flight, hold, "backpressure");
        }
    }

    /// Pauses (`pause`) or resumes the whole assignment in the consumer. False when the
    /// consumer refused.
    fn pause_consumer(&self, pause: bool) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        let result = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not pause/resume partitions");
            return false;
        }
        true
    }
}

impl IngestState {
    fn topic_of(&self, source: Source) -> &str {
        match source {
            Source::Sales => &self.sales_topic,
            Source::Clicks => &self.clicks_topic,
        }
    }

    fn source_of(&self, topic: &str) -> Source {
        if topic == self.sales_topic {
            Source::Sales
        } else {
            Source::Clicks
        }
    }

    /// The input pair of `topic`'s `partition` (`None`: not an input topic).
    fn pair_of(&self, topic: &str, partition: i32) -> Option<Pair> {
        let source = if topic == self.sales_topic {
            Source::Sales
        } else if topic == self.clicks_topic {
            Source::Clicks
        } else {
            return None;
        };
        Some((source, u16::try_from(partition).ok()?))
    }

    /// Fills `read_order` with the owned input pairs to read, furthest behind in event time
    /// first (one that has delivered nothing before all), leaving out those the frontier
    /// holds back and those with held messages still to apply.
    fn fill_read_order(&mut self) {
        self.fill_pairs();
        self.pairs.sort_unstable_by_key(|(_, wm)| *wm);
        let (line, held) = (self.hold_line, &self.held);
        self.read_order.clear();
        self.read_order.extend(
            self.pairs
                .iter()
                .filter(|(key, wm)| !held_back(line, held, *key, *wm))
                .map(|(key, _)| *key),
        );
    }

    /// Takes one polled result: a message is offered, an error logged (librdkafka retries).
    fn take(
        &mut self,
        polled: KafkaResult<BorrowedMessage<'_>>,
        consumer: &BaseConsumer<IngestContext>,
    ) -> Result<(), IngestError> {
        match polled {
            Ok(msg) => self.offer(&msg, consumer),
            Err(e) => {
                tracing::warn!(error = %e, "consumer error (librdkafka retries on its own)");
                Ok(())
            }
        }
    }

    /// Takes one delivered message: the offset guard first (it judges the broker's delivery
    /// order, so it sees every message as it arrives), then applies it, or holds it back while
    /// its pair is ahead of the frontier (`holdback`); then applies what the frontier now reaches.
    fn offer(
        &mut self,
        msg: &BorrowedMessage<'_>,
        consumer: &BaseConsumer<IngestContext>,
    ) -> Result<(), IngestError> {
        let source = self.source_of(msg.topic());
        let Ok(partition) = u16::try_from(msg.partition()) else {
            return Ok(());
        };
        if !self.checkpoints.owns(partition) {
            // assigned without a callback having restored it (should not happen): restore now
            self.restore(partition, consumer);
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
        }
        // one clock read per message: alignment and the offset guard judge idleness by it
        let now = Instant::now();
        if !self.guard_admits(source, partition, msg, consumer, now) {
            return Ok(());
        }
        let key = (source, partition);
        let ahead = self
            .hold_line
            .holds(self.admission.watermark(source, msg.partition()));
        if self.held.holding(key) || ahead {
            self.held.push(key, msg.detach());
            self.stats.held_back.add(1);
            // the partition is delivering: alignment must not take it for idle
            self.alignment.touch(source, partition, now);
        } else {
            self.apply_message(source, partition, msg, now)?;
        }
        self.release_held(now)
    }

    /// Applies held messages of every pair back within reach of the frontier, in order.
    fn release_held(&mut self, now: Instant) -> Result<(), IngestError> {
        while self.held.total() > 0 && self.released_at != Some(self.hold_line) {
            // applying may move the line again: then look once more
            self.released_at = Some(self.hold_line);
            for key in self.held.keys() {
                while !self
                    .hold_line
                    .holds(self.admission.watermark(key.0, i32::from(key.1)))
                {
                    let Some(msg) = self.held.pop(key) else {
                        break;
                    };
                    self.apply_message(key.0, key.1, &msg, now)?;
                }
            }
        }
        Ok(())
    }

    /// Applies one message the offset guard admitted: decode, admission, window, scorer.
    fn apply_message<M: Message>(
        &mut self,
        source: Source,
        partition: u16,
        msg: &M,
        now: Instant,
    ) -> Result<(), IngestError> {
        // An Avro value is decoded as the JSON it becomes (the event borrows from it). First of
        // all: a registry that cannot be asked stops ingest before the offset counts as read,
        // so no checkpoint (not even the one at revocation) commits past the value.
        let transcoded = self
            .avro
            .transcode(msg.payload(), self.limits.max_payload_bytes)
            .map_err(IngestError::Registry)?;
        if !self
            .checkpoints
            .admit_offset(source, partition, msg.offset())
        {
            self.stats.replay_skipped.add(1);
            return Ok(());
        }
        self.stats.consumed(source).add(1);
        self.alignment.touch(source, partition, now);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let wm_before = self.admission.watermark(source, msg.partition());
        let event = match self.decode_event(source, msg, &transcoded, now_ms) {
            Ok(event) => event,
            Err(rejection) => return self.reject(msg, &rejection),
        };
        if !self.checkpoints.sku_needs(&event.sku, source, msg.offset()) {
            self.stats.replay_skipped.add(1);
            return Ok(());
        }
        self.admission.store().clock().advance_watermark(event.ts);
        // only a partition at (or below) the frontier can move it
        let at_frontier = match (self.admission.store().clock().frontier(), wm_before) {
            (Some(f), Some(w)) => w <= f,
            _ => true,
        };
        if at_frontier {
            self.advance_frontier(msg.timestamp().to_millis(), now);
        }
        match self.admission.apply(msg.partition(), &event) {
            Ok(notify) => {
                self.stats.window_updates.add(1);
                if let Some((sku, from)) = notify {
                    self.scorer
                        .send(ScorerMsg::Dirty(sku, from))
                        .map_err(|_| IngestError::ScorerGone)?;
                }
            }
            Err(rejection) => self.reject(msg, &rejection)?,
        }
        Ok(())
    }

    /// Decodes `msg` (or the JSON its Avro value became, `transcoded`) and judges its lateness.
    fn decode_event<'a, M: Message>(
        &mut self,
        source: Source,
        msg: &'a M,
        transcoded: &'a Transcoded,
        now_ms: i64,
    ) -> Result<Event<'a>, Rejection> {
        let (event, unknown) = match transcoded {
            Err(rejection) => return Err(rejection.clone()),
            Ok(Some(json)) => {
                decode_counting(source, msg.key(), Some(json), &self.avro_limits, now_ms)?
            }
            Ok(None) => decode_counting(source, msg.key(), msg.payload(), &self.limits, now_ms)?,
        };
        if unknown > 0 {
            self.stats.unknown_fields(source).add(u64::from(unknown));
        }
        self.admission.judge(source, msg.partition(), event.ts)?;
        Ok(event)
    }

    /// Counts `rejection` and sends `msg` to the dead-letter topic.
    fn reject<M: Message>(&self, msg: &M, rejection: &Rejection) -> Result<(), IngestError> {
        self.stats.rejected(rejection.reason).add(1);
        tracing::debug!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), %rejection, "message rejected");
        dead_letter::send(&self.publisher, &self.dead_letter_topic, msg, rejection)?;
        Ok(())
    }

    /// Passes the message through the offset guard: false when it is not to be applied (a
    /// duplicate brought back by a rewind, or past a gap, which starts a rewind).
    fn guard_admits<M: Message>(
        &mut self,
        source: Source,
        partition: u16,
        msg: &M,
        consumer: &BaseConsumer<IngestContext>,
        now: Instant,
    ) -> bool {
        match self.guard.check(source, partition, msg.offset(), now) {
            Verdict::Apply => true,
            Verdict::ApplyAfterGap { missing } => {
                self.stats.offsets_missing.add(missing.unsigned_abs());
                tracing::warn!(
                    topic = msg.topic(),
                    partition,
                    offset = msg.offset(),
                    missing,
                    "offsets missing from the log (transaction markers or retention): gap accepted"
                );
                true
            }
            Verdict::Duplicate => {
                self.stats.rewind_duplicates.add(1);
                false
            }
            Verdict::Rewind { to } => {
                self.rewind(source, partition, to, consumer);
                false
            }
        }
    }

    /// Seeks `partition` of `source` back to `to` (see [`super::offset_guard`]).
    fn rewind(
        &mut self,
        source: Source,
        partition: u16,
        to: i64,
        consumer: &BaseConsumer<IngestContext>,
    ) {
        self.stats.rewinds.add(1);
        let topic = self.topic_of(source).to_string();
        tracing::debug!(topic, partition, to, "rewinding past a gap or stall");
        let seek = consumer.seek(
            &topic,
            i32::from(partition),
            Offset::Offset(to),
            Duration::from_secs(5),
        );
        if let Err(e) = seek {
            // the guard widens the rewind at the next gap or stall and gives up after its tries
            tracing::warn!(topic, partition, to, error = %e, "rewind seek failed");
        }
    }

    /// Rewinds input partitions that deliver nothing although the broker holds messages past
    /// their expected offset (asked of the broker for idle partitions only). Paused ones wait,
    /// and so do those alignment does not read now ([`Self::quiet_on_purpose`]).
    fn rewind_stalled(&mut self, consumer: &BaseConsumer<IngestContext>, all_paused: bool) {
        let idle = self.guard.idle();
        if all_paused || idle.is_empty() {
            return;
        }
        self.report_waiting(&idle);
        let mut highs = HashMap::new();
        let mut quiet = Vec::new();
        for (source, p) in idle {
            if self.quiet_on_purpose(source, p) {
                quiet.push((source, p));
                continue;
            }
            let topic = self.topic_of(source);
            if let Ok((_, high)) =
                consumer.fetch_watermarks(topic, i32::from(p), Duration::from_secs(1))
            {
                highs.insert((source, p), high);
            }
        }
        let stalled = self.guard.stalled(
            |s, p| highs.get(&(s, p)).copied(),
            |s, p| quiet.contains(&(s, p)),
        );
        for (source, partition, to) in stalled {
            self.rewind(source, partition, to, consumer);
        }
    }

    /// True when ingest itself keeps `source`'s `partition` from delivering: paused for
    /// alignment, ahead of the hold line (its queue is not read), or with held messages to
    /// apply first. Such a pair is not stalled, and a rewind would only cost broker requests.
    fn quiet_on_purpose(&self, source: Source, partition: u16) -> bool {
        let key = (source, partition);
        let wm = self.admission.watermark(source, i32::from(partition));
        self.alignment.paused().contains(&key) || held_back(self.hold_line, &self.held, key, wm)
    }

    /// Logs why nothing is read when every owned input pair has been quiet for [`STALL_AFTER`]
    /// while some are marked as having messages waiting: their event times, the hold line and
    /// which pairs may be read (a stall in alignment shows here, not as an error).
    fn report_waiting(&self, idle: &[Pair]) {
        let waiting: Vec<Pair> = self
            .pairs
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| self.alignment.waiting(*key))
            .collect();
        if waiting.is_empty() || idle.len() < self.pairs.len() {
            return;
        }
        tracing::info!(
            pairs = ?self.pairs,
            ?waiting,
            line = ?self.hold_line,
            readable = ?self.read_order,
            held = self.held.total(),
            "no input partition delivered for a while, though some have messages waiting"
        );
    }

    /// Fills `pairs` with (source, partition) of every owned input partition and its event time
    /// (a buffer reused because the frontier is recomputed on the hot path).
    fn fill_pairs(&mut self) {
        self.pairs.clear();
        for p in self.checkpoints.owned_iter() {
            for s in Source::ALL {
                self.pairs
                    .push(((s, p), self.admission.watermark(s, i32::from(p))));
            }
        }
    }

    /// Recomputes the frontier; when that closes a bucket, waits for the scorer to finish the
    /// previous close first. `created_ms` is the producer time of the message that moved it.
    fn advance_frontier(&mut self, created_ms: Option<i64>, now: Instant) {
        self.fill_pairs();
        let assessment = self.alignment.assess(&self.pairs, self.lead_ms, now);
        self.hold_line = assessment.hold_line;
        let Some(frontier) = assessment.frontier else {
            return;
        };
        let store = self.admission.store();
        if store.clock().frontier().is_some_and(|f| f >= frontier) {
            return;
        }
        let before = store.clock().closed_index();
        let after = store.clock().closed_for(frontier);
        if before.is_none_or(|c| after > c) {
            // a bucket closes: let the scorer finish the previous close first
            let waited = Instant::now();
            if !flush_scorer(
                &self.scorer,
                false,
                FlushPoint::Copied,
                CLOSE_BARRIER_TIMEOUT,
            ) {
                tracing::warn!("scorer did not copy a close's windows in time");
            }
            let ms = u64::try_from(waited.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.stats.close_wait_ms.add(ms);
            // nothing was read while ingest waited: the offset guard's stall watch must not
            // take that silence for a broker that withholds messages
            self.guard.touch_all();
            store.closes().record(after, created_ms);
            self.skus_at_close = store.len();
        }
        store.clock().raise_frontier(frontier);
    }

    /// Refreshes which input partitions have messages waiting (librdkafka's cached high
    /// watermarks) and pauses those too far ahead of the frontier, resuming those back within
    /// reach. While backpressure has paused everything, nothing is resumed here.
    fn align(&mut self, consumer: &BaseConsumer<IngestContext>, backpressure_paused: bool) {
        // statistics not in yet keep the mark the broker gave at assignment
        self.mark_lag(None, |topic, p| consumer.context().high(topic, p));
        self.advance_frontier(None, Instant::now());
        let held = &self.held;
        let plan = self
            .alignment
            .plan(&self.pairs, |key| held.len(key), HOLD_LIMIT);
        let list = |pairs: &[(Source, u16)]| {
            let mut tpl = TopicPartitionList::new();
            for (s, p) in pairs {
                tpl.add_partition(self.topic_of(*s), i32::from(*p));
            }
            tpl
        };
        if !plan.pause.is_empty() {
            tracing::info!(pairs = ?plan.pause, held = self.held.total(), line = ?self.hold_line, "pausing partitions that hold too much ahead of the frontier");
            if let Err(e) = consumer.pause(&list(&plan.pause)) {
                tracing::warn!(error = %e, "could not pause a partition holding too much");
            }
        }
        if !plan.resume.is_empty() && !backpressure_paused {
            if let Err(e) = consumer.resume(&list(&plan.resume)) {
                tracing::warn!(error = %e, "could not resume a partition");
            }
            for (s, p) in &plan.resume {
                self.guard.touch(*s, *p);
            }
        }
    }

    /// Marks each owned input partition as caught up or not from the broker's high watermarks
    /// (asked now, not cached; a failed request leaves the mark as it was).
    /// `only` limits it to one partition: a newly assigned one is asked at once, so alignment
    /// need not count it as waiting until the first statistics arrive (`alignment` docs).
    fn refresh_lag_from_broker(
        &mut self,
        consumer: &BaseConsumer<IngestContext>,
        only: Option<u16>,
    ) {
        self.mark_lag(only, |topic, p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .ok()
                .map(|(_, high)| high)
        });
    }

    /// Marks each owned (source, partition), or only those of partition `only`, as having
    /// messages waiting when its high watermark (from `high`; `None` = unknown, the mark stays,
    /// and a pair never marked counts as waiting) is past the next offset to read.
    fn mark_lag(&mut self, only: Option<u16>, high: impl Fn(&str, i32) -> Option<i64>) {
        for p in self
            .checkpoints
            .owned_iter()
            .filter(|p| only.is_none_or(|o| o == *p))
        {
            let next = self.checkpoints.next_offsets(p);
            for (s, topic) in [
                (Source::Sales, &self.sales_topic),
                (Source::Clicks, &self.clicks_topic),
            ] {
                if let Some(h) = high(topic, i32::from(p)) {
                    self.alignment.set_lagging(s, p, h > next[s].max(0));
                }
            }
        }
    }

    fn housekeeping(&mut self) {
        let store = self.admission.store().clone();
        let admission = &self.admission;
        store.evict_idle_by(|s, p| admission.watermark(s, i32::from(p)));
        // capacity evictions happen inside `apply`, while events are admitted: both are noted
        // in the store and counted here
        let evicted = store.evictions().take_counts();
        self.stats.evicted(evicted.idle, evicted.capacity);
        self.stats.set_skus(store.len());
    }

    /// Restores `partition` from its checkpoint, resuming after its committed offsets.
    fn restore(&mut self, partition: u16, consumer: &BaseConsumer<IngestContext>) {
        let committed = self.committed(partition, consumer);
        self.alignment.assign(partition);
        for s in Source::ALL {
            self.guard.track(s, partition, committed[s]);
        }
        let committed = committed.map(|c| c.unwrap_or(0));
        match self
            .checkpoints
            .restore(partition, committed, &mut self.admission, &self.scorer)
        {
            Ok(r) => {
                self.stats.restored(r.took);
                tracing::info!(
                    partition = r.partition,
                    from = %r.from,
                    skus = r.skus,
                    next = ?r.next,
                    took_ms = r.took.as_millis() as u64,
                    "partition state restored"
                );
                self.refresh_lag_from_broker(consumer, Some(partition));
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "partition state could not be restored");
                self.failed = Some(e.into());
            }
        }
    }

    /// Committed offsets (sales, clicks) of `partition`; `None` when none (or unknown).
    fn committed(
        &self,
        partition: u16,
        consumer: &BaseConsumer<IngestContext>,
    ) -> PerSource<Option<i64>> {
        let mut tpl = TopicPartitionList::new();
        let p = i32::from(partition);
        tpl.add_partition(&self.sales_topic, p);
        tpl.add_partition(&self.clicks_topic, p);
        let mut out = PerSource::both(None);
        match consumer.committed_offsets(tpl, Duration::from_secs(10)) {
            Ok(list) => {
                for e in list.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        out[self.source_of(e.topic())] = Some(o);
                    }
                }
            }
            Err(e) => tracing::warn!(partition, error = %e, "committed offsets unknown"),
        }
        out
    }

    /// Checkpoints `partitions` (all owned when empty) and commits their offsets, waiting at
    /// most `patience` for the scorer and the broker.
    fn checkpoint(
        &mut self,
        partitions: &[u16],
        consumer: &BaseConsumer<IngestContext>,
        patience: Duration,
    ) {
        let started = Instant::now();
        let cuts = self.checkpoints.checkpoint(
            partitions,
            &self.admission,
            &self.scorer,
            &self.publisher,
            patience,
        );
        self.commit(&cuts, started, consumer);
    }

    /// Begins the periodic checkpoint of every owned partition: its marker goes through the
    /// scorer while the loop holds input.
    fn mark_checkpoint(&mut self) -> Option<Marker> {
        self.checkpoints
            .mark(&[], &self.admission, &self.scorer, PERIODIC_PATIENCE)
    }

    /// Looks whether the periodic checkpoint's marker has come back; if so, writes the
    /// checkpoint and commits its offsets. Returns the marker still out, if any.
    fn follow_marker(
        &mut self,
        marker: Marker,
        consumer: &BaseConsumer<IngestContext>,
    ) -> Option<Marker> {
        let started = marker.started();
        match marker.wait(Duration::ZERO) {
            Passage::Waiting => Some(marker),
            Passage::Lost => {
                tracing::warn!("checkpoint skipped: the scorer did not drain in time");
                None
            }
            Passage::Passed => {
                match self.checkpoints.complete(
                    marker,
                    &self.admission,
                    &self.scorer,
                    &self.publisher,
                ) {
                    Completion::Again(next) => Some(next),
                    Completion::Written(cuts) => {
                        self.commit(&cuts, started, consumer);
                        None
                    }
                }
            }
        }
    }

    /// Commits the offsets of the checkpoints written (`cuts`), begun at `started`.
    fn commit(
        &mut self,
        cuts: &[(u16, PerSource<i64>)],
        started: Instant,
        consumer: &BaseConsumer<IngestContext>,
    ) {
        // ingest read nothing while the checkpoint waited for the scorer (see advance_frontier)
        self.guard.touch_all();
        let mut tpl = TopicPartitionList::new();
        for (p, next) in cuts {
            for (topic, offset) in [
                (&self.sales_topic, next[Source::Sales]),
                (&self.clicks_topic, next[Source::Clicks]),
            ] {
                if offset >= 0 {
                    if let Err(e) =
                        tpl.add_partition_offset(topic, i32::from(*p), Offset::Offset(offset))
                    {
                        tracing::warn!(error = %e, "offset not committed");
                    }
                }
            }
        }
        if tpl.count() > 0 {
            match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => self.stats.checkpointed(started.elapsed()),
                Err(e) => {
                    tracing::warn!(error = %e, "offsets not committed (next checkpoint retries)")
                }
            }
        }
    }

    /// Checkpoints and commits revoked partitions, then drops their state.
    fn revoke(&mut self, partitions: &[u16], consumer: &BaseConsumer<IngestContext>) {
        let owned: Vec<u16> = partitions
            .iter()
            .copied()
            .filter(|p| self.checkpoints.owns(*p))
            .collect();
        if owned.is_empty() {
            return;
        }
        self.checkpoint(&owned, consumer, FINAL_PATIENCE);
        self.checkpoints.release(&owned);
        self.alignment.release(&owned);
        self.held.release(&owned);
        self.guard.release(&owned);
        let dropped = self.admission.store().release(&owned);
        tracing::info!(partitions = ?owned, skus = dropped, "revoked partitions checkpointed and released");
    }
}

#[cfg(test)]
mod tests {
    use super::Backpressure;

    #[test]
    fn the_scoring_backlog_bound_is_at_least_the_skus_held() {
        let b = Backpressure::default();
        assert_eq!(b.scoring_backlog_bound(16_148), 100_000);
        assert_eq!(b.scoring_backlog_bound(1_000_336), 1_000_336);
    }
}
