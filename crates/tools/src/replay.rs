//! `trendcast replay`: produce a historical event log into Kafka as a load test.
//!
//! Events are sorted by event time and produced keyed by SKU to the sales or clicks topic, with
//! their event time unchanged in the payload. Pacing is either as fast as possible or real time
//! × N (event-time gaps divided by N). `--clones K` synthesises a larger log by repeating every
//! event for K−1 extra SKUs named `<sku>~<k>`; the summary says how many events are synthetic.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::Serialize;

use crate::datasets::EventRecord;
use trendcast_engine::kafka::KafkaSettings;

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Event-time speed-up (e.g. 3600 = one hour of events per second); `None` = as fast as possible.
    pub speed: Option<f64>,
    /// Steady production rate in events per second (instead of event-time pacing).
    pub rate: Option<f64>,
    /// Copies per real SKU (1 = the log as is).
    pub clones: u32,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Events produced and acknowledged.
    pub events: u64,
    /// Of which sales events.
    pub sales: u64,
    /// Of which click events.
    pub clicks: u64,
    /// Events that are synthetic clones of real ones.
    pub synthetic_events: u64,
    /// Distinct SKUs produced (real + synthetic).
    pub skus: u64,
    /// First and last event time (ms).
    pub event_time_span_ms: [i64; 2],
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Events per second.
    pub rate_per_s: f64,
    /// The pacing asked for.
    pub speed: Option<f64>,
}

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The producer could not be created.
    #[error("could not create the replay producer")]
    Producer(#[source] KafkaError),
    /// A message was refused.
    #[error("could not produce to {topic}")]
    Produce {
        /// Topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Not everything was acknowledged in time.
    #[error("the broker did not acknowledge every message")]
    Flush(#[source] KafkaError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
}

/// Counts messages the broker did not take.
#[derive(Default)]
struct ReplayContext {
    failed: AtomicU64,
}

impl ClientContext for ReplayContext {}

impl ProducerContext for ReplayContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::error!(error = %e, "replay message not delivered");
            }
        }
    }
}

/// The SKU of clone `k` of `sku` (`k = 0` is the real SKU).
pub fn clone_sku(sku: &str, k: u32) -> String {
    if k == 0 {
        sku.to_string()
    } else {
        format!("{sku}~{k}")
    }
}

/// Produces `events` (sorted here by event time) to the topics in `kafka`.
pub fn run(
    kafka: &KafkaSettings,
    mut events: Vec<EventRecord>,
    options: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    if options.clones == 0 {
        return Err(ReplayError::Options("--clones must be at least 1".into()));
    }
    if let Some(s) = options.speed {
        if !(s.is_finite() && s > 0.0) {
            return Err(ReplayError::Options(
                "--speed must be a positive number".into(),
            ));
        }
    }
    events.sort_by_key(EventRecord::ts);
    let mut config = kafka.producer_config();
    config
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000");
    let producer: ThreadedProducer<ReplayContext> = config
        .create_with_context(ReplayContext::default())
        .map_err(ReplayError::Producer)?;

    let total = events.len() as u64 * u64::from(options.clones);
    let bar = progress_bar(total, options.progress);
    let first_ts = events.first().map(EventRecord::ts).unwrap_or(0);
    let last_ts = events.last().map(EventRecord::ts).unwrap_or(0);
    let mut summary = ReplaySummary {
        events: 0,
        sales: 0,
        clicks: 0,
        synthetic_events: 0,
        skus: 0,
        event_time_span_ms: [first_ts, last_ts],
        elapsed_s: 0.0,
        rate_per_s: 0.0,
        speed: options.speed,
    };
    let mut skus: HashSet<String> = HashSet::new();
    let started = Instant::now();
    for event in &events {
        pace(options, started, summary.events, event.ts() - first_ts);
        for k in 0..options.clones {
            let record = if k == 0 {
                event.clone()
            } else {
                event.with_sku(clone_sku(event.sku(), k))
            };
            let (topic, payload) = encode(kafka, &record, &mut summary)?;
            if !skus.contains(record.sku()) {
                skus.insert(record.sku().to_string());
            }
            send(&producer, topic, record.sku(), &payload)?;
            summary.events += 1;
            if k > 0 {
                summary.synthetic_events += 1;
            }
        }
        if summary.events % 4096 < u64::from(options.clones) {
            bar.set_position(summary.events);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(ReplayError::Flush)?;
    bar.finish_and_clear();
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(ReplayError::Options(format!(
            "{failed} of {} messages were not delivered",
            summary.events
        )));
    }
    summary.skus = skus.len() as u64;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.rate_per_s = (summary.events as f64 / summary.elapsed_s.max(1e-9)).round();
    Ok(summary)
}

/// The topic and JSON of one event, counted in `summary` by kind.
fn encode<'k>(
    kafka: &'k KafkaSettings,
    record: &EventRecord,
    summary: &mut ReplaySummary,
) -> Result<(&'k str, Vec<u8>), ReplayError> {
    let (topic, payload) = match record {
        EventRecord::Sale(s) => {
            summary.sales += 1;
            (&kafka.sales_topic, serde_json::to_vec(s))
        }
        EventRecord::Click(c) => {
            summary.clicks += 1;
            (&kafka.clicks_topic, serde_json::to_vec(c))
        }
    };
    let payload =
        payload.map_err(|e| ReplayError::Options(format!("cannot encode an event: {e}")))?;
    Ok((topic, payload))
}

/// A progress bar over `total` events (hidden unless `show`).
fn progress_bar(total: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Sleeps until the next event is due: `sent` events into the run at `--rate`, or `since_first_ms`
/// of event time into the log at `--speed`.
fn pace(options: &ReplayOptions, started: Instant, sent: u64, since_first_ms: i64) {
    let due = |d: Duration| {
        let now = started.elapsed();
        if d > now {
            std::thread::sleep(d - now);
        }
    };
    if let Some(rate) = options.rate {
        due(Duration::from_secs_f64(sent as f64 / rate));
    }
    if let Some(speed) = options.speed {
        due(Duration::from_secs_f64(
            (since_first_ms as f64 / 1000.0 / speed).max(0.0),
        ));
    }
}

/// Enqueues one keyed message, waiting while the producer's queue is full.
fn send(
    producer: &ThreadedProducer<ReplayContext>,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<(), ReplayError> {
    let mut msg = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(msg) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                msg = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((source, _)) => {
                return Err(ReplayError::Produce {
                    topic: topic.to_string(),
                    source,
                })
            }
        }
    }
}
