//! `trendcast demo`: the whole Kafka path on the real UCI Online Retail log, with no setup.
//!
//! It starts librdkafka's mock cluster in process (a Kafka-protocol broker; nothing to
//! install), creates the topics, produces the converted log keyed by SKU while the engine
//! consumes it through the same consumer, window, scoring and producer code as `run`, prints a
//! table of top rising SKUs as event time passes each month, and ends with one JSON summary line.
//!
//! The mock cluster keeps at most 100k messages / 5 MiB per partition, so the producer is paced
//! to stay at most [`MAX_AHEAD`] events ahead of the consumer; nothing is lost.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::json;

use crate::config::Settings;
use crate::datasets::online_retail;
use crate::engine::RunningEngine;
use crate::publish::{Direction, TrendUpdate};

/// Partitions per demo topic (keeps each partition well under the mock cluster's limits).
pub const PARTITIONS: i32 = 16;
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
}

/// Latest update per SKU plus the month being shown, shared with the scorer's observer.
#[derive(Default)]
struct Board {
    latest: HashMap<String, TrendUpdate>,
    month: String,
    descriptions: HashMap<String, String>,
    top: usize,
}

impl Board {
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

    fn print(&self, label: &str) {
        println!("{}", self.table(label));
    }

    /// Top risers among fresh forecasts (as_of within a week of the newest): rising direction,
    /// median ≥ 1 unit per bucket, ranked by strength × p_up.
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
                let median = mean_median(u);
                (median >= 1.0).then_some((u, median))
            })
            .collect();
        risers.sort_by(|a, b| {
            (b.0.trend.strength * b.0.trend.p_up)
                .total_cmp(&(a.0.trend.strength * a.0.trend.p_up))
                .then_with(|| a.0.sku.cmp(&b.0.sku))
        });
        let mut out = format!(
            "\nTop rising SKUs, updates up to {label} ({} SKUs forecast so far)\n{:<8} {:<36} {:>10} {:>9} {:>6}  as_of\n",
            self.latest.len(),
            "sku",
            "description",
            "median/d",
            "strength",
            "p_up"
        );
        for (u, median) in risers.iter().take(self.top) {
            let desc: String = self
                .descriptions
                .get(&u.sku)
                .map(String::as_str)
                .unwrap_or("")
                .chars()
                .take(36)
                .collect();
            out.push_str(&format!(
                "{:<8} {:<36} {:>10.1} {:>8.0}% {:>6.2}  {}\n",
                u.sku,
                desc,
                median,
                u.trend.strength * 100.0,
                u.trend.p_up,
                u.as_of.get(..10).unwrap_or_default()
            ));
        }
        out
    }
}

fn mean_median(u: &TrendUpdate) -> f64 {
    let n = u.horizon.len().max(1) as f64;
    u.horizon
        .iter()
        .map(|h| f64::from(h.quantiles.get("0.5").copied().unwrap_or(0.0)))
        .sum::<f64>()
        / n
}

/// Runs the demo with `settings` (its `kafka.brokers` is replaced by the embedded broker).
pub fn run(mut settings: Settings, options: &DemoOptions) -> Result<()> {
    let started = Instant::now();
    // a self-contained run: nothing to resume from, nothing left behind
    settings.checkpoint.dir = None;
    settings.checkpoint.changelog_topic = None;
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

    let cluster =
        MockCluster::new(1).context("could not start the embedded Kafka-protocol broker")?;
    let k = &settings.kafka;
    for topic in [
        &k.sales_topic,
        &k.clicks_topic,
        &k.output_topic,
        &k.dead_letter_topic,
    ] {
        cluster
            .create_topic(topic, PARTITIONS, 1)
            .with_context(|| format!("could not create topic {topic}"))?;
    }
    settings.kafka.brokers = cluster.bootstrap_servers();
    eprintln!("demo: embedded broker at {}", settings.kafka.brokers);

    let board = Arc::new(Mutex::new(Board {
        descriptions: data.descriptions,
        top: options.top,
        ..Board::default()
    }));
    let published_skus = Arc::new(Mutex::new(HashSet::new()));
    let observer = {
        let board = board.clone();
        let skus = published_skus.clone();
        Box::new(move |u: &TrendUpdate| {
            if let Ok(mut b) = board.lock() {
                b.observe(u);
            }
            if let Ok(mut s) = skus.lock() {
                s.insert(u.sku.clone());
            }
        })
    };
    let engine =
        RunningEngine::start(&settings, Some(observer)).context("engine failed to start")?;

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.brokers)
        .set("linger.ms", "10")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .context("could not create the demo's producer")?;
    let distinct_skus: HashSet<&str> = events.iter().map(|e| e.sku.as_str()).collect();
    let produce_started = Instant::now();
    for (i, event) in events.iter().enumerate() {
        while i as u64 >= engine.stats().total_consumed() + MAX_AHEAD {
            if engine.has_failed() {
                bail!("the engine stopped while the demo was producing");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let payload = serde_json::to_vec(event).context("encode event")?;
        let mut record = BaseRecord::to(&settings.kafka.sales_topic)
            .key(event.sku.as_bytes())
            .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .context("the demo's producer could not flush")?;
    let total = events.len() as u64;
    while engine.stats().total_consumed() < total {
        if engine.has_failed() {
            bail!("the engine stopped before consuming every event");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let consume_elapsed = produce_started.elapsed();
    engine
        .finish_replay(Duration::from_secs(120))
        .context("final scoring and publishing did not finish")?;
    if let Ok(b) = board.lock() {
        b.print(&format!("{} (end of log)", b.month));
    }
    let stats = engine.stats().clone();
    let model = engine.model_id().to_string();
    let provider = engine.provider();
    let skus_held = engine.store().len();
    engine
        .shutdown(Duration::from_secs(30))
        .context("engine shutdown")?;
    let skus_with_updates = published_skus.lock().map(|s| s.len()).unwrap_or(0);
    let rejected: serde_json::Map<String, serde_json::Value> = stats
        .rejected_by_reason()
        .into_iter()
        .map(|(r, n)| (r.to_string(), json!(n)))
        .collect();
    let summary = json!({
        "summary": {
            "dataset": "UCI Online Retail (CC BY 4.0)",
            "events_produced": total,
            "events_consumed": stats.total_consumed(),
            "events_applied": stats.window_updates.get(),
            "events_rejected": stats.total_rejected(),
            "rejected_by_reason": rejected,
            "skus": distinct_skus.len(),
            "skus_held_at_end": skus_held,
            "skus_with_updates": skus_with_updates,
            "windows_scored": stats.windows_scored.get(),
            "trend_updates_published": stats.updates_published.get(),
            "dead_letters_published": stats.dead_letters.get(),
            "publish_errors": stats.publish_errors.get(),
            "model": model,
            "execution_provider": provider,
            "consume_rate_events_per_s": (total as f64 / consume_elapsed.as_secs_f64()).round(),
            "elapsed_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        }
    });
    println!("{summary}");
    Ok(())
}

/// The demo's default data file, relative to the working directory.
pub fn default_data_path() -> &'static Path {
    Path::new("data/online-retail/online_retail.csv.gz")
}
