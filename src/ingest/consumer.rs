//! The ingest loop: consume sales and clicks, validate, apply to windows, tell the scorer.
//!
//! It runs on a dedicated OS thread with a `BaseConsumer`: decoding and window updates are CPU
//! work, and a blocking poll loop keeps them off the async reactor without a hop per message.
//! Offsets are stored only after a message has been applied or dead-lettered, and librdkafka
//! auto-commits stored offsets, so a crash replays (never skips) input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use super::admit::Admission;
use super::dead_letter;
use super::event::{decode, Source, ValidationLimits};
use crate::kafka::KafkaSettings;
use crate::publish::{PublishError, Publisher};
use crate::scoring::ScorerMsg;
use crate::telemetry::EngineStats;
use crate::window::WindowStore;

/// Consumer context: logs rebalances and turns librdkafka statistics into the lag gauge.
pub struct IngestContext {
    stats: Arc<EngineStats>,
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        self.stats.set_lag(lag);
    }
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(?rebalance, "partitions being rebalanced");
    }
}

/// When ingest pauses its partitions (from `[ingest]`): while the scorer or the producer is
/// behind, consuming more would only grow memory. Resumes below half of each bound.
#[derive(Debug, Clone, Copy)]
pub struct Backpressure {
    /// Windows waiting to be scored.
    pub max_scoring_backlog: usize,
    /// Messages waiting for the broker's acknowledgement.
    pub max_publish_in_flight: usize,
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
}

/// The ingest loop: the consumer plus the per-message logic.
pub struct Ingest {
    consumer: BaseConsumer<IngestContext>,
    applier: Applier,
    backpressure: Backpressure,
    paused: bool,
}

/// Everything a message is applied with, apart from the consumer itself.
struct Applier {
    admission: Admission,
    publisher: Publisher,
    stats: Arc<EngineStats>,
    limits: ValidationLimits,
    sales_topic: String,
    dead_letter_topic: String,
    scorer: Sender<ScorerMsg>,
}

impl Ingest {
    /// Creates the consumer and subscribes to the sales and clicks topics.
    pub fn new(
        kafka: &KafkaSettings,
        limits: ValidationLimits,
        backpressure: Backpressure,
        store: Arc<WindowStore>,
        publisher: Publisher,
        stats: Arc<EngineStats>,
        scorer: Sender<ScorerMsg>,
    ) -> Result<Self, IngestError> {
        let mut config = kafka.consumer_config();
        if !kafka.properties.contains_key("statistics.interval.ms") {
            config.set("statistics.interval.ms", "5000");
        }
        let consumer: BaseConsumer<IngestContext> = config
            .create_with_context(IngestContext {
                stats: stats.clone(),
            })
            .map_err(IngestError::Consumer)?;
        consumer
            .subscribe(&[&kafka.sales_topic, &kafka.clicks_topic])
            .map_err(IngestError::Consumer)?;
        Ok(Self {
            consumer,
            backpressure,
            paused: false,
            applier: Applier {
                admission: Admission::new(store),
                publisher,
                stats,
                limits,
                sales_topic: kafka.sales_topic.clone(),
                dead_letter_topic: kafka.dead_letter_topic.clone(),
                scorer,
            },
        })
    }

    /// Polls until `stop` is set, then commits the stored offsets and leaves the group.
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), IngestError> {
        let mut housekeeping = Instant::now();
        while !stop.load(Ordering::Acquire) {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(msg)) => {
                    self.applier.handle(&msg)?;
                    if let Err(e) = self.consumer.store_offset_from_message(&msg) {
                        tracing::warn!(error = %e, "could not store offset");
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error (librdkafka retries on its own)")
                }
                None => {}
            }
            self.apply_backpressure();
            if housekeeping.elapsed() >= Duration::from_secs(5) {
                let a = &self.applier;
                let store = a.admission.store();
                let gone = store.evict_idle();
                a.stats.evicted(gone as u64, 0);
                a.stats.set_skus(store.len());
                housekeeping = Instant::now();
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit skipped");
        }
        self.consumer.unsubscribe();
        Ok(())
    }
}

impl Ingest {
    /// Pauses every assigned partition while the scorer or the producer is behind, and resumes
    /// once both are below half their bound. Polling goes on while paused, so the group session
    /// and rebalances are served; partitions assigned while paused are paused too.
    fn apply_backpressure(&mut self) {
        let a = &self.applier;
        let backlog = a.stats.scoring_backlog();
        let in_flight = usize::try_from(a.publisher.in_flight()).unwrap_or(0);
        let b = self.backpressure;
        let over = backlog > b.max_scoring_backlog || in_flight > b.max_publish_in_flight;
        let under =
            backlog <= b.max_scoring_backlog / 2 && in_flight <= b.max_publish_in_flight / 2;
        let change = if !self.paused && over {
            Some(true)
        } else if self.paused && under {
            Some(false)
        } else {
            None
        };
        if self.paused || change.is_some() {
            let Ok(assignment) = self.consumer.assignment() else {
                return;
            };
            let pause = change.unwrap_or(true);
            let result = if pause {
                self.consumer.pause(&assignment)
            } else {
                self.consumer.resume(&assignment)
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not pause/resume partitions");
                return;
            }
            if let Some(p) = change {
                self.paused = p;
                a.stats.set_paused(p);
                tracing::debug!(paused = p, backlog, in_flight, "backpressure");
            }
        }
    }
}

impl Applier {
    fn handle(&mut self, msg: &BorrowedMessage<'_>) -> Result<(), IngestError> {
        let source = if msg.topic() == self.sales_topic {
            Source::Sales
        } else {
            Source::Clicks
        };
        self.stats.consumed(source).add(1);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let closed_before = self.admission.store().closed_index();
        let outcome = decode(source, msg.key(), msg.payload(), &self.limits, now_ms)
            .and_then(|event| self.admission.admit(source, msg.partition(), &event));
        match outcome {
            Ok(notify) => {
                self.stats.window_updates.add(1);
                let store = self.admission.store();
                if let (Some(closed), Some(created)) =
                    (store.closed_index(), msg.timestamp().to_millis())
                {
                    if closed_before != Some(closed) {
                        store.record_close(closed, created);
                        let _ = self.scorer.send(ScorerMsg::Closed);
                    }
                }
                if let Some((sku, from)) = notify {
                    let _ = self.scorer.send(ScorerMsg::Dirty(sku, from));
                }
            }
            Err(rejection) => {
                self.stats.rejected(rejection.reason).add(1);
                tracing::debug!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), %rejection, "message rejected");
                dead_letter::send(&self.publisher, &self.dead_letter_topic, msg, &rejection)?;
            }
        }
        Ok(())
    }
}
