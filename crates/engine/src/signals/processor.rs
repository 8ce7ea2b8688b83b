//! The signals loop: one consumer on the trend-update and inventory topics, per-partition
//! state, restock signals and rankings out through the engine's producer.
//!
//! Like ingest it runs on its own OS thread with a blocking `BaseConsumer` (decoding and the
//! policy arithmetic are CPU work). Partitions are checkpointed on an interval, on revocation
//! and at shutdown: the producer is flushed first (so every signal the state implies is
//! acknowledged), then the state table is written (`super::table`: the changelog, flushed,
//! then the local log), then the offsets committed. A crash thus
//! replays input and may repeat a signal (consumers dedupe by `sku` + `seq`), never skips one.

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
use crate::ingest::consumer::partitions_of;
use crate::ingest::dead_letter;
use crate::kafka::KafkaSettings;
use crate::publish::{MessageKind, PublishError, Publisher, TrendUpdate};
use crate::state::ChangelogTopic;
use crate::telemetry::stats::{
    ReadableCounter, HOT_RANKINGS, NEW_PRODUCT_FORECASTS, RESTOCK_SIGNALS, SIGNAL_INPUTS,
    SIGNAL_MISROUTED, SIGNAL_REJECTS, TEXT_EMBEDDINGS,
};
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
}

/// Counters of the component (bounded labels only).
#[derive(Debug)]
pub struct SignalStats {
    /// Trend updates read.
    pub updates: ReadableCounter,
    /// Inventory snapshots read.
    pub inventory: ReadableCounter,
    /// Messages rejected to the dead-letter topic.
    pub rejected: ReadableCounter,
    /// Reorder signals enqueued.
    pub reorders: ReadableCounter,
    /// Clear signals enqueued.
    pub clears: ReadableCounter,
    /// Rankings enqueued.
    pub rankings: ReadableCounter,
    /// Catalog entries read.
    pub catalog: ReadableCounter,
    /// Texts embedded.
    pub embeddings: ReadableCounter,
    /// Catalog entries whose text was already embedded.
    pub embeddings_reused: ReadableCounter,
    /// New-product forecasts enqueued.
    pub new_products: ReadableCounter,
    /// Messages for SKUs whose state partition another instance owns (skipped).
    pub misrouted: ReadableCounter,
}

impl SignalStats {
    pub(crate) fn new() -> Self {
        Self {
            updates: ReadableCounter::new(metrics::counter!(SIGNAL_INPUTS, "input" => "updates")),
            inventory: ReadableCounter::new(
                metrics::counter!(SIGNAL_INPUTS, "input" => "inventory"),
            ),
            rejected: ReadableCounter::new(metrics::counter!(SIGNAL_REJECTS)),
            reorders: ReadableCounter::new(
                metrics::counter!(RESTOCK_SIGNALS, "action" => "reorder"),
            ),
            clears: ReadableCounter::new(metrics::counter!(RESTOCK_SIGNALS, "action" => "clear")),
            rankings: ReadableCounter::new(metrics::counter!(HOT_RANKINGS)),
            catalog: ReadableCounter::new(metrics::counter!(SIGNAL_INPUTS, "input" => "catalog")),
            embeddings: ReadableCounter::new(
                metrics::counter!(TEXT_EMBEDDINGS, "outcome" => "computed"),
            ),
            embeddings_reused: ReadableCounter::new(
                metrics::counter!(TEXT_EMBEDDINGS, "outcome" => "reused"),
            ),
            new_products: ReadableCounter::new(metrics::counter!(NEW_PRODUCT_FORECASTS)),
            misrouted: ReadableCounter::new(metrics::counter!(SIGNAL_MISROUTED)),
        }
    }
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

/// The blended new-product forecast of a SKU still inside its blend period (its text forecast
/// fading into the model's as sales history grows), if it has a catalog text and a first sale.
fn blend_new_product(
    library: &LaunchLibrary,
    blend_days: f64,
    sku: &mut SkuSignals,
    update: &TrendUpdate,
) -> Option<new_product::NewProductForecast> {
    let (Some(text), Some(first), Some(hot)) = (&sku.text, sku.first_as_of_ms, &sku.hot) else {
        return None;
    };
    let history = (hot.as_of_ms - first).div_euclid(DAY_MS) + 1;
    if (history as f64) >= blend_days {
        return None;
    }
    let history = u32::try_from(history).unwrap_or(0);
    let t = library.forecast(
        &update.sku,
        &text.embedding,
        history as usize,
        update.horizon.len(),
    );
    let seq = sku.new_product_seq + 1;
    let blended = new_product::blend(update, hot.as_of_ms, history, blend_days, &t, seq)?;
    sku.new_product_seq = seq;
    Some(blended)
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
    fn load(&mut self, partition: u16) {
        match self.restore(partition) {
            Ok(state) => {
                self.parts.insert(partition, state);
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "signal state could not be restored");
                self.failed = Some(e);
            }
        }
        self.ranking_changed = true;
    }

    fn restore(&mut self, partition: u16) -> Result<PartitionSignals, SignalsError> {
        let (state, from) = self.table.restore(partition, RESTORE_TIMEOUT)?;
        tracing::info!(partition, from = %from, skus = state.skus.len(), next = ?state.next, "signal state restored");
        Ok(state)
    }

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
        match input {
            SignalInput::Updates => self.stats.updates.add(1),
            SignalInput::Inventory => self.stats.inventory.add(1),
            SignalInput::Catalog => self.stats.catalog.add(1),
        }
        let outcome = self.apply(input, msg);
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

    /// Applies one message to the state of its SKU's home partition.
    fn apply(
        &mut self,
        input: SignalInput,
        msg: &BorrowedMessage<'_>,
    ) -> Result<Outcome, Rejection> {
        let invalid =
            |e: &dyn std::fmt::Display| Rejection::new(RejectReason::InvalidValue, e.to_string());
        match input {
            SignalInput::Updates => {
                let update: TrendUpdate = serde_json::from_slice(msg.payload().unwrap_or_default())
                    .map_err(|e| Rejection::new(classify(&e), e.to_string()))?;
                let Some(home) = self.home(&update.sku) else {
                    return Ok(Outcome::misrouted());
                };
                let restock = self.settings.inventory_topic.is_some();
                let Some(part) = self.parts.get_mut(&home) else {
                    return Ok(Outcome::misrouted());
                };
                let applied = part
                    .on_update(&update, restock.then_some(&self.settings.policy))
                    .map_err(|e| invalid(&e))?;
                let mut out = Outcome {
                    ranking_changed: applied.ranking_changed,
                    restock: applied.signal,
                    changed: Some(update.sku.clone()),
                    ..Outcome::default()
                };
                if applied.stale {
                    return Ok(out);
                }
                if let (Some(library), Some(sku)) = (&self.library, part.skus.get_mut(&update.sku))
                {
                    out.new_product =
                        blend_new_product(library, self.settings.blend_days, sku, &update);
                }
                Ok(out)
            }
            SignalInput::Inventory => {
                let now = chrono::Utc::now().timestamp_millis();
                let range = (
                    self.settings.min_ts_ms,
                    now.saturating_add(self.settings.max_future_ms),
                );
                let (sku, level) = inventory::decode(
                    msg.key(),
                    msg.payload(),
                    self.settings.max_sku_bytes,
                    range,
                )?;
                let Some(part) = self.home(&sku).and_then(|h| self.parts.get_mut(&h)) else {
                    return Ok(Outcome::misrouted());
                };
                let applied = part.on_inventory(&sku, level, &self.settings.policy);
                Ok(Outcome {
                    restock: applied.signal,
                    changed: Some(sku),
                    ..Outcome::default()
                })
            }
            SignalInput::Catalog => self.apply_catalog(msg),
        }
    }

    /// Embeds a catalog entry's text (unless the same text is held) and, for a SKU that has not
    /// sold yet, makes its text forecast.
    fn apply_catalog(&mut self, msg: &BorrowedMessage<'_>) -> Result<Outcome, Rejection> {
        let entry: CatalogEntry = serde_json::from_slice(msg.payload().unwrap_or_default())
            .map_err(|e| Rejection::new(classify(&e), e.to_string()))?;
        entry
            .validate(self.settings.max_sku_bytes)
            .map_err(|e| Rejection::new(RejectReason::InvalidValue, e))?;
        if msg.key() != Some(entry.sku.as_bytes()) {
            return Err(Rejection::new(
                RejectReason::KeyMismatch,
                "key differs from sku",
            ));
        }
        let Some(home) = self.home(&entry.sku) else {
            return Ok(Outcome::misrouted());
        };
        let text = entry.text();
        let hash = state::text_hash(&format!("{text}\u{1f}{}", entry.category));
        let held = self
            .parts
            .get(&home)
            .and_then(|p| p.skus.get(&entry.sku))
            .and_then(|s| s.text.as_ref())
            .is_some_and(|t| t.hash == hash);
        if held {
            self.stats.embeddings_reused.add(1);
            return Ok(Outcome::default());
        }
        let Some(embedder) = self.embedder.as_mut() else {
            return Ok(Outcome::default());
        };
        let embedding = embedder
            .embed(&[text.as_str()])
            .map_err(|e| Rejection::new(RejectReason::InvalidValue, e.to_string()))?
            .pop()
            .unwrap_or_default();
        self.stats.embeddings.add(1);
        let Some(part) = self.parts.get_mut(&home) else {
            return Ok(Outcome::misrouted());
        };
        let as_of = part.newest_as_of_ms;
        let sku = part.skus.entry(entry.sku.clone()).or_default();
        sku.text = Some(state::TextState {
            hash,
            category: entry.category.clone(),
            embedding,
        });
        let mut out = Outcome {
            changed: Some(entry.sku.clone()),
            ..Outcome::default()
        };
        if let (Some(library), None, Some(text)) = (&self.library, &sku.hot, &sku.text) {
            let day = DAY_MS;
            let as_of = as_of
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis().div_euclid(day) * day);
            let t = library.forecast(&entry.sku, &text.embedding, 0, self.settings.horizon_days);
            sku.new_product_seq += 1;
            out.new_product = Some(new_product::text_only(
                &entry.sku,
                as_of,
                &t,
                sku.new_product_seq,
            ));
        }
        Ok(out)
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

    /// Remembers that `sku`'s state changed, for the next checkpoint.
    fn mark_changed(&mut self, sku: Option<String>) {
        let Some(sku) = sku else {
            return;
        };
        if let Some(home) = self.home(&sku) {
            self.table.mark(home, sku);
        }
    }

    /// Flushes the producer, writes `partitions` (all owned when empty) to the state table, and
    /// commits their offsets. Without a state folder or a changelog nothing is saved or
    /// committed.
    fn checkpoint(
        &mut self,
        partitions: &[u16],
        consumer: &BaseConsumer<SignalsContext>,
        patience: Duration,
    ) {
        if !self.table.enabled() {
            return;
        }
        if let Err(e) = self.publisher.flush(patience) {
            tracing::warn!(error = %e, "signals checkpoint skipped: the broker did not acknowledge in time");
            return;
        }
        let chosen: Vec<u16> = if partitions.is_empty() {
            self.parts.keys().copied().collect()
        } else {
            partitions
                .iter()
                .copied()
                .filter(|p| self.parts.contains_key(p))
                .collect()
        };
        if !self.write_changelog(&chosen, patience) {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for p in chosen {
            let Some(part) = self.parts.get(&p) else {
                continue;
            };
            if let Err(e) = self.table.write_local(p, part) {
                tracing::warn!(partition = p, error = %e, "signal state not saved (next checkpoint retries)");
                continue;
            }
            self.add_offsets(&mut tpl, p);
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(error = %e, "signal offsets not committed (next checkpoint retries)");
            }
        }
    }

    /// Adds partition `p`'s next input offsets to `tpl`, for the commit.
    fn add_offsets(&self, tpl: &mut TopicPartitionList, p: u16) {
        let Some(part) = self.parts.get(&p) else {
            return;
        };
        // in `SignalInput` order, the order of `part.next`
        let topics = [
            Some(&self.settings.updates_topic),
            self.settings.inventory_topic.as_ref(),
            self.settings.catalog_topic.as_ref(),
        ];
        for (topic, next) in topics.into_iter().zip(part.next) {
            if let (Some(topic), true) = (topic, next >= 0) {
                if let Err(e) = tpl.add_partition_offset(topic, i32::from(p), Offset::Offset(next))
                {
                    tracing::warn!(error = %e, "signal offset not committed");
                }
            }
        }
    }

    /// Writes the changed SKUs and a cut of each of `partitions` to the changelog and waits for
    /// the broker; false when that failed (nothing is committed then). True without a changelog.
    fn write_changelog(&mut self, partitions: &[u16], patience: Duration) -> bool {
        let states: Vec<(u16, &PartitionSignals)> = partitions
            .iter()
            .filter_map(|p| Some((*p, self.parts.get(p)?)))
            .collect();
        if let Err(e) = self.table.write_changelog(&self.publisher, &states) {
            tracing::warn!(error = %e, "signals changelog not written (next checkpoint retries)");
            return false;
        }
        if let Err(e) = self.publisher.flush(patience) {
            tracing::warn!(error = %e, "signals checkpoint skipped: the changelog was not acknowledged in time");
            return false;
        }
        true
    }
}
