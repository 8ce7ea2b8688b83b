//! Typed counters: each metric is a handle resolved once, so the hot path never hashes a name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{
    describe_counter, describe_gauge, describe_histogram, Counter, Gauge, Histogram, Unit,
};

use crate::vocab::{PerSource, RejectReason, Source};

/// Events consumed (decoded or not), by source topic.
pub const EVENTS_CONSUMED: &str = "trendcast_events_consumed_total";
/// Events rejected, by reason.
pub const EVENTS_REJECTED: &str = "trendcast_events_rejected_total";
/// Input fields the schemas do not name, skipped (not with `ingest.strict_schema`), by source.
pub const INPUT_UNKNOWN_FIELDS: &str = "trendcast_input_unknown_fields_total";
/// Rejected messages copied to the dead-letter topic.
pub const DEAD_LETTERS: &str = "trendcast_dead_letters_published_total";
/// Window updates applied.
pub const WINDOW_UPDATES: &str = "trendcast_window_updates_total";
/// SKUs held in memory.
pub const WINDOW_SKUS: &str = "trendcast_window_skus";
/// SKUs evicted, by reason.
pub const WINDOW_EVICTIONS: &str = "trendcast_window_evictions_total";
/// Windows per scoring batch.
pub const SCORING_BATCH_SIZE: &str = "trendcast_scoring_batch_windows";
/// Model call latency.
pub const SCORING_LATENCY: &str = "trendcast_scoring_latency_seconds";
/// Windows scored.
pub const WINDOWS_SCORED: &str = "trendcast_windows_scored_total";
/// Trend updates acknowledged by the broker.
pub const UPDATES_PUBLISHED: &str = "trendcast_trend_updates_published_total";
/// Gauge of the rolling coverage of the published intervals, by step and kind (set by
/// `scoring::online`).
pub const INTERVAL_COVERAGE: &str = "trendcast_interval_coverage";
/// Produce failures (after librdkafka's retries).
pub const PUBLISH_ERRORS: &str = "trendcast_publish_errors_total";
/// Produce → acknowledgement latency.
pub const PUBLISH_LATENCY: &str = "trendcast_publish_latency_seconds";
/// Input event (that closed a bucket) → trend update acknowledged by the broker.
pub const EVENT_TO_UPDATE: &str = "trendcast_event_to_update_seconds";
/// SKUs whose bucket closed and that wait to be scored.
pub const SCORING_BACKLOG: &str = "trendcast_scoring_backlog_windows";
/// 1 while ingest has stopped reading its input for backpressure.
pub const CONSUMER_PAUSED: &str = "trendcast_consumer_paused";
/// Times ingest stopped reading its input for backpressure.
pub const CONSUMER_PAUSES: &str = "trendcast_consumer_pauses_total";
/// Milliseconds ingest waited at bucket closes for the scorer to take the closed windows.
pub const CLOSE_WAIT_MS: &str = "trendcast_close_wait_milliseconds_total";
/// Consumer lag summed over assigned partitions (from librdkafka statistics).
pub const CONSUMER_LAG: &str = "trendcast_consumer_lag_messages";
/// Consumer lag of one assigned input partition (labels `topic`, `partition`: bounded by the
/// topics' partition counts, never a SKU).
pub const PARTITION_LAG: &str = "trendcast_consumer_partition_lag_messages";
/// Replayed input messages skipped because restored state already held them.
pub const REPLAY_SKIPPED: &str = "trendcast_replay_skipped_messages_total";
/// Seeks back over an input gap or stall (see `ingest::offset_guard`).
pub const INPUT_REWINDS: &str = "trendcast_input_rewinds_total";
/// Input messages held back in memory because their partition ran ahead of the frontier.
pub const INPUT_HELD_BACK: &str = "trendcast_input_held_back_total";
/// Input messages delivered again by a rewind and dropped.
pub const REWIND_DUPLICATES: &str = "trendcast_input_rewind_duplicates_total";
/// Input offsets the log did not hold (gaps accepted after rewinding).
pub const OFFSETS_MISSING: &str = "trendcast_input_offsets_missing_total";
/// Checkpoints written and committed.
pub const CHECKPOINTS: &str = "trendcast_checkpoints_total";
/// Checkpoint duration (scorer drain, broker acknowledgement, write, commit).
pub const CHECKPOINT_DURATION: &str = "trendcast_checkpoint_duration_seconds";
/// Partition restore duration.
pub const RESTORE_DURATION: &str = "trendcast_restore_duration_seconds";

/// Signal-component inputs consumed, by input (`updates`, `inventory`).
pub const SIGNAL_INPUTS: &str = "trendcast_signal_inputs_consumed_total";
/// Signal-component inputs rejected (dead-lettered), by reason.
pub const SIGNAL_REJECTS: &str = "trendcast_signal_inputs_rejected_total";
/// Restock signals enqueued, by action (`reorder`, `clear`).
pub const RESTOCK_SIGNALS: &str = "trendcast_restock_signals_published_total";
/// Hot-product rankings enqueued.
pub const HOT_RANKINGS: &str = "trendcast_hot_rankings_published_total";
/// Product texts embedded, by outcome (`computed`, `reused`).
pub const TEXT_EMBEDDINGS: &str = "trendcast_text_embeddings_total";
/// New-product forecasts enqueued.
pub const NEW_PRODUCT_FORECASTS: &str = "trendcast_new_product_forecasts_published_total";
/// Signal inputs skipped because their SKU's state partition is owned elsewhere.
pub const SIGNAL_MISROUTED: &str = "trendcast_signal_inputs_misrouted_total";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    describe_counter!(
        SIGNAL_INPUTS,
        Unit::Count,
        "Messages read by the signals component, by input (updates, inventory)."
    );
    describe_counter!(
        SIGNAL_REJECTS,
        Unit::Count,
        "Messages the signals component rejected to the dead-letter topic, by reason."
    );
    describe_counter!(
        RESTOCK_SIGNALS,
        Unit::Count,
        "Restock signals published, by action (reorder, clear)."
    );
    describe_counter!(HOT_RANKINGS, Unit::Count, "Hot-product rankings published.");
    describe_counter!(
        TEXT_EMBEDDINGS,
        Unit::Count,
        "Catalog texts embedded (computed) or found already embedded (reused)."
    );
    describe_counter!(
        NEW_PRODUCT_FORECASTS,
        Unit::Count,
        "New-product forecasts (text only or blended) published."
    );
    describe_counter!(
        SIGNAL_MISROUTED,
        Unit::Count,
        "Signal inputs skipped because another instance owns their SKU's state partition."
    );
    describe_counter!(
        EVENTS_CONSUMED,
        Unit::Count,
        "Input messages consumed, by source topic."
    );
    describe_counter!(
        EVENTS_REJECTED,
        Unit::Count,
        "Input messages rejected, by reason."
    );
    describe_counter!(
        INPUT_UNKNOWN_FIELDS,
        Unit::Count,
        "Input fields the schemas do not name, skipped, by source (a producer's schema grew)."
    );
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Rejected messages acknowledged by the dead-letter topic."
    );
    describe_counter!(
        WINDOW_UPDATES,
        Unit::Count,
        "Events applied to SKU windows."
    );
    describe_gauge!(WINDOW_SKUS, Unit::Count, "SKUs held in memory.");
    describe_counter!(WINDOW_EVICTIONS, Unit::Count, "SKUs evicted, by reason.");
    describe_histogram!(SCORING_BATCH_SIZE, Unit::Count, "Windows per model call.");
    describe_histogram!(SCORING_LATENCY, Unit::Seconds, "Model call latency.");
    describe_counter!(WINDOWS_SCORED, Unit::Count, "Windows scored by the model.");
    describe_counter!(
        UPDATES_PUBLISHED,
        Unit::Count,
        "Trend updates acknowledged by the broker."
    );
    describe_counter!(
        PUBLISH_ERRORS,
        Unit::Count,
        "Trend updates or dead letters that failed to publish."
    );
    describe_histogram!(
        PUBLISH_LATENCY,
        Unit::Seconds,
        "Produce to acknowledgement latency."
    );
    describe_gauge!(
        INTERVAL_COVERAGE,
        Unit::Count,
        "Rolling share of actuals inside the published 80 % interval, per horizon step (and the \
         horizon total), published and before the online adjustment; NaN until compared."
    );
    describe_gauge!(
        SCORING_BACKLOG,
        Unit::Count,
        "Windows whose bucket closed, waiting to be scored."
    );
    describe_gauge!(
        CONSUMER_PAUSED,
        Unit::Count,
        "1 while ingest has stopped reading its input for backpressure."
    );
    describe_counter!(
        CONSUMER_PAUSES,
        Unit::Count,
        "Times ingest stopped reading its input for backpressure."
    );
    describe_counter!(
        CLOSE_WAIT_MS,
        Unit::Milliseconds,
        "Milliseconds ingest waited at bucket closes for the scorer to take the closed windows \
         (slow scoring holding input back)."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Consumer lag over assigned partitions."
    );
    describe_gauge!(
        PARTITION_LAG,
        Unit::Count,
        "Consumer lag of one input partition (0 while not assigned here)."
    );
    describe_counter!(
        REPLAY_SKIPPED,
        Unit::Count,
        "Replayed messages skipped: restored state already held them."
    );
    describe_counter!(
        INPUT_REWINDS,
        Unit::Count,
        "Seeks back over an input gap or a stalled input partition."
    );
    describe_counter!(
        INPUT_HELD_BACK,
        Unit::Count,
        "Input messages held back in memory: their partition ran ahead of the event-time frontier."
    );
    describe_counter!(
        REWIND_DUPLICATES,
        Unit::Count,
        "Input messages delivered again by a rewind and dropped."
    );
    describe_counter!(
        OFFSETS_MISSING,
        Unit::Count,
        "Input offsets the log did not hold (gaps accepted after rewinding)."
    );
    describe_histogram!(
        EVENT_TO_UPDATE,
        Unit::Seconds,
        "Input event that closed a bucket (its producer timestamp) to the bucket's trend update acknowledged by the broker."
    );
    describe_counter!(
        CHECKPOINTS,
        Unit::Count,
        "Checkpoints written and committed."
    );
    describe_histogram!(CHECKPOINT_DURATION, Unit::Seconds, "Checkpoint duration.");
    describe_histogram!(
        RESTORE_DURATION,
        Unit::Seconds,
        "Partition restore duration."
    );
}

/// Counter pair: a metric handle and a local atomic the engine can read back.
#[derive(Debug)]
pub struct ReadableCounter {
    local: AtomicU64,
    metric: Counter,
}

impl ReadableCounter {
    pub(crate) fn new(metric: Counter) -> Self {
        Self {
            local: AtomicU64::new(0),
            metric,
        }
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.local.fetch_add(n, Ordering::Relaxed);
        self.metric.increment(n);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }
}

/// All of the engine's counters and metric handles.
#[derive(Debug)]
pub struct EngineStats {
    consumed: PerSource<ReadableCounter>,
    unknown_fields: PerSource<ReadableCounter>,
    rejected: Vec<ReadableCounter>,
    /// Dead letters acknowledged by the broker.
    pub dead_letters: ReadableCounter,
    /// Events applied to windows.
    pub window_updates: ReadableCounter,
    /// Windows scored.
    pub windows_scored: ReadableCounter,
    /// Trend updates acknowledged.
    pub updates_published: ReadableCounter,
    /// Publish failures.
    pub publish_errors: ReadableCounter,
    evictions_idle: Counter,
    evictions_capacity: Counter,
    skus: Gauge,
    lag: Gauge,
    batch_size: Histogram,
    scoring_latency: Histogram,
    publish_latency: Histogram,
    event_to_update: Histogram,
    backlog_gauge: Gauge,
    paused_gauge: Gauge,
    /// Times ingest stopped reading for backpressure.
    pub pauses: ReadableCounter,
    /// Milliseconds ingest waited at bucket closes for the scorer.
    pub close_wait_ms: ReadableCounter,
    /// Replayed messages skipped because restored state held them.
    pub replay_skipped: ReadableCounter,
    /// Rewinds over input gaps and stalls.
    pub rewinds: ReadableCounter,
    /// Input messages held back in memory (their partition ahead of the frontier).
    pub held_back: ReadableCounter,
    /// Messages a rewind delivered again (dropped).
    pub rewind_duplicates: ReadableCounter,
    /// Offsets accepted as missing from the log.
    pub offsets_missing: ReadableCounter,
    /// Checkpoints committed.
    pub checkpoints: ReadableCounter,
    checkpoint_duration: Histogram,
    restore_duration: Histogram,
}

impl Default for EngineStats {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineStats {
    /// Resolves every handle against the current recorder (a no-op recorder if none is installed).
    pub fn new() -> Self {
        let consumed = PerSource::from_fn(|s| {
            ReadableCounter::new(metrics::counter!(EVENTS_CONSUMED, "source" => s.as_str()))
        });
        let rejected = RejectReason::ALL
            .iter()
            .map(|r| {
                ReadableCounter::new(metrics::counter!(EVENTS_REJECTED, "reason" => r.as_str()))
            })
            .collect();
        let unknown_fields = PerSource::from_fn(|s| {
            ReadableCounter::new(metrics::counter!(INPUT_UNKNOWN_FIELDS, "source" => s.as_str()))
        });
        Self {
            consumed,
            unknown_fields,
            rejected,
            dead_letters: ReadableCounter::new(metrics::counter!(DEAD_LETTERS)),
            window_updates: ReadableCounter::new(metrics::counter!(WINDOW_UPDATES)),
            windows_scored: ReadableCounter::new(metrics::counter!(WINDOWS_SCORED)),
            updates_published: ReadableCounter::new(metrics::counter!(UPDATES_PUBLISHED)),
            publish_errors: ReadableCounter::new(metrics::counter!(PUBLISH_ERRORS)),
            evictions_idle: metrics::counter!(WINDOW_EVICTIONS, "reason" => "idle"),
            evictions_capacity: metrics::counter!(WINDOW_EVICTIONS, "reason" => "capacity"),
            skus: metrics::gauge!(WINDOW_SKUS),
            lag: metrics::gauge!(CONSUMER_LAG),
            batch_size: metrics::histogram!(SCORING_BATCH_SIZE),
            scoring_latency: metrics::histogram!(SCORING_LATENCY),
            publish_latency: metrics::histogram!(PUBLISH_LATENCY),
            event_to_update: metrics::histogram!(EVENT_TO_UPDATE),
            backlog_gauge: metrics::gauge!(SCORING_BACKLOG),
            paused_gauge: metrics::gauge!(CONSUMER_PAUSED),
            pauses: ReadableCounter::new(metrics::counter!(CONSUMER_PAUSES)),
            close_wait_ms: ReadableCounter::new(metrics::counter!(CLOSE_WAIT_MS)),
            replay_skipped: ReadableCounter::new(metrics::counter!(REPLAY_SKIPPED)),
            rewinds: ReadableCounter::new(metrics::counter!(INPUT_REWINDS)),
            held_back: ReadableCounter::new(metrics::counter!(INPUT_HELD_BACK)),
            rewind_duplicates: ReadableCounter::new(metrics::counter!(REWIND_DUPLICATES)),
            offsets_missing: ReadableCounter::new(metrics::counter!(OFFSETS_MISSING)),
            checkpoints: ReadableCounter::new(metrics::counter!(CHECKPOINTS)),
            checkpoint_duration: metrics::histogram!(CHECKPOINT_DURATION),
            restore_duration: metrics::histogram!(RESTORE_DURATION),
        }
    }

    /// A checkpoint was written and committed in `took`.
    pub fn checkpointed(&self, took: Duration) {
        self.checkpoints.add(1);
        self.checkpoint_duration.record(took.as_secs_f64());
    }

    /// A partition was restored in `took`.
    pub fn restored(&self, took: Duration) {
        self.restore_duration.record(took.as_secs_f64());
    }

    /// One input message consumed from `source`.
    pub fn consumed(&self, source: Source) -> &ReadableCounter {
        &self.consumed[source]
    }

    /// Input fields the schemas do not name, skipped in `source`'s events.
    pub fn unknown_fields(&self, source: Source) -> &ReadableCounter {
        &self.unknown_fields[source]
    }

    /// Rejections for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> &ReadableCounter {
        &self.rejected[reason as usize]
    }

    /// Messages consumed from both topics.
    pub fn total_consumed(&self) -> u64 {
        self.consumed.iter().map(ReadableCounter::get).sum()
    }

    /// Messages rejected for any reason.
    pub fn total_rejected(&self) -> u64 {
        self.rejected.iter().map(ReadableCounter::get).sum()
    }

    /// Rejections per reason code, non-zero ones only.
    pub fn rejected_by_reason(&self) -> Vec<(&'static str, u64)> {
        RejectReason::ALL
            .iter()
            .map(|r| (r.as_str(), self.rejected(*r).get()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Records evictions.
    pub fn evicted(&self, idle: u64, capacity: u64) {
        self.evictions_idle.increment(idle);
        self.evictions_capacity.increment(capacity);
    }

    /// Sets the SKU gauge.
    pub fn set_skus(&self, n: usize) {
        self.skus.set(n as f64);
    }

    /// Sets the consumer lag gauge.
    pub fn set_lag(&self, lag: i64) {
        self.lag.set(lag as f64);
    }

    /// Sets one input partition's lag (negative, i.e. unknown or not assigned here, reads 0).
    pub fn set_partition_lag(&self, topic: &str, partition: i32, lag: i64) {
        metrics::gauge!(PARTITION_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
            .set(lag.max(0) as f64);
    }

    /// Records one model call.
    pub fn scored_batch(&self, windows: usize, latency: Duration) {
        self.batch_size.record(windows as f64);
        self.scoring_latency.record(latency.as_secs_f64());
        self.windows_scored.add(windows as u64);
    }

    /// Sets the scoring backlog gauge (windows ready but not yet scored).
    pub fn set_scoring_backlog(&self, n: usize) {
        self.backlog_gauge.set(n as f64);
    }

    /// Records a pause (`true`) or resume (`false`) of the input partitions.
    pub fn set_paused(&self, paused: bool) {
        self.paused_gauge.set(if paused { 1.0 } else { 0.0 });
        if paused {
            self.pauses.add(1);
        }
    }

    /// Records one event→update latency (`ms`, to the acknowledgement).
    pub fn event_to_update(&self, ms: i64) {
        self.event_to_update.record(ms as f64 / 1000.0);
    }

    /// Records one acknowledged publish.
    pub fn published(&self, latency: Duration) {
        self.publish_latency.record(latency.as_secs_f64());
        self.updates_published.add(1);
    }
}

#[cfg(test)]
mod tests {
    //! Docs match the code: every metric the engine registers is described (HELP text on the
    //! endpoint) and listed in the README's metrics table, and the table lists nothing else.

    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    #[derive(Default)]
    struct Names {
        described: Mutex<BTreeSet<String>>,
        registered: Mutex<BTreeSet<String>>,
    }

    impl Names {
        fn describe(&self, key: KeyName) {
            let mut d = self.described.lock().unwrap_or_else(|e| e.into_inner());
            d.insert(key.as_str().to_string());
        }
        fn register(&self, key: &Key) {
            let mut r = self.registered.lock().unwrap_or_else(|e| e.into_inner());
            r.insert(key.name().to_string());
        }
    }

    impl Recorder for Names {
        fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.describe(key)
        }
        fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.describe(key)
        }
        fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.describe(key)
        }
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.register(key);
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.register(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.register(key);
            Histogram::noop()
        }
    }

    fn names() -> (BTreeSet<String>, BTreeSet<String>) {
        let recorder = Names::default();
        metrics::with_local_recorder(&recorder, || {
            super::describe();
            let _engine = super::EngineStats::new();
            let _signals = crate::signals::processor::SignalStats::new();
            crate::scoring::online::register_gauges(2);
        });
        let take = |m: Mutex<BTreeSet<String>>| m.into_inner().unwrap_or_else(|e| e.into_inner());
        (take(recorder.described), take(recorder.registered))
    }

    #[test]
    fn every_registered_metric_is_described() {
        let (described, registered) = names();
        assert!(registered.len() >= 25, "registered: {registered:?}");
        let missing: Vec<_> = registered.difference(&described).collect();
        assert!(
            missing.is_empty(),
            "registered but not described: {missing:?}"
        );
    }

    #[test]
    fn the_readme_metrics_table_lists_exactly_the_registered_metrics() {
        let readme = include_str!("../../../../README.md");
        let listed: BTreeSet<String> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `trendcast_"))
            .filter_map(|l| l.split('`').next())
            .map(|name| format!("trendcast_{name}"))
            .collect();
        let (_, registered) = names();
        let unlisted: Vec<_> = registered.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&registered).collect();
        assert!(unlisted.is_empty(), "not in the README table: {unlisted:?}");
        assert!(
            stale.is_empty(),
            "in the README table, never registered: {stale:?}"
        );
    }
}
