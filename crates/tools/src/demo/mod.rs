//! `trendcast demo`: the whole Kafka path on the real UCI Online Retail log, with no setup.
//!
//! It starts librdkafka's mock cluster in process (a Kafka-protocol broker; nothing to
//! install), creates the topics, produces the converted log keyed by SKU while the engine
//! consumes it through the same consumer, window, scoring and producer code as `run`, prints a
//! table of top rising SKUs as event time passes each month, and ends with one JSON summary line.
//!
//! The signals component runs too, fed by a simulated warehouse ([`warehouse`]): every SKU
//! starts with some stock, sales draw it down, and the engine's own restock signals, read back
//! from the broker, place the orders that refill it. The demo prints the last hot-products
//! ranking and the restock outcome (signals, orders, fill rate) read back from the broker.
//!
//! The mock cluster keeps at most 100k messages / 5 MiB per partition, so the producer is paced
//! to stay at most [`MAX_AHEAD`] events ahead of the consumer; nothing is lost.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};
use serde_json::json;

use crate::datasets::catalog::online_retail_catalog;
use crate::datasets::{online_retail, SaleRecord};
use crate::update_check::{self, Actuals, UpdateCheck};
use trendcast_engine::catalog::CatalogEntry;
use trendcast_engine::config::Settings;
use trendcast_engine::engine::RunningEngine;
use trendcast_engine::publish::{Direction, TrendUpdate};
use trendcast_engine::scoring::UpdateObserver;
use trendcast_engine::signals::{HotProducts, RestockSignal};
use warehouse::Warehouse;

pub mod warehouse;

/// Partitions per demo topic (keeps each partition well under the mock cluster's limits).
pub const PARTITIONS: i32 = 16;
/// The engine's fetch wait on the embedded broker (ms; see `run`).
const DEMO_FETCH_WAIT_MS: u32 = 10;
/// Largest number of produced but not yet consumed events.
pub const MAX_AHEAD: u64 = 50_000;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Online Retail CSV (gzipped or not).
    pub data: PathBuf,
    /// Use only the first N events (0 = all).
    pub limit: usize,
    /// Rows in each printed table.
    pub top: usize,
    /// Days of mean daily demand on hand at each SKU's first sale (the simulated warehouse).
    pub initial_stock_days: f64,
    /// Print no tables (the JSON summary goes to stderr): for `trendcast report`.
    pub quiet: bool,
}

/// What a hook run after the replay (see [`run_then`]) gets: the settings pointing at the
/// embedded broker, which still holds every topic, and the log's product descriptions.
pub struct Replayed<'a> {
    /// The demo's settings; `kafka.brokers` is the embedded broker.
    pub settings: &'a Settings,
    /// Description per SKU from the log.
    pub descriptions: &'a HashMap<String, String>,
}

/// Latest update per SKU plus the month being shown, shared with the scorer's observer.
#[derive(Default)]
struct LatestUpdates {
    latest: HashMap<String, TrendUpdate>,
    month: String,
    descriptions: HashMap<String, String>,
    top: usize,
    quiet: bool,
}

impl LatestUpdates {
    fn observe(&mut self, update: &TrendUpdate) {
        let month = update.as_of.get(..7).unwrap_or_default().to_string();
        if !self.month.is_empty() && month > self.month {
            self.print(&self.month.clone());
        }
        if month > self.month {
            self.month = month;
        }
        self.latest.insert(update.sku.clone(), update.clone());
    }

    /// The first 36 characters of a SKU's description ("" when unknown).
    fn description(&self, sku: &str) -> String {
        self.descriptions
            .get(sku)
            .map(String::as_str)
            .unwrap_or("")
            .chars()
            .take(36)
            .collect()
    }

    fn print(&self, label: &str) {
        if !self.quiet {
            println!("{}", self.table(label));
        }
    }

    /// Top risers among fresh forecasts (as_of within a week of the newest): called rising,
    /// expecting ≥ 1 unit per bucket, ranked by p_up as the hot-products ranking is.
    fn table(&self, label: &str) -> String {
        let newest = self
            .latest
            .values()
            .map(|u| u.as_of.as_str())
            .max()
            .unwrap_or_default();
        let cutoff = chrono::DateTime::parse_from_rfc3339(newest)
            .map(|t| {
                (t - chrono::Duration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            })
            .unwrap_or_default();
        let mut risers: Vec<(&TrendUpdate, f64)> = self
            .latest
            .values()
            .filter(|u| u.as_of >= cutoff)
            .filter(|u| u.trend.direction == Direction::Rising)
            .filter_map(|u| {
                let expected = expected_per_bucket(u);
                (expected >= 1.0).then_some((u, expected))
            })
            .collect();
        risers.sort_by(|a, b| {
            b.0.trend
                .p_up
                .total_cmp(&a.0.trend.p_up)
                .then_with(|| b.1.total_cmp(&a.1))
                .then_with(|| a.0.sku.cmp(&b.0.sku))
        });
        let mut out = format!(
            "\nTop rising SKUs, updates up to {label} ({} SKUs forecast so far)\n{:<8} {:<36} {:>10} {:>9} {:>6}  as_of\n",
            self.latest.len(),
            "sku",
            "description",
            "units/d",
            "strength",
            "p_up"
        );
        for (u, expected) in risers.iter().take(self.top) {
            let desc = self.description(&u.sku);
            out.push_str(&format!(
                "{:<8} {:<36} {:>10.1} {:>8.0}% {:>6.2}  {}\n",
                u.sku,
                desc,
                expected,
                u.trend.strength * 100.0,
                u.trend.p_up,
                u.as_of.get(..10).unwrap_or_default()
            ));
        }
        out
    }
}

/// Expected units per bucket over the horizon: the mean output, else the median.
fn expected_per_bucket(u: &TrendUpdate) -> f64 {
    let n = u.horizon.len().max(1) as f64;
    u.horizon
        .iter()
        .map(|h| {
            f64::from(
                h.mean
                    .or_else(|| h.quantiles.get("0.5").copied())
                    .unwrap_or(0.0),
            )
        })
        .sum::<f64>()
        / n
}

/// Runs the demo with `settings` (its `kafka.brokers` is replaced by the embedded broker).
pub fn run(settings: Settings, options: &DemoOptions) -> Result<()> {
    run_then(settings, options, |_| Ok(()))
}

/// Runs the demo, then `after` while the embedded broker still holds every topic.
pub fn run_then(
    mut settings: Settings,
    options: &DemoOptions,
    after: impl FnOnce(Replayed<'_>) -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    self_contained(&mut settings);
    let (events, descriptions) = load_log(options)?;
    // the cluster lives until the demo returns
    let (_cluster, topics) = start_broker(&mut settings)?;
    let board = Arc::new(Mutex::new(LatestUpdates {
        descriptions: descriptions.clone(),
        top: options.top,
        quiet: options.quiet,
        ..LatestUpdates::default()
    }));
    let published_skus = Arc::new(Mutex::new(HashSet::new()));
    let check = Arc::new(Mutex::new(update_check_of(&settings, &events)?));
    let observer = observe_into(board.clone(), published_skus.clone(), check.clone());
    let engine =
        RunningEngine::start(&settings, Some(observer)).context("engine failed to start")?;
    let mut feed = Feed::new(&settings, &topics, (&events, &descriptions), options)?;
    let consume_elapsed = feed.replay(&engine, &events, &settings.kafka.sales_topic)?;
    feed.finish(&engine)?;
    if let Ok(b) = board.lock() {
        b.print(&format!("{} (end of log)", b.month));
    }
    let signal_stats = engine.signal_stats().cloned();
    let stats = engine.stats().clone();
    let model = engine.model_id().to_string();
    let provider = engine.provider();
    let skus_held = engine.store().len();
    engine
        .shutdown(Duration::from_secs(30))
        .context("engine shutdown")?;
    let ranking = last_ranking(&settings.kafka.brokers, &topics.hot)?;
    if !options.quiet {
        print_outcome(options, ranking.as_ref(), &board, &feed, &topics);
    }
    let total = events.len() as u64;
    let summary = json!({
        "summary": {
            "dataset": "UCI Online Retail (CC BY 4.0)",
            "events_produced": total,
            "events_consumed": stats.total_consumed(),
            "events_applied": stats.window_updates.get(),
            "events_rejected": stats.total_rejected(),
            "rejected_by_reason": rejected_by_reason(&stats),
            "skus": events.iter().map(|e| e.sku.as_str()).collect::<HashSet<_>>().len(),
            "skus_held_at_end": skus_held,
            "skus_with_updates": published_skus.lock().map(|s| s.len()).unwrap_or(0),
            "windows_scored": stats.windows_scored.get(),
            "trend_updates_published": stats.updates_published.get(),
            "dead_letters_published": stats.dead_letters.get(),
            "publish_errors": stats.publish_errors.get(),
            "inventory_snapshots": feed.warehouse.stats.snapshots,
            "restock_reorder_signals_read": feed.orders.reorders,
            "restock_clear_signals_read": feed.orders.clears,
            "restock_signals_published": signal_stats.as_ref().map(|s| s.reorders.get() + s.clears.get()),
            "warehouse": feed.warehouse.stats,
            "fill_rate": (feed.warehouse.fill_rate() * 10_000.0).round() / 10_000.0,
            "hot_products_rankings": signal_stats.as_ref().map(|s| s.rankings.get()),
            "published_checks": check.lock().map(|c| c.summary()).ok(),
            "hot_products_top": ranking.as_ref().map(|r| r.top.iter().map(|p| p.sku.clone()).collect::<Vec<_>>()),
            "model": model,
            "execution_provider": provider,
            "consume_rate_events_per_s": (total as f64 / consume_elapsed.as_secs_f64()).round(),
            "elapsed_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        }
    });
    // with a hook (the report) stdout is left to it
    match options.quiet {
        true => eprintln!("{summary}"),
        false => println!("{summary}"),
    }
    after(Replayed {
        settings: &settings,
        descriptions: &descriptions,
    })
}

/// Rejected events per reason, as JSON.
fn rejected_by_reason(
    stats: &trendcast_engine::telemetry::EngineStats,
) -> serde_json::Map<String, serde_json::Value> {
    stats
        .rejected_by_reason()
        .into_iter()
        .map(|(r, n)| (r.to_string(), json!(n)))
        .collect()
}

/// A self-contained run: nothing to resume from, nothing left behind.
fn self_contained(settings: &mut Settings) {
    settings.checkpoint.dir = None;
    settings.checkpoint.changelog_topic = None;
    if let Some(signals) = settings.signals.as_mut() {
        signals.changelog_topic = None;
    }
}

/// Prints the last hot-products ranking and the restock outcome.
fn print_outcome(
    options: &DemoOptions,
    ranking: Option<&HotProducts>,
    board: &Mutex<LatestUpdates>,
    feed: &Feed,
    topics: &DemoTopics,
) {
    if let Some(r) = ranking {
        println!("{}", ranking_table(r, board, options.top));
    }
    feed.print_restock(options.initial_stock_days, topics.lead_time_days);
}

/// The log's sales (the first `options.limit` when set) and the product descriptions.
fn load_log(options: &DemoOptions) -> Result<(Vec<SaleRecord>, HashMap<String, String>)> {
    let data = online_retail::load(&options.data).with_context(|| {
        format!(
            "the demo needs the Online Retail log at {} (committed under data/online-retail/)",
            options.data.display()
        )
    })?;
    let mut events = data.events;
    if options.limit > 0 {
        events.truncate(options.limit);
    }
    eprintln!(
        "demo: {} sales events from {} lines of {} ({} non-product lines, {} zero-quantity, {} malformed dropped)",
        events.len(),
        data.lines,
        options.data.display(),
        data.non_product,
        data.zero_qty,
        data.malformed
    );
    Ok((events, data.descriptions))
}

/// The signals topics the demo feeds and reads, and the restock lead time.
struct DemoTopics {
    inventory: String,
    restock: String,
    hot: String,
    /// The catalog input and the new-product output, when the signals read a catalog.
    catalog: Option<(String, String)>,
    lead_time_days: f64,
}

/// Starts the embedded broker, creates every topic and points `settings` at it.
fn start_broker(
    settings: &mut Settings,
) -> Result<(MockCluster<'static, DefaultProducerContext>, DemoTopics)> {
    let cluster =
        MockCluster::new(1).context("could not start the embedded Kafka-protocol broker")?;
    let k = &settings.kafka;
    let signals = settings
        .signals
        .as_ref()
        .context("the demo needs the signals component (an inventory topic and a ranking topic)")?;
    let topics = DemoTopics {
        inventory: signals
            .inventory_topic
            .clone()
            .context("the demo needs signals.inventory_topic")?,
        restock: signals.restock_topic.clone(),
        hot: signals
            .hot_topic
            .clone()
            .context("the demo needs signals.hot_products_topic")?,
        catalog: signals
            .catalog_topic
            .clone()
            .map(|c| (c, signals.new_product_topic.clone())),
        lead_time_days: signals.policy.lead_time_days,
    };
    let catalog = topics.catalog.iter().flat_map(|(c, n)| [c, n]);
    for topic in [
        &k.sales_topic,
        &k.clicks_topic,
        &k.output_topic,
        &k.dead_letter_topic,
        &topics.inventory,
        &topics.restock,
        &topics.hot,
    ]
    .into_iter()
    .chain(catalog)
    {
        cluster
            .create_topic(topic, PARTITIONS, 1)
            .with_context(|| format!("could not create topic {topic}"))?;
    }
    settings.kafka.brokers = cluster.bootstrap_servers();
    // The demo settles one simulated day at a time, and each day waits on three fetches in turn
    // (the engine's, the signals component's, the restock reader's). With librdkafka's default
    // fetch wait of 500 ms that cost about 0.6 s a day (3 min 23 s for the log); on the embedded
    // broker a short wait costs nothing. A wait set in the configuration is kept.
    settings
        .kafka
        .properties
        .entry("fetch.wait.max.ms".to_string())
        .or_insert_with(|| DEMO_FETCH_WAIT_MS.to_string());
    eprintln!("demo: embedded broker at {}", settings.kafka.brokers);
    Ok((cluster, topics))
}

/// Days at the end of the log whose updates the demo judges for interval coverage (issue #39's
/// "last eight weeks of the demo replay").
const COVERAGE_DAYS: i64 = 56;

/// The checks of every published update (`update_check`), against the replayed sales.
fn update_check_of(settings: &Settings, events: &[SaleRecord]) -> Result<UpdateCheck> {
    let mut actuals = Actuals::default();
    for e in events {
        actuals.add(&e.sku, e.ts, e.qty);
    }
    let band = update_check::flat_band(settings).context("reading the model's trend definition")?;
    Ok(UpdateCheck::new(band, actuals, COVERAGE_DAYS))
}

/// The scorer's observer: every update goes to the board and the checks, its SKU to `skus`.
fn observe_into(
    board: Arc<Mutex<LatestUpdates>>,
    skus: Arc<Mutex<HashSet<String>>>,
    check: Arc<Mutex<UpdateCheck>>,
) -> UpdateObserver {
    Box::new(move |u: &TrendUpdate| {
        if let Ok(mut c) = check.lock() {
            c.observe(u);
        }
        if let Ok(mut b) = board.lock() {
            b.observe(u);
        }
        if let Ok(mut s) = skus.lock() {
            s.insert(u.sku.clone());
        }
    })
}

/// What the demo produces into the broker and reads back: the sales, the simulated warehouse's
/// inventory snapshots, and the restock signals that place its orders.
struct Feed {
    producer: ThreadedProducer<DefaultProducerContext>,
    inventory_topic: String,
    warehouse: Warehouse,
    restock: BaseConsumer,
    orders: OrderBook,
    sent_snapshots: u64,
    /// The catalog topic and each SKU's entry, sent just before the SKU's first sale (its
    /// launch), when the signals read a catalog.
    catalog: Option<(String, HashMap<String, CatalogEntry>)>,
}

impl Feed {
    /// `log`: the sales and the descriptions (for the catalog entries).
    fn new(
        settings: &Settings,
        topics: &DemoTopics,
        log: (&[SaleRecord], &HashMap<String, String>),
        options: &DemoOptions,
    ) -> Result<Self> {
        let (events, descriptions) = log;
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka.brokers)
            .set("linger.ms", "10")
            .set("queue.buffering.max.messages", "500000")
            // as trendcast's producer: inventory snapshots land where the SKU's trend updates do
            .set("partitioner", "murmur2_random")
            .create()
            .context("could not create the demo's producer")?;
        let initial = Warehouse::initial_stock(
            events.iter().map(|e| (e.sku.as_str(), e.qty, e.ts)),
            options.initial_stock_days,
        );
        Ok(Self {
            producer,
            inventory_topic: topics.inventory.clone(),
            warehouse: Warehouse::new(initial, topics.lead_time_days.ceil() as i64),
            restock: reader(&settings.kafka.brokers, &topics.restock)?,
            orders: OrderBook::default(),
            sent_snapshots: 0,
            catalog: topics.catalog.as_ref().map(|(topic, _)| {
                let entries = online_retail_catalog(descriptions);
                let by_sku = entries.into_iter().map(|e| (e.sku.clone(), e)).collect();
                (topic.clone(), by_sku)
            }),
        })
    }

    /// Sends `sku`'s catalog entry the first time it is asked (nothing without a catalog).
    fn announce(&mut self, sku: &str) -> Result<()> {
        let Some((topic, entries)) = self.catalog.as_mut() else {
            return Ok(());
        };
        if let Some(entry) = entries.remove(sku) {
            let payload = serde_json::to_vec(&entry).context("encode catalog entry")?;
            send_keyed(&self.producer, topic, sku, &payload);
        }
        Ok(())
    }

    /// Produces the sales day by day, settling the engine and the warehouse at each day's end;
    /// returns the time until the engine had consumed them all.
    fn replay(
        &mut self,
        engine: &RunningEngine,
        events: &[SaleRecord],
        sales_topic: &str,
    ) -> Result<Duration> {
        let produce_started = Instant::now();
        for (i, event) in events.iter().enumerate() {
            let day_before = self.warehouse.day();
            let snapshots = self.warehouse.sale(&event.sku, event.qty, event.ts);
            if self.warehouse.day() != day_before {
                // a simulated day ended: let the engine and the signals component catch up with
                // what was produced so far, then place the orders their signals ask for, so that
                // replenishment happens in simulated time
                settle(
                    engine,
                    i as u64,
                    self.sent_snapshots,
                    &mut self.orders,
                    &self.restock,
                    &mut self.warehouse,
                )?;
            }
            self.sent_snapshots += snapshots.len() as u64;
            send_snapshots(&self.producer, &self.inventory_topic, &snapshots)?;
            while i as u64 >= engine.stats().total_consumed() + MAX_AHEAD {
                if engine.has_failed() {
                    bail!("the engine stopped while the demo was producing");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            self.announce(&event.sku)?;
            let payload = serde_json::to_vec(event).context("encode event")?;
            send_keyed(&self.producer, sales_topic, &event.sku, &payload);
        }
        self.flush()?;
        let total = events.len() as u64;
        while engine.stats().total_consumed() < total {
            if engine.has_failed() {
                bail!("the engine stopped before consuming every event");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(produce_started.elapsed())
    }

    /// Scores and publishes the rest, sends the last day's snapshots, waits for the signals
    /// component to read everything, and reads back the last restock signals.
    fn finish(&mut self, engine: &RunningEngine) -> Result<()> {
        engine
            .finish_replay(Duration::from_secs(120))
            .context("final scoring and publishing did not finish")?;
        if let Some(day) = self.warehouse.day() {
            let last = self.warehouse.end_of_day(day);
            send_snapshots(&self.producer, &self.inventory_topic, &last)?;
            self.flush()?;
        }
        let wanted = engine.stats().updates_published.get() + self.warehouse.stats.snapshots;
        let deadline = Instant::now() + Duration::from_secs(300);
        while let Some(s) = engine.signal_stats() {
            if s.updates.get() + s.inventory.get() >= wanted || Instant::now() > deadline {
                break;
            }
            if engine.has_failed() {
                bail!("the signals component stopped");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        engine
            .finish_replay(Duration::from_secs(60))
            .context("publishing the last signals did not finish")?;
        self.orders
            .read(&self.restock, &mut self.warehouse, Duration::from_secs(2));
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.producer
            .flush(Duration::from_secs(60))
            .context("the demo's producer could not flush")
    }

    fn print_restock(&self, initial_stock_days: f64, lead_time_days: f64) {
        let w = &self.warehouse;
        println!(
            "\nRestock (simulated warehouse: {} days of mean demand on hand at each SKU's first sale, {}-day lead time): {} reorder and {} clear signals read back from the broker, {} orders placed ({:.0} units), {} received; fill rate {:.1} % of {:.0} units demanded",
            initial_stock_days,
            lead_time_days,
            self.orders.reorders,
            self.orders.clears,
            w.stats.orders,
            w.stats.units_ordered,
            w.stats.orders_received,
            w.fill_rate() * 100.0,
            w.stats.units_demanded,
        );
    }
}

/// Waits until the engine consumed `produced` events and scored what they closed, the signals
/// component read every published update and `snapshots` snapshots, and the restock signals it
/// published were read back into `orders` (at most a few seconds per simulated day).
fn settle(
    engine: &RunningEngine,
    produced: u64,
    snapshots: u64,
    orders: &mut OrderBook,
    restock: &BaseConsumer,
    warehouse: &mut Warehouse,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let Some(signals) = engine.signal_stats() else {
        return Ok(());
    };
    loop {
        if engine.has_failed() {
            bail!("an engine thread stopped while the demo was producing");
        }
        let stats = engine.stats();
        let caught_up = stats.total_consumed() >= produced
            && engine.scoring_backlog() == 0
            && engine.publisher_in_flight() == 0
            && signals.updates.get() + signals.inventory.get()
                >= stats.updates_published.get() + snapshots;
        if caught_up {
            break;
        }
        if Instant::now() > deadline {
            tracing::warn!(
                consumed = stats.total_consumed(),
                produced,
                backlog = engine.scoring_backlog(),
                in_flight = engine.publisher_in_flight(),
                signal_inputs = signals.updates.get() + signals.inventory.get(),
                published = stats.updates_published.get(),
                snapshots,
                "the demo's day did not settle within 10 s; going on"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let published = signals.reorders.get() + signals.clears.get();
    while orders.read_total() < published && Instant::now() < deadline + Duration::from_secs(5) {
        orders.read(restock, warehouse, Duration::from_millis(20));
    }
    Ok(())
}

/// Restock signals read back from the broker, applied to the warehouse once per SKU and `seq`.
#[derive(Default)]
struct OrderBook {
    seen: HashMap<String, u64>,
    reorders: u64,
    clears: u64,
}

impl OrderBook {
    /// Signals read so far (each SKU and seq once).
    fn read_total(&self) -> u64 {
        self.reorders + self.clears
    }

    /// Reads what arrives within `wait` and places orders.
    fn read(&mut self, consumer: &BaseConsumer, warehouse: &mut Warehouse, wait: Duration) {
        drain(consumer, wait, |p| {
            let Ok(signal) = serde_json::from_slice::<RestockSignal>(p) else {
                return;
            };
            let last = self.seen.entry(signal.sku.clone()).or_insert(0);
            if signal.seq <= *last {
                return; // a duplicate delivery
            }
            *last = signal.seq;
            match signal.action {
                trendcast_engine::signals::restock::RestockAction::Reorder => {
                    self.reorders += 1;
                    warehouse.order(&signal.sku, signal.order_qty);
                }
                trendcast_engine::signals::restock::RestockAction::Clear => self.clears += 1,
            }
        });
    }
}

/// A consumer reading every partition of `topic` from the beginning (assigned, no group).
fn reader(brokers: &str, topic: &str) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("trendcast-demo-{topic}"))
        .set("enable.auto.commit", "false")
        // day-by-day settling polls often: a fetch must not wait half a second for data
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("could not create the demo's reader")?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .with_context(|| format!("could not assign {topic}"))?;
    }
    consumer
        .assign(&tpl)
        .with_context(|| format!("could not assign {topic}"))?;
    Ok(consumer)
}

/// Polls `consumer` until it has nothing more within `wait`, handing each message to `f`.
fn drain(consumer: &BaseConsumer, wait: Duration, mut f: impl FnMut(&[u8])) {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.poll(left.max(Duration::from_millis(1))) {
            Some(Ok(m)) => {
                if let Some(p) = m.payload() {
                    // framed outputs (`[schema_registry] frame_outputs`) are read as their body
                    f(trendcast_engine::vocab::wire::unframe(p).1);
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, "demo reader"),
            None if Instant::now() >= deadline => return,
            None => {}
        }
    }
}

fn send_snapshots(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    snapshots: &[warehouse::Snapshot],
) -> Result<()> {
    for s in snapshots {
        let payload = serde_json::to_vec(s).context("encode snapshot")?;
        send_keyed(producer, topic, &s.sku, &payload);
    }
    Ok(())
}

/// Enqueues one keyed message, waiting while the producer's queue is full.
fn send_keyed(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    payload: &[u8],
) {
    let mut record = BaseRecord::to(topic).key(key.as_bytes()).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// The newest ranking on the hot-products topic.
fn last_ranking(brokers: &str, topic: &str) -> Result<Option<HotProducts>> {
    let consumer = reader(brokers, topic)?;
    let mut last: Option<HotProducts> = None;
    drain(&consumer, Duration::from_secs(3), |p| {
        if let Ok(r) = serde_json::from_slice::<HotProducts>(p) {
            if last
                .as_ref()
                .is_none_or(|l| r.generated_at >= l.generated_at)
            {
                last = Some(r);
            }
        }
    });
    Ok(last)
}

fn ranking_table(r: &HotProducts, board: &Mutex<LatestUpdates>, top: usize) -> String {
    let mut out = format!(
        "\nHot products (the last ranking on the hot-products topic; {} SKUs considered, forecasts up to {})\n{:<5} {:<8} {:<36} {:>7} {:>9} {:>6} {:>10}\n",
        r.skus_considered,
        r.as_of.get(..10).unwrap_or_default(),
        "rank",
        "sku",
        "description",
        "score",
        "growth",
        "p_up",
        "units/14d"
    );
    let b = board.lock().ok();
    for p in r.top.iter().take(top) {
        let desc = b
            .as_ref()
            .map(|b| b.description(&p.sku))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<5} {:<8} {:<36} {:>7.2} {:>8.0}% {:>6.2} {:>10.1}\n",
            p.rank,
            p.sku,
            desc,
            p.score,
            p.growth * 100.0,
            p.p_up,
            p.forecast_units
        ));
    }
    out
}

/// The demo's default data file, relative to the working directory.
pub fn default_data_path() -> &'static Path {
    Path::new("data/online-retail/online_retail.csv.gz")
}
