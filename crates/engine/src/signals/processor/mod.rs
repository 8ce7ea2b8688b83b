//! The signals loop: one consumer on the trend-update and inventory topics, per-partition
//! state, restock signals and rankings out through the engine's producer. The input handlers
//! are in `apply`, state keeping and checkpoints in `persist`, the counters in `stats`.
//!
//! Like ingest it runs on its own OS thread with a blocking `BaseConsumer` (decoding and the
//! policy arithmetic are CPU work). Partitions are checkpointed on an interval, on revocation
//! and at shutdown: the producer is flushed first (so every signal the state implies is
//! acknowledged), then the state table is written (`super::table`: the changelog, flushed,
//! then the local log), then the offsets committed. A crash thus
//! replays input and may repeat a signal (consumers dedupe by `sku` + `seq`), never skips one.

mod apply;
mod persist;
mod stats;

pub use stats::SignalStats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{ClientContext, Offset};

use super::hot::HotProducts;
use super::inventory;
use super::new_product;
use super::state::{self, PartitionSignals, SignalInput, SkuSignals};
use super::table::{SignalTable, TableError};
use super::SignalsSettings;
use crate::catalog::{CatalogEntry, LaunchLibrary, TextEmbedder};
use crate::ingest::avro::{AvroInputs, Transcoded};
use crate::ingest::consumer::partitions_of;
use crate::ingest::dead_letter;
use crate::kafka::KafkaSettings;
use crate::publish::{MessageKind, PublishError, Publisher, SchemaRegistry, TrendUpdate};
use crate::state::ChangelogTopic;
use crate::vocab::{classify, RejectReason, Rejection, DAY_MS};

/// Longest wait for the broker at a periodic checkpoint (skipped and retried when exceeded).
const PERIODIC_PATIENCE: Duration = Duration::from_secs(5);
/// Longest wait for the broker at revocation and shutdown.
const FINAL_PATIENCE: Duration = Duration::from_secs(60);
/// Longest read of one partition's changelog at assignment.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(60);
/// Message key of rankings.
pub const HOT_KEY: &str = "hot-products";

/// Errors that stop the signals component.
#[derive(Debug, thiserror::Error)]
pub enum SignalsError {
    /// The consumer could not be created or subscribed.
    #[error("could not set up the signals consumer")]
    Consumer(#[source] KafkaError),
    /// A message could not be enqueued.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Signal state could not be restored.
    #[error(transparent)]
    State(#[from] TableError),
    /// A signal could not be encoded as JSON.
    #[error("a signal could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// The inputs are not co-partitioned.
    #[error(transparent)]
    Topics(#[from] crate::kafka::TopicError),
    /// The text model or the launch library could not be loaded.
    #[error("new-product forecasts: {0}")]
    Text(String),
    /// The schema of an Avro inventory or catalog value could not be fetched: stopping leaves
    /// its offset where it was, so a restart reads it again.
    #[error("the schema registry could not be asked for a signals input's Avro schema")]
    Registry(#[source] crate::publish::RegistryError),
}

/// What applying one message produced.
#[derive(Default)]
struct Outcome {
    ranking_changed: bool,
    restock: Option<super::restock::RestockSignal>,
    new_product: Option<new_product::NewProductForecast>,
    misrouted: bool,
    /// The SKU whose state the message may have changed.
    changed: Option<String>,
}

impl Outcome {
    fn misrouted() -> Self {
        Self {
            misrouted: true,
            ..Self::default()
        }
    }
}

/// Enqueues `body` as JSON to `topic`, keyed by `key`, with its `schema` in the schema header.
fn send<T: serde::Serialize>(
    publisher: &Publisher,
    topic: &str,
    key: &str,
    body: &T,
    schema: &str,
) -> Result<(), SignalsError> {
    let body = serde_json::to_vec(body).map_err(SignalsError::Encode)?;
    publisher.send(
        MessageKind::Signal,
        topic,
        Some(key.as_bytes()),
        Some(&body),
        Some(crate::publish::headers(&[(
            crate::publish::SCHEMA_HEADER,
            schema.as_bytes(),
        )])),
    )?;
    Ok(())
}

/// The signals component's state, shared by the poll loop and the rebalance callbacks.
struct SignalsState {
    /// Partitions of the trend-update topic (the SKU → state partition map).
    partitions: usize,
    /// Where state is kept (local log, changelog), and what is not yet saved.
    table: SignalTable,
    embedder: Option<TextEmbedder>,
    library: Option<LaunchLibrary>,
    settings: SignalsSettings,
    dead_letter_topic: String,
    publisher: Publisher,
    stats: Arc<SignalStats>,
    parts: BTreeMap<u16, PartitionSignals>,
    ranking_changed: bool,
    failed: Option<SignalsError>,
    /// Avro inventory snapshots and catalog entries, read through the schema registry.
    avro: AvroInputs,
}

/// Consumer context: checkpoint revoked partitions, load assigned ones.
struct SignalsContext {
    shared: Arc<Mutex<SignalsState>>,
}

impl ClientContext for SignalsContext {}

fn lock(shared: &Mutex<SignalsState>) -> MutexGuard<'_, SignalsState> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConsumerContext for SignalsContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions_of(tpl);
            let mut shared = lock(&self.shared);
            shared.checkpoint(&parts, consumer, FINAL_PATIENCE);
            for p in parts {
                shared.parts.remove(&p);
                shared.table.forget(p);
            }
            shared.ranking_changed = true;
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut shared = lock(&self.shared);
            for p in partitions_of(tpl) {
                if !shared.parts.contains_key(&p) {
                    shared.load(p);
                }
            }
        }
    }
}

/// The topics the signals component reads, the trend-update topic first, and its partition
/// count; the inventory and catalog topics must be co-partitioned with it.
fn input_topics(
    kafka: &KafkaSettings,
    settings: &SignalsSettings,
) -> Result<(Vec<String>, usize), SignalsError> {
    let mut topics = vec![settings.updates_topic.clone()];
    let updates = crate::kafka::partition_count(kafka, &settings.updates_topic)?;
    let joined = [
        ("inventory", &settings.inventory_topic),
        ("catalog", &settings.catalog_topic),
    ];
    for (what, topic) in joined {
        let Some(topic) = topic else { continue };
        let n = crate::kafka::partition_count(kafka, topic)?;
        if n != updates {
            return Err(crate::kafka::TopicError {
                topic: topic.clone(),
                reason: format!(
                    "{what} topic has {n} partitions but the trend-update topic {} has \
                     {updates}: they must be co-partitioned (same count, keyed by SKU)",
                    settings.updates_topic
                ),
            }
            .into());
        }
        topics.push(topic.clone());
    }
    Ok((topics, updates))
}

/// The text embedder and launch library of new-product forecasts, when a catalog topic is read.
fn text_models(
    settings: &SignalsSettings,
) -> Result<(Option<TextEmbedder>, Option<LaunchLibrary>), SignalsError> {
    Ok(
        match (
            &settings.catalog_topic,
            &settings.text_model,
            &settings.launch_library,
        ) {
            (Some(_), Some(dir), Some(lib)) => (
                Some(
                    TextEmbedder::load(dir, settings.onnxruntime_library.as_deref(), 1)
                        .map_err(|e| SignalsError::Text(e.to_string()))?,
                ),
                Some(LaunchLibrary::load(lib).map_err(|e| SignalsError::Text(e.to_string()))?),
            ),
            _ => (None, None),
        },
    )
}

/// The running component (see the module docs).
pub struct Signals {
    consumer: BaseConsumer<SignalsContext>,
    shared: Arc<Mutex<SignalsState>>,
    stats: Arc<SignalStats>,
}

impl Signals {
    /// Checks co-partitioning, creates the consumer and subscribes.
    pub fn new(
        kafka: &KafkaSettings,
        settings: SignalsSettings,
        checkpoint_dir: Option<&std::path::Path>,
        publisher: Publisher,
    ) -> Result<Self, SignalsError> {
        let (topics, updates) = input_topics(kafka, &settings)?;
        let (embedder, library) = text_models(&settings)?;
        let changelog = match &settings.changelog_topic {
            Some(topic) => {
                crate::kafka::ensure_changelog(kafka, topic, updates)?;
                Some(ChangelogTopic::new(topic))
            }
            None => None,
        };
        let table = SignalTable::new(settings.state_dir(checkpoint_dir), changelog, kafka.clone())?;
        let mut config = kafka.consumer_config();
        config.set("group.id", &settings.group_id);
        let stats = Arc::new(SignalStats::new());
        let shared = Arc::new(Mutex::new(SignalsState {
            partitions: updates,
            table,
            embedder,
            library,
            settings,
            dead_letter_topic: kafka.dead_letter_topic.clone(),
            publisher,
            stats: stats.clone(),
            parts: BTreeMap::new(),
            ranking_changed: false,
            failed: None,
            avro: AvroInputs::new(None),
        }));
        let consumer: BaseConsumer<SignalsContext> = config
            .create_with_context(SignalsContext {
                shared: shared.clone(),
            })
            .map_err(SignalsError::Consumer)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(SignalsError::Consumer)?;
        Ok(Self {
            consumer,
            shared,
            stats,
        })
    }

    /// Reads Avro inventory snapshots and catalog entries through `registry` (as ingest reads
    /// Avro sales and clicks, `crate::ingest::avro`); without one, those inputs are JSON only.
    pub fn read_avro_through(self, registry: Option<SchemaRegistry>) -> Self {
        lock(&self.shared).avro = AvroInputs::new(registry);
        self
    }

    /// Counters.
    pub fn stats(&self) -> Arc<SignalStats> {
        self.stats.clone()
    }

    /// Polls until `stop` is set; then publishes a last ranking, checkpoints and leaves.
    pub fn run(self, stop: &AtomicBool) -> Result<(), SignalsError> {
        let (mut saved, mut ranked) = (Instant::now(), Instant::now());
        while !stop.load(Ordering::Acquire) {
            let polled = self.consumer.poll(Duration::from_millis(100));
            let mut shared = lock(&self.shared);
            if let Some(e) = shared.failed.take() {
                return Err(e);
            }
            match polled {
                Some(Ok(msg)) => shared.handle(&msg)?,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "signals consumer error (librdkafka retries)")
                }
                None => {}
            }
            if ranked.elapsed() >= shared.settings.hot_interval {
                shared.publish_ranking()?;
                ranked = Instant::now();
            }
            if saved.elapsed() >= shared.settings.checkpoint_interval {
                shared.checkpoint(&[], &self.consumer, PERIODIC_PATIENCE);
                saved = Instant::now();
            }
        }
        let mut shared = lock(&self.shared);
        shared.publish_ranking()?;
        shared.checkpoint(&[], &self.consumer, FINAL_PATIENCE);
        drop(shared);
        self.consumer.unsubscribe();
        Ok(())
    }
}

impl SignalsState {
    fn input_of(&self, topic: &str) -> SignalInput {
        if topic == self.settings.updates_topic {
            SignalInput::Updates
        } else if self.settings.catalog_topic.as_deref() == Some(topic) {
            SignalInput::Catalog
        } else {
            SignalInput::Inventory
        }
    }

    /// The partition whose state holds `sku`: where the trend-update topic's partitioner
    /// (murmur2, the Java default) puts it; `None` when this instance does not own it.
    fn home(&self, sku: &str) -> Option<u16> {
        let p = crate::kafka::murmur2_partition(sku.as_bytes(), self.partitions);
        u16::try_from(p).ok().filter(|p| self.parts.contains_key(p))
    }

    /// The JSON an Avro inventory snapshot, catalog entry or trend update becomes (`None`: read
    /// the value as it is), or the rejection it gets. A registry that cannot be asked is an
    /// error, returned before the offset advances, so a restart reads the value again. Trend
    /// updates are the engine's own, Avro under `[schema_registry] output_format = "avro"`. No
    /// size limit: the decoders bound what they keep.
    fn transcode(
        &mut self,
        input: SignalInput,
        msg: &BorrowedMessage<'_>,
    ) -> Result<Transcoded, SignalsError> {
        let transcoded = match input {
            SignalInput::Updates => self.avro.transcode_output(msg.payload()),
            _ => self.avro.transcode(msg.payload(), usize::MAX),
        };
        transcoded.map_err(SignalsError::Registry)
    }

    fn handle(&mut self, msg: &BorrowedMessage<'_>) -> Result<(), SignalsError> {
        let Ok(partition) = u16::try_from(msg.partition()) else {
            return Ok(());
        };
        if !self.parts.contains_key(&partition) {
            self.load(partition);
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
        }
        let input = self.input_of(msg.topic());
        if self
            .parts
            .get(&partition)
            .is_none_or(|p| p.seen(input, msg.offset()))
        {
            return Ok(());
        }
        let transcoded = self.transcode(input, msg)?;
        match input {
            SignalInput::Updates => self.stats.updates.add(1),
            SignalInput::Inventory => self.stats.inventory.add(1),
            SignalInput::Catalog => self.stats.catalog.add(1),
        }
        let outcome = transcoded.and_then(|json| self.apply(input, msg, json.as_deref()));
        if let Some(part) = self.parts.get_mut(&partition) {
            part.advance(input, msg.offset());
        }
        match outcome {
            Ok(out) => {
                self.ranking_changed |= out.ranking_changed;
                self.mark_changed(out.changed);
                if out.misrouted {
                    self.stats.misrouted.add(1);
                    if self.stats.misrouted.get() % 1000 == 1 {
                        tracing::warn!(topic = msg.topic(), partition, "a SKU's state partition is owned by another instance: produce every signals input keyed by SKU with the murmur2 (Java default) partitioner and the trend-update topic's partition count");
                    }
                }
                if let Some(signal) = out.restock {
                    let tally = match signal.action {
                        super::restock::RestockAction::Reorder => &self.stats.reorders,
                        super::restock::RestockAction::Clear => &self.stats.clears,
                    };
                    tally.add(1);
                    send(
                        &self.publisher,
                        &self.settings.restock_topic,
                        &signal.sku,
                        &signal,
                        crate::publish::RESTOCK_SIGNAL_SCHEMA,
                    )?;
                }
                if let Some(forecast) = out.new_product {
                    self.stats.new_products.add(1);
                    send(
                        &self.publisher,
                        &self.settings.new_product_topic,
                        &forecast.sku,
                        &forecast,
                        crate::publish::NEW_PRODUCT_SCHEMA,
                    )?;
                }
            }
            Err(rejection) => {
                self.stats.rejected.add(1);
                tracing::debug!(topic = msg.topic(), offset = msg.offset(), %rejection, "signal input rejected");
                dead_letter::send(&self.publisher, &self.dead_letter_topic, msg, &rejection)?;
            }
        }
        Ok(())
    }

    /// Publishes the ranking over the owned partitions when it changed since the last one.
    fn publish_ranking(&mut self) -> Result<(), SignalsError> {
        let (Some(topic), true) = (&self.settings.hot_topic, self.ranking_changed) else {
            return Ok(());
        };
        let entries = self.parts.values().flat_map(|p| {
            p.skus
                .iter()
                .filter_map(|(sku, s)| s.hot.as_ref().map(|h| (sku.as_str(), h)))
        });
        let ranking = HotProducts::new(
            entries,
            self.parts.keys().copied().collect(),
            &self.settings.hot,
        );
        send(
            &self.publisher,
            topic,
            HOT_KEY,
            &ranking,
            crate::publish::HOT_PRODUCTS_SCHEMA,
        )?;
        self.stats.rankings.add(1);
        self.ranking_changed = false;
        Ok(())
    }
}
