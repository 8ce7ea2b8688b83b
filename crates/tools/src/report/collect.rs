//! Reads what a report is made from out of the topics: the sales input (the actuals), every trend
//! update (the latest per SKU for the tables, all of them for the calibration panel), the latest
//! restock signal and new-product forecast per SKU, and the catalog's product text.
//!
//! Framed values are read through the schema registry as the engine reads them
//! (`trendcast_engine::ingest::avro`): Avro sales and catalog entries, and the engine's own
//! outputs under `[schema_registry] output_format = "avro"`, become their JSON form first. A
//! registry that cannot be asked fails the report, naming the topic: a report that silently
//! counted every Avro value as unreadable would show nothing and say little.
//!
//! Each topic is read from its beginning to the high watermark seen when reading starts, outside
//! any consumer group (nothing is committed, a running engine is not disturbed). Messages that do
//! not decode are counted, never fatal: a report over a topic with one bad message still shows
//! the rest.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{PastCall, ProductText, ReportInputs};
use trendcast_engine::catalog::CatalogEntry;
use trendcast_engine::config::Settings;
use trendcast_engine::ingest::avro::{AvroInputs, Transcoded};
use trendcast_engine::ingest::event::decode;
use trendcast_engine::publish::RegistryError;
use trendcast_engine::publish::TrendUpdate;
use trendcast_engine::signals::new_product::NewProductForecast;
use trendcast_engine::signals::{RestockSignal, SignalsSettings};
use trendcast_engine::vocab::wire;
use trendcast_engine::vocab::{EventBody, Source};

/// Longest wait for the next message before a topic counts as read (a partition the broker
/// never delivers to its end must not hang the report).
const STALL: Duration = Duration::from_secs(20);
/// Quiet time after every partition reached its watermark before a topic counts as read.
const IDLE: Duration = Duration::from_secs(1);
/// Fetch size limits of the report's reader (librdkafka's default fetch.max.bytes, 50 MiB).
const FETCH_BYTES: &str = "52428800";

/// Why a topic could not be read.
#[derive(Debug, thiserror::Error)]
#[error("could not read topic {topic}: {reason}")]
pub struct CollectError {
    /// The topic.
    pub topic: String,
    /// What failed.
    pub reason: String,
}

/// Reads every input of a report from the topics `settings` names.
pub fn from_topics(settings: &Settings) -> Result<ReportInputs, CollectError> {
    let base = settings.kafka.client_config();
    let mut inputs = ReportInputs::new(settings.window.bucket);
    let mut bodies = Bodies::new(settings)?;
    read_sales(settings, &base, &mut bodies, &mut inputs)?;
    let output = &settings.kafka.output_topic;
    let unread = read_topic(&base, output, |_, payload| {
        match bodies.output::<TrendUpdate>(payload) {
            Some(update) => inputs.add_update(update),
            None => inputs.unreadable += 1,
        }
    })?;
    bodies.check(output)?;
    inputs.note_partial(output, unread);
    if let Some(signals) = &settings.signals {
        read_signals(signals, &base, &mut bodies, &mut inputs)?;
    }
    Ok(inputs)
}

/// The sales input: the actuals the report compares forecasts with.
fn read_sales(
    settings: &Settings,
    base: &ClientConfig,
    bodies: &mut Bodies,
    inputs: &mut ReportInputs,
) -> Result<(), CollectError> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let sales = &settings.kafka.sales_topic;
    let unread = read_topic(base, sales, |key, payload| {
        let json = payload.and_then(|p| bodies.input(p));
        if payload.is_some() && json.is_none() {
            inputs.unreadable += 1;
            return;
        }
        match decode(
            Source::Sales,
            key,
            json.as_deref(),
            &settings.validation,
            now_ms,
        ) {
            Ok(event) => match event.body {
                EventBody::Sale { qty, .. } => inputs.add_sale(&event.sku, event.ts.millis(), qty),
                EventBody::Click(_) => inputs.unreadable += 1,
            },
            Err(_) => inputs.unreadable += 1,
        }
    })?;
    bodies.check(sales)?;
    inputs.note_partial(sales, unread);
    Ok(())
}

/// The signal outputs and the catalog. They are optional: a report without them says which were
/// not read.
fn read_signals(
    signals: &SignalsSettings,
    base: &ClientConfig,
    bodies: &mut Bodies,
    inputs: &mut ReportInputs,
) -> Result<(), CollectError> {
    if signals.inventory_topic.is_some() {
        let mut restock = HashMap::new();
        let read = read_topic(base, &signals.restock_topic, |_, payload| match bodies
            .output::<RestockSignal>(payload)
        {
            Some(s) => keep_newest(&mut restock, s.sku.clone(), s, |s| s.seq),
            None => inputs.unreadable += 1,
        });
        bodies.check(&signals.restock_topic)?;
        inputs.restock = restock;
        inputs.note_optional(&signals.restock_topic, read);
    }
    let Some(catalog) = &signals.catalog_topic else {
        return Ok(());
    };
    let mut products = HashMap::new();
    let read = read_topic(base, catalog, |_, payload| {
        // a tombstone: the product left the catalog
        let Some(payload) = payload else { return };
        let entry = bodies
            .input(payload)
            .and_then(|json| serde_json::from_slice::<CatalogEntry>(&json).ok());
        match entry {
            Some(entry) => {
                products.insert(entry.sku.clone(), ProductText::from_entry(&entry));
            }
            None => inputs.unreadable += 1,
        }
    });
    bodies.check(catalog)?;
    inputs.products.extend(products);
    inputs.note_optional(catalog, read);
    let mut forecasts = HashMap::new();
    let read = read_topic(base, &signals.new_product_topic, |_, payload| match bodies
        .output::<NewProductForecast>(
        payload,
    ) {
        Some(f) => keep_newest(&mut forecasts, f.sku.clone(), f, |f| f.seq),
        None => inputs.unreadable += 1,
    });
    bodies.check(&signals.new_product_topic)?;
    inputs.new_products = forecasts;
    inputs.note_optional(&signals.new_product_topic, read);
    Ok(())
}

impl ReportInputs {
    /// Records partitions of `topic` not read to their end (shown in the report).
    fn note_partial(&mut self, topic: &str, unread: Vec<i32>) {
        if !unread.is_empty() {
            self.not_read.push(format!(
                "{topic}: partitions {unread:?} not read to their end within {STALL:?}"
            ));
        }
    }

    /// Records an optional topic that could not be read (shown in the report), logging why.
    fn note_optional(&mut self, topic: &str, read: Result<Vec<i32>, CollectError>) {
        match read {
            Ok(unread) => self.note_partial(topic, unread),
            Err(e) => {
                tracing::warn!(error = %e, "report: an optional topic was not read");
                self.not_read.push(e.to_string());
            }
        }
    }
}

/// The JSON bodies of the values read: framed ones unframed, Avro ones transcoded through the
/// registry (when `[schema_registry] url` is set); the first registry failure, kept until
/// [`Bodies::check`].
struct Bodies {
    avro: AvroInputs,
    failed: Option<RegistryError>,
}

impl Bodies {
    fn new(settings: &Settings) -> Result<Self, CollectError> {
        let registry = match &settings.schema_registry {
            Some(r) => Some(r.client().map_err(|e| CollectError {
                topic: settings.kafka.sales_topic.clone(),
                reason: format!("the schema registry {} cannot be used: {e}", r.url),
            })?),
            None => None,
        };
        Ok(Self {
            avro: AvroInputs::new(registry),
            failed: None,
        })
    }

    /// The JSON of an input value (sales, catalog); `None` when it is unreadable.
    fn input<'a>(&mut self, payload: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let transcoded = self.avro.transcode(Some(payload), usize::MAX);
        self.json(payload, transcoded)
    }

    /// One of the engine's own outputs, decoded; `None` when it is unreadable.
    fn output<T: serde::de::DeserializeOwned>(&mut self, payload: Option<&[u8]>) -> Option<T> {
        let payload = payload?;
        let transcoded = self.avro.transcode_output(Some(payload));
        let json = self.json(payload, transcoded)?;
        serde_json::from_slice(&json).ok()
    }

    fn json<'a>(
        &mut self,
        payload: &'a [u8],
        transcoded: Result<Transcoded, RegistryError>,
    ) -> Option<Cow<'a, [u8]>> {
        match transcoded {
            Ok(Ok(Some(json))) => Some(Cow::Owned(json)),
            Ok(Ok(None)) => Some(Cow::Borrowed(wire::unframe(payload).1)),
            Ok(Err(_rejected)) => None,
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }

    /// Fails when the registry could not be asked while `topic` was read.
    fn check(&mut self, topic: &str) -> Result<(), CollectError> {
        match self.failed.take() {
            None => Ok(()),
            Some(e) => Err(CollectError {
                topic: topic.to_string(),
                reason: format!("{e}: its Avro values cannot be read"),
            }),
        }
    }
}

/// Inserts `value` unless a value with a higher or equal sequence number is held.
fn keep_newest<T>(map: &mut HashMap<String, T>, key: String, value: T, seq: impl Fn(&T) -> u64) {
    match map.get(&key) {
        Some(held) if seq(held) >= seq(&value) => {}
        _ => {
            map.insert(key, value);
        }
    }
}

/// Hands every message of `topic`, up to the high watermarks seen now, to `f` (key, payload).
/// Returns the partitions the broker did not deliver to their end within [`STALL`] (empty when
/// the topic was read in full).
pub fn read_topic(
    base: &ClientConfig,
    topic: &str,
    mut f: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> Result<Vec<i32>, CollectError> {
    let err = |reason: String| CollectError {
        topic: topic.to_string(),
        reason,
    };
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", "trendcast-report")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // whole record batches per fetch: a fetch cut inside a batch makes the next one start
        // inside it, which Tansu 0.6.0 answers with the next batch or nothing (offset_guard.rs)
        .set("max.partition.fetch.bytes", FETCH_BYTES)
        .set("fetch.max.bytes", FETCH_BYTES)
        .create()
        .map_err(|e| err(e.to_string()))?;
    // partitions with messages (retention may have emptied a partition whose watermark is > 0)
    let mut left: BTreeMap<i32, i64> = high_watermarks(&consumer, topic)
        .map_err(err)?
        .into_iter()
        .filter(|(_, (low, high))| high > low)
        .map(|(p, (_, high))| (p, high))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for &partition in left.keys() {
        tpl.add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| err(e.to_string()))?;
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    consumer.assign(&tpl).map_err(|e| err(e.to_string()))?;
    // Every partition is read past its watermark, then until nothing more comes for [`IDLE`]:
    // Tansu's high watermark is its last batch's first offset + 1, so the rest of that batch
    // lies past it, and messages produced meanwhile are welcome.
    let mut last_progress = Instant::now();
    let mut all_reached: Option<Instant> = None;
    loop {
        // a live topic never goes quiet: past every watermark it is read for 5 × IDLE at most
        if left.is_empty() {
            let since = *all_reached.get_or_insert_with(Instant::now);
            if since.elapsed() > 5 * IDLE {
                return Ok(Vec::new());
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                f(m.key(), m.payload());
                if left
                    .get(&m.partition())
                    .is_some_and(|&high| m.offset() + 1 >= high)
                {
                    left.remove(&m.partition());
                }
            }
            // librdkafka reports transport trouble here and retries by itself
            Some(Err(e)) => tracing::debug!(topic, error = %e, "report: consumer error"),
            None if read_to_end(&consumer, topic, &mut left) && last_progress.elapsed() > IDLE => {
                return Ok(Vec::new());
            }
            None if !left.is_empty() && last_progress.elapsed() > STALL => {
                tracing::warn!(topic, partitions = ?left.keys().collect::<Vec<_>>(),
                    "report: partitions not read to their end within {STALL:?}; reporting what was read");
                return Ok(left.into_keys().collect());
            }
            None => {}
        }
    }
}

/// Drops from `left` the partitions whose position reached their end (a compacted topic or
/// control records leave the last offset below the watermark); true when all are read.
fn read_to_end(consumer: &BaseConsumer, topic: &str, left: &mut BTreeMap<i32, i64>) -> bool {
    let Ok(positions) = consumer.position() else {
        return false;
    };
    for e in positions.elements_for_topic(topic) {
        if let Offset::Offset(at) = e.offset() {
            if left.get(&e.partition()).is_some_and(|&high| at >= high) {
                left.remove(&e.partition());
            }
        }
    }
    drop(positions);
    left.is_empty()
}

/// Each partition's low and high watermarks (an error names a missing topic).
fn high_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, String> {
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("metadata request failed: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err("no partitions (does the topic exist?)".into());
    }
    partitions
        .into_iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, timeout)
                .map(|(low, high)| (p, (low, high)))
                .map_err(|e| format!("watermarks of partition {p}: {e}"))
        })
        .collect()
}

impl PastCall {
    /// The parts of `update` the calibration panel needs; `None` when `as_of` is not a time.
    pub fn of(update: &TrendUpdate) -> Option<PastCall> {
        let as_of_ms = chrono::DateTime::parse_from_rfc3339(&update.as_of)
            .ok()?
            .timestamp_millis();
        let quantile = |q: &str| -> Vec<f32> {
            update
                .horizon
                .iter()
                .map(|h| h.quantiles.get(q).copied().unwrap_or(f32::NAN))
                .collect()
        };
        Some(PastCall {
            as_of_ms,
            direction: update.trend.direction,
            p_up: update.trend.p_up,
            expected: super::expected_per_step(update),
            low: quantile("0.1"),
            high: quantile("0.9"),
        })
    }
}
