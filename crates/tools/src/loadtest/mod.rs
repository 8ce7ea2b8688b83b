//! `trendcast bench`: the end-to-end load run, every figure measured side by side in one run.
//!
//! On one broker it measures, in order:
//! 1. producing ≥ N real-derived events (Online Retail, cloned to more SKUs when N needs it);
//! 2. (a) the raw consume rate of a bare librdkafka consumer over that topic;
//! 3. (b) trendcast's end-to-end rate over the same topic with scoring and publishing on
//!    (until every trend update is acknowledged);
//! 4. (a2) the relay ceiling: a bare consumer that publishes one of the engine's own updates per
//!    message it reads (`relay` says why this bounds any engine on one shared machine);
//! 5. the Python peer (`bench/python_peer.py`) over the same topic, when a Python is given;
//! 6. (c) event→trend-update latency at half of (b)'s rate, read from the output topic by an
//!    independent consumer (update header `trendcast-trigger-created-ms`), against the broker's
//!    own produce→consume latency on the input topic at the same time;
//! 7. (d) resident memory per active SKU with 100k and 1M SKUs in state;
//! 8. (e) the query API under load (phase `api`, needs `wrk`): single and batch lookups per
//!    second and their latency while the engine ingests at half of (b)'s rate (`api`).
//!
//! Ratios are printed with the absolute figures; the report is one JSON object on stdout.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde_json::{json, Value};

use crate::datasets::{online_retail, EventRecord, SaleRecord};
use crate::replay::{self, ReplayOptions};
use crate::update_check::{self, UpdateCheck};
use trendcast_engine::config::Settings;
use trendcast_engine::engine::RunningEngine;
use trendcast_engine::kafka::{create_topics, KafkaSettings};
use trendcast_engine::scoring::scorer::TRIGGER_HEADER;
use trendcast_engine::telemetry::LatencySample;
use trendcast_engine::window::BucketSpec;

mod api;
mod cpu;
mod relay;

use cpu::CpuMeter;

/// Distinct engine updates the relay cycles through (enough that LZ4 sees real variety per batch).
const RELAY_PAYLOADS: usize = 10_000;

/// Load-test options (also the `trendcast bench` arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Events in the throughput runs (Online Retail, cloned to more SKUs as needed).
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Partitions per input topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Online Retail CSV.
    #[arg(long, default_value = "data/online-retail/online_retail.csv.gz")]
    pub data: PathBuf,
    /// Seconds of paced load in the latency run.
    #[arg(long, default_value_t = 20.0)]
    pub latency_secs: f64,
    /// SKU counts of the memory runs.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub memory_skus: Vec<u64>,
    /// Python with bench/requirements.txt installed, for the peer; omit to skip it.
    #[arg(long, env = "TRENDCAST_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    /// Skip the Python peer even when `--python` is given (long runs where only the ratio to the
    /// bare consumer is wanted).
    #[arg(long)]
    pub no_peer: bool,
    /// Phases to run: throughput, latency, memory, api.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "throughput,latency,memory"
    )]
    pub phases: Vec<String>,
    /// Process id of the broker on this machine, to report its CPU time per phase.
    #[arg(long, env = "TRENDCAST_BENCH_BROKER_PID")]
    pub broker_pid: Option<u32>,
    /// Rates (events/s) of the latency run; default: half the measured end-to-end rate.
    #[arg(long, value_delimiter = ',')]
    pub latency_rates: Vec<f64>,
    /// Replay only the log's last N days (with `--sku-clones`, a many-SKU run of bounded size).
    #[arg(long)]
    pub last_days: Option<u32>,
    /// SKU clones of the log (each clone's SKUs are distinct); default: enough for `--events`.
    #[arg(long)]
    pub sku_clones: Option<u32>,
    /// Bucket width of the run (e.g. "1h"). The shipped model is trained on daily buckets: a copy
    /// of its manifest relabelled to this width is scored, which measures the engine's speed at
    /// that width, not forecast quality.
    #[arg(long)]
    pub bucket_width: Option<String>,
    /// Seconds of each window of the API run (no lookups, single lookups, batch lookups).
    #[arg(long, default_value_t = 10.0)]
    pub api_secs: f64,
    /// Open connections of the API run's load generator.
    #[arg(long, default_value_t = 32)]
    pub api_connections: u32,
    /// The `wrk` binary of the API run.
    #[arg(long, default_value = "wrk")]
    pub wrk: PathBuf,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Topic names of one phase.
fn phase_settings(base: &Settings, tag: &str, partitions: i32) -> Result<Settings> {
    let mut s = base.clone();
    let id = format!("bench-{}-{tag}", now_ms());
    s.kafka.sales_topic = format!("{id}-sales");
    s.kafka.clicks_topic = format!("{id}-clicks");
    s.kafka.output_topic = format!("{id}-updates");
    s.kafka.dead_letter_topic = format!("{id}-dlq");
    s.kafka.group_id = format!("{id}-engine");
    if s.checkpoint.changelog_topic.is_some() {
        s.checkpoint.changelog_topic = Some(format!("{id}-changelog"));
    }
    s.telemetry.metrics_listen = None;
    let k = &s.kafka;
    create_topics(
        &k.brokers,
        &[
            (&k.sales_topic, partitions),
            (&k.clicks_topic, partitions),
            (&k.output_topic, partitions),
            (&k.dead_letter_topic, 1),
        ],
    )?;
    Ok(s)
}

fn bare_consumer(kafka: &KafkaSettings, group: &str, topic: &str) -> Result<BaseConsumer> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().context("bare consumer")?;
    consumer
        .subscribe(&[topic])
        .context("bare consumer subscribe")?;
    Ok(consumer)
}

/// (a): messages per second of a consumer that only counts.
fn bare_consume_rate(kafka: &KafkaSettings, topic: &str, n: u64) -> Result<f64> {
    let consumer = bare_consumer(kafka, &format!("{topic}-bare"), topic)?;
    let mut seen = 0_u64;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < n {
        if Instant::now() > deadline {
            bail!("bare consumer saw {seen} of {n} messages in 10 minutes");
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            std::hint::black_box(m.payload());
            seen += 1;
        }
    }
    let secs = started
        .map(|s| s.elapsed().as_secs_f64())
        .unwrap_or(f64::NAN);
    Ok(n as f64 / secs)
}

/// (b): events per second through the engine, until every update is acknowledged.
fn engine_rate(settings: &Settings, n: u64) -> Result<(f64, Value)> {
    let engine = RunningEngine::start(settings, None).context("engine start")?;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let consumed = engine.stats().total_consumed();
        if consumed > 0 {
            started.get_or_insert_with(Instant::now);
        }
        if consumed >= n {
            break;
        }
        if engine.has_failed() || Instant::now() > deadline {
            bail!("engine consumed {consumed} of {n}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    engine
        .finish_replay(Duration::from_secs(300))
        .context("finish replay")?;
    let secs = started
        .map(|s| s.elapsed().as_secs_f64())
        .unwrap_or(f64::NAN);
    let stats = engine.stats().clone();
    engine.shutdown(Duration::from_secs(60))?;
    let detail = json!({
        "events": stats.total_consumed(),
        "rejected": stats.total_rejected(),
        "windows_scored": stats.windows_scored.get(),
        "trend_updates_published": stats.updates_published.get(),
    });
    Ok((n as f64 / secs, detail))
}

fn python_peer(python: &Path, kafka: &KafkaSettings, topic: &str, n: u64) -> Result<Value> {
    let script = Path::new("bench/python_peer.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "--brokers",
            &kafka.brokers,
            "--topic",
            topic,
            "--events",
            &n.to_string(),
        ])
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!(
            "python peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("python peer printed {last:?}"))
}

/// Waits until the engine reads as ready (`/readyz`); returns how long that took.
fn wait_ready(engine: &RunningEngine, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let probe = engine.health().ready();
        if probe.ok {
            return Ok(started.elapsed());
        }
        if engine.has_failed() || started.elapsed() > timeout {
            bail!(
                "the engine was not ready after {timeout:?}: {:?}",
                probe.reasons
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A thread that reads `consumer` until `stop` and records, for each message with a start time
/// (`start_ms`, epoch ms), how long ago that was (ms) in `latencies`; with `check`, each message
/// is also checked as a trend update (`update_check`), as a subscriber would read it.
fn spawn_latency_reader(
    consumer: BaseConsumer,
    stop: &Arc<AtomicBool>,
    latencies: &Arc<Mutex<Vec<f64>>>,
    start_ms: fn(&BorrowedMessage<'_>) -> Option<i64>,
    check: Option<Arc<Mutex<UpdateCheck>>>,
) -> std::thread::JoinHandle<()> {
    let (stop, latencies) = (stop.clone(), latencies.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                if let (Some(start), Ok(mut l)) = (start_ms(&m), latencies.lock()) {
                    l.push((now_ms() - start) as f64);
                }
                if let Some(Ok(mut c)) = check.as_ref().map(|c| c.lock()) {
                    c.observe_payload(m.payload());
                }
            }
        }
    })
}

/// The latency run's two readers: the broker's own produce→consume latency on the input, and
/// event→update on the output (each update also checked, `update_check`).
fn spawn_readers(
    k: &KafkaSettings,
    stop: &Arc<AtomicBool>,
    [broker_lat, update_lat]: [&Arc<Mutex<Vec<f64>>>; 2],
    check: &Arc<Mutex<UpdateCheck>>,
) -> Result<(std::thread::JoinHandle<()>, std::thread::JoinHandle<()>)> {
    let probe = spawn_latency_reader(
        bare_consumer(k, &format!("{}-probe", k.sales_topic), &k.sales_topic)?,
        stop,
        broker_lat,
        |m| m.timestamp().to_millis(),
        None,
    );
    let reader = spawn_latency_reader(
        bare_consumer(k, &format!("{}-reader", k.output_topic), &k.output_topic)?,
        stop,
        update_lat,
        |m| {
            m.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == TRIGGER_HEADER)
                    .and_then(|x| x.value)
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
            })
        },
        Some(check.clone()),
    );
    Ok((probe, reader))
}

/// (c): latency at a steady `rate`; returns (engine p50/p99, broker p50/p99, samples).
fn latency_run(
    base: &Settings,
    events: &[EventRecord],
    rate: f64,
    secs: f64,
    partitions: i32,
) -> Result<Value> {
    let settings = phase_settings(base, "latency", partitions)?;
    let k = settings.kafka.clone();
    let engine = RunningEngine::start(&settings, None).context("engine start")?;
    let kept = engine.keep_latency_samples();
    let stop = Arc::new(AtomicBool::new(false));
    let broker_lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let update_lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let band =
        update_check::flat_band(&settings).context("reading the model's trend definition")?;
    let check = Arc::new(Mutex::new(UpdateCheck::new(band, Default::default(), 0)));
    let (probe, reader) = spawn_readers(&k, &stop, [&broker_lat, &update_lat], &check)?;
    // Load starts once the engine is ready (group joined, partitions assigned and restored) and
    // both readers have had time to join theirs: the figures are the latency under load, not the
    // consumer group's start (reported apart as ready_after_s).
    let ready_after = wait_ready(&engine, Duration::from_secs(120))?;
    std::thread::sleep(Duration::from_secs(3));
    let take = ((rate * secs) as usize).min(events.len());
    let options = ReplayOptions {
        speed: None,
        rate: Some(rate),
        clones: 1,
        progress: false,
    };
    let produced = replay::run(&k, events[..take].to_vec(), &options)?;
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Release);
    let _ = probe.join();
    let _ = reader.join();
    let (samples, not_kept) = kept.take();
    let sorted = |part: &dyn Fn(&LatencySample) -> f32| {
        let mut v: Vec<f64> = samples.iter().map(|x| f64::from(part(x))).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let acked = sorted(&|x| x.event_to_ack_ms);
    let send_to_ack = sorted(&|x| x.send_to_ack_ms);
    let event_to_send = sorted(&|x| x.event_to_ack_ms - x.send_to_ack_ms);
    engine.shutdown(Duration::from_secs(60))?;
    let mut b = broker_lat.lock().map(|v| v.clone()).unwrap_or_default();
    let mut u = update_lat.lock().map(|v| v.clone()).unwrap_or_default();
    b.sort_by(f64::total_cmp);
    u.sort_by(f64::total_cmp);
    Ok(json!({
        "rate_events_per_s": rate.round(),
        "ready_after_s": (ready_after.as_secs_f64() * 10.0).round() / 10.0,
        "events": produced.events,
        "achieved_rate_events_per_s": produced.rate_per_s,
        "broker_produce_to_consume_ms": {"p50": percentile(&b, 0.5), "p99": percentile(&b, 0.99), "samples": b.len()},
        "event_to_update_acked_ms": {"p50": percentile(&acked, 0.5), "p99": percentile(&acked, 0.99), "samples": acked.len(), "not_kept": not_kept},
        "event_to_update_sent_ms": {"p50": percentile(&event_to_send, 0.5), "p99": percentile(&event_to_send, 0.99)},
        "update_sent_to_acked_ms": {"p50": percentile(&send_to_ack, 0.5), "p99": percentile(&send_to_ack, 0.99)},
        "event_to_update_read_ms": {"p50": percentile(&u, 0.5), "p99": percentile(&u, 0.99), "samples": u.len()},
        "acked_p99_excess_over_broker_ms": percentile(&acked, 0.99) - percentile(&b, 0.99),
        "read_p99_excess_over_broker_ms": percentile(&u, 0.99) - percentile(&b, 0.99),
        "published_checks": check.lock().map(|c| c.summary()).ok(),
    }))
}

/// (d): resident bytes per SKU with `skus` SKUs in state, one event each, through Kafka.
fn memory_run(base: &Settings, skus: u64, partitions: i32) -> Result<Value> {
    let settings = phase_settings(base, &format!("mem{skus}"), partitions)?;
    let day0 = 1_294_000_000_000_i64;
    let events: Vec<EventRecord> = (0..skus)
        .map(|i| {
            EventRecord::Sale(SaleRecord {
                sku: format!("M{i:09}"),
                ts: day0 + (i as i64 % 3_600_000),
                qty: 1.0,
                unit_price: Some(1.0),
                order_id: None,
            })
        })
        .collect();
    let options = ReplayOptions {
        speed: None,
        rate: None,
        clones: 1,
        progress: false,
    };
    replay::run(&settings.kafka, events, &options)?;
    let before = trendcast_engine::telemetry::rss_bytes();
    let engine = RunningEngine::start(&settings, None).context("engine start")?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while engine.stats().total_consumed() < skus {
        if engine.has_failed() || Instant::now() > deadline {
            bail!(
                "memory run consumed {} of {skus}",
                engine.stats().total_consumed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    let held = engine.store().len() as u64;
    let after = trendcast_engine::telemetry::rss_bytes();
    engine.shutdown(Duration::from_secs(60))?;
    let per = after.saturating_sub(before) as f64 / held.max(1) as f64;
    let raw = (settings.window.ring_capacity() * 24) as f64;
    Ok(json!({
        "skus": held,
        "rss_delta_mib": (after.saturating_sub(before) as f64 / 1048576.0).round(),
        "rss_bytes_per_sku": per.round(),
        "raw_window_bytes_per_sku": raw,
        "ratio_to_raw": (per / raw * 100.0).round() / 100.0,
    }))
}

/// (a2): the relay over the throughput phase's input, publishing as many of the engine's own
/// updates as the engine published.
fn relay_phase(settings: &Settings, partitions: i32, n: u64, publish: u64) -> Result<f64> {
    let k = &settings.kafka;
    let payloads = relay::sample_payloads(k, &k.output_topic, RELAY_PAYLOADS)?;
    let output = format!("{}-relay", k.output_topic);
    create_topics(&k.brokers, &[(&output, partitions)])?;
    let plan = relay::RelayPlan {
        input: &k.sales_topic,
        output: &output,
        read: n,
        publish,
        payloads: &payloads,
    };
    relay::relay_rate(k, &plan)
}

/// The sales of the log's last `days` days (all of them without a limit).
fn last_days(sales: Vec<SaleRecord>, days: Option<u32>) -> Vec<SaleRecord> {
    let Some(days) = days else { return sales };
    let end = sales.iter().map(|s| s.ts).max().unwrap_or(0);
    let from = end - i64::from(days) * 86_400_000;
    sales.into_iter().filter(|s| s.ts > from).collect()
}

/// Points the run at a copy of the model's manifest relabelled to another bucket width (a speed
/// measurement: the graph is the same, its forecasts are not meant for that width).
fn relabel_bucket_width(base: &mut Settings, width: &str) -> Result<()> {
    let secs = humantime::parse_duration(width)
        .with_context(|| format!("--bucket-width {width}"))?
        .as_secs();
    let source = &base.scoring.manifest;
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let mut manifest: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", source.display()))?;
    let dir = source
        .parent()
        .unwrap_or(Path::new("."))
        .canonicalize()
        .with_context(|| format!("model folder of {}", source.display()))?;
    let model = manifest["model_file"].as_str().unwrap_or("model.onnx");
    manifest["model_file"] = json!(dir.join(model).display().to_string());
    manifest["bucket_width_secs"] = json!(secs);
    let copy = std::env::temp_dir().join(format!("trendcast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&copy).with_context(|| format!("creating {}", copy.display()))?;
    let path = copy.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    base.scoring.manifest = path;
    base.window.bucket = BucketSpec::new(secs as i64 * 1000);
    eprintln!(
        "bench: {secs} s buckets, model relabelled in {}",
        copy.display()
    );
    Ok(())
}

/// The replayed input: the log's sales (its last days when asked) and how many SKU clones.
struct BenchInput {
    events: Vec<EventRecord>,
    real: u64,
    clones: u32,
    skus: u64,
}

impl BenchInput {
    fn load(options: &BenchOptions) -> Result<Self> {
        let data = online_retail::load(&options.data).context("Online Retail")?;
        let sales = last_days(data.events, options.last_days);
        let real = sales.len() as u64;
        if real == 0 {
            bail!("no Online Retail sales to replay");
        }
        let distinct = sales
            .iter()
            .map(|s| s.sku.as_str())
            .collect::<HashSet<_>>()
            .len() as u64;
        let clones = match options.sku_clones {
            Some(0) => bail!("--sku-clones must be at least 1"),
            Some(k) => k,
            None => options.events.div_ceil(real).max(1) as u32,
        };
        let events = sales.into_iter().map(EventRecord::Sale).collect();
        Ok(Self {
            events,
            real,
            clones,
            skus: distinct * u64::from(clones),
        })
    }

    /// Events produced: every sale once per clone.
    fn total(&self) -> u64 {
        self.real * u64::from(self.clones)
    }
}

/// What the throughput phase measured.
struct Throughput {
    produce: f64,
    bare: f64,
    engine: f64,
    engine_detail: Value,
    relay: f64,
    peer: Option<Value>,
    cpu: serde_json::Map<String, Value>,
}

impl Default for Throughput {
    fn default() -> Self {
        Self {
            produce: f64::NAN,
            bare: f64::NAN,
            engine: f64::NAN,
            engine_detail: Value::Null,
            relay: f64::NAN,
            peer: None,
            cpu: serde_json::Map::new(),
        }
    }
}

/// (a), (b), (a2) and the Python peer on one replayed topic, with CPU per phase.
fn throughput_phase(
    base: &Settings,
    options: &BenchOptions,
    input: &BenchInput,
) -> Result<Throughput> {
    let n = input.total();
    let settings = phase_settings(base, "throughput", options.partitions)?;
    let produce = replay::run(
        &settings.kafka,
        input.events.clone(),
        &ReplayOptions {
            speed: None,
            rate: None,
            clones: input.clones,
            progress: true,
        },
    )?;
    let mut t = Throughput {
        produce: produce.rate_per_s,
        ..Throughput::default()
    };
    eprintln!("bench: produced at {} events/s", t.produce);
    let meter = CpuMeter::new(options.broker_pid);
    let mark = meter.mark();
    t.bare = bare_consume_rate(&settings.kafka, &settings.kafka.sales_topic, n)?;
    t.cpu
        .insert("bare_consume".into(), meter.per_thousand(mark, n));
    eprintln!("bench: (a) bare consumer {:.0} events/s", t.bare);
    let mark = meter.mark();
    (t.engine, t.engine_detail) = engine_rate(&settings, n)?;
    t.cpu
        .insert("trendcast".into(), meter.per_thousand(mark, n));
    eprintln!("bench: (b) trendcast end to end {:.0} events/s", t.engine);
    let published = t.engine_detail["trend_updates_published"]
        .as_u64()
        .unwrap_or(n);
    let mark = meter.mark();
    t.relay = relay_phase(&settings, options.partitions, n, published)?;
    t.cpu.insert("relay".into(), meter.per_thousand(mark, n));
    eprintln!("bench: (a2) relay ceiling {:.0} events/s", t.relay);
    if let Some(py) = options.python.as_ref().filter(|_| !options.no_peer) {
        let v = python_peer(py, &settings.kafka, &settings.kafka.sales_topic, n)?;
        eprintln!("bench: python peer {v}");
        t.peer = Some(v);
    }
    Ok(t)
}

/// (c) at each rate asked for, or at half the engine's measured rate.
fn latency_phase(
    base: &Settings,
    options: &BenchOptions,
    events: &[EventRecord],
    engine_rate: f64,
) -> Result<Vec<Value>> {
    let rates = if options.latency_rates.is_empty() {
        vec![engine_rate / 2.0]
    } else {
        options.latency_rates.clone()
    };
    let mut runs = Vec::new();
    for rate in rates {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("the latency run needs a rate: run the throughput phase or pass --latency-rates");
        }
        let l = latency_run(base, events, rate, options.latency_secs, options.partitions)?;
        eprintln!("bench: (c) {l}");
        runs.push(l);
    }
    Ok(runs)
}

/// (e): the query API under load, at the first `--latency-rates` rate or half of `engine_rate`.
fn api_phase(
    base: &Settings,
    options: &BenchOptions,
    input: &BenchInput,
    engine_rate: f64,
) -> Result<Value> {
    let load = api::ApiLoad {
        rate: options
            .latency_rates
            .first()
            .copied()
            .unwrap_or(engine_rate / 2.0),
        secs: options.api_secs,
        wrk: &options.wrk,
        connections: options.api_connections,
        clones: input.clones,
        partitions: options.partitions,
    };
    let a = api::api_run(base, &input.events, &load)?;
    eprintln!("bench: (e) {a}");
    Ok(a)
}

/// Runs every phase and returns the report.
pub fn run(base: &Settings, options: &BenchOptions) -> Result<Value> {
    // Measures the streaming path: checkpoints go to a changelog only (local files off).
    let mut base = base.clone();
    base.checkpoint.dir = None;
    if let Some(width) = &options.bucket_width {
        relabel_bucket_width(&mut base, width)?;
    }
    let base = &base;
    let input = BenchInput::load(options)?;
    let n = input.total();
    eprintln!(
        "bench: {n} events ({} real Online Retail sales x {} SKU clones, {} SKUs)",
        input.real, input.clones, input.skus
    );
    let want = |p: &str| options.phases.iter().any(|x| x == p);
    let t = if want("throughput") {
        throughput_phase(base, options, &input)?
    } else {
        Throughput::default()
    };
    let latency = if want("latency") {
        latency_phase(base, options, &input.events, t.engine)?
    } else {
        Vec::new()
    };
    let api = if want("api") {
        api_phase(base, options, &input, t.engine)?
    } else {
        Value::Null
    };
    let mut memory = Vec::new();
    if want("memory") {
        for skus in &options.memory_skus {
            let m = memory_run(base, *skus, options.partitions)?;
            eprintln!("bench: (d) {m}");
            memory.push(m);
        }
    }
    let peer_rate = t
        .peer
        .as_ref()
        .and_then(|p| p["rate_events_per_s"].as_f64())
        .unwrap_or(f64::NAN);
    let mut ratios = HashMap::new();
    ratios.insert("end_to_end_over_bare_consume", t.engine / t.bare);
    ratios.insert("trendcast_over_python_peer", t.engine / peer_rate);
    ratios.insert("relay_over_bare_consume", t.relay / t.bare);
    ratios.insert("end_to_end_over_relay", t.engine / t.relay);
    Ok(json!({
        "model": base.scoring.manifest.display().to_string(),
        "events": n,
        "real_events": input.real,
        "sku_clones": input.clones,
        "skus": input.skus,
        "last_days": options.last_days,
        "bucket_width_secs": base.window.bucket.width_ms() / 1000,
        "partitions": options.partitions,
        "produce_rate_events_per_s": t.produce,
        "bare_consume_rate_events_per_s": t.bare.round(),
        "relay_rate_events_per_s": t.relay.round(),
        "trendcast_rate_events_per_s": t.engine.round(),
        "trendcast_detail": t.engine_detail,
        "cpu_ms_per_1000_events": t.cpu,
        "python_peer": t.peer,
        "latency": latency,
        "memory": memory,
        "api": api,
        "ratios": ratios,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(sku: &str, day: i64) -> SaleRecord {
        SaleRecord {
            sku: sku.into(),
            ts: day * 86_400_000,
            qty: 1.0,
            unit_price: None,
            order_id: None,
        }
    }

    #[test]
    fn last_days_keeps_the_logs_last_days_only() {
        let sales = vec![sale("a", 1), sale("b", 5), sale("c", 8), sale("d", 10)];
        let kept: Vec<String> = last_days(sales.clone(), Some(5))
            .into_iter()
            .map(|s| s.sku)
            .collect();
        assert_eq!(kept, ["c", "d"], "days 6-10 are the last five");
        assert_eq!(last_days(sales.clone(), None), sales);
    }

    #[test]
    fn relabelled_manifest_points_at_the_same_graph() {
        let mut settings =
            Settings::resolve(&trendcast_engine::config::RawConfig::default()).expect("defaults");
        // the default manifest path is relative to the repository root; tests run in the crate's
        settings.scoring.manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/trendcast-demand/manifest.json");
        relabel_bucket_width(&mut settings, "1h").expect("relabel");
        let text = std::fs::read_to_string(&settings.scoring.manifest).expect("copy");
        let manifest: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(manifest["bucket_width_secs"], 3600);
        let model = PathBuf::from(manifest["model_file"].as_str().expect("model_file"));
        assert!(
            model.is_absolute() && model.is_file(),
            "{}",
            model.display()
        );
        assert_eq!(settings.window.bucket.width_ms(), 3_600_000);
    }
}
