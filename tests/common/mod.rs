//! Helpers shared by the integration tests: the real broker, topics, produce and read back.
//!
//! The tests talk to a real Kafka-protocol broker over TCP (Tansu, started by `scripts/test.sh`
//! and `.ci/run`) named by `TRENDCAST_TEST_BROKERS`, and to the real ONNX Runtime library named
//! by `ORT_DYLIB_PATH`. A missing one fails the test with instructions, never skips it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

use trendcast::config::{RawConfig, Settings};

pub mod durable_broker;
pub mod registry;
pub mod rng;
// not every test binary uses it
#[allow(unused_imports)]
pub use durable_broker::DurableBroker;

/// Bootstrap servers of the test broker.
pub fn brokers() -> String {
    std::env::var("TRENDCAST_TEST_BROKERS").unwrap_or_else(|_| {
        panic!("TRENDCAST_TEST_BROKERS is not set: run the tests with scripts/test.sh, which starts a Tansu broker")
    })
}

/// Path of libonnxruntime (checked to exist).
pub fn ort_library() -> PathBuf {
    let path = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("ORT_DYLIB_PATH is not set: run the tests with scripts/test.sh"));
    assert!(
        path.is_file(),
        "ORT_DYLIB_PATH={} does not exist",
        path.display()
    );
    path
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped model as the engine names it (`name@version` from its manifest) and as the
/// training report keys it in `metrics.json` (`trendcast-<family>`, its `shipped` field): the
/// tests follow whichever family the training run chose.
pub fn shipped_model() -> (String, String) {
    let dir = root().join("models/trendcast-demand");
    let read = |file: &str| -> serde_json::Value {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let manifest = read("manifest.json");
    let engine_name = format!(
        "{}@{}",
        manifest["name"].as_str().expect("manifest name"),
        manifest["version"].as_str().expect("manifest version")
    );
    let metrics = read("metrics.json");
    let key = metrics["shipped"]
        .as_str()
        .expect("metrics.json names the shipped model");
    (engine_name, key.to_string())
}

/// A name no other test run uses.
/// Where a test keeps a log it writes: `TRENDCAST_TEST_LOG_DIR` when set (it outlives the
/// test's temporary folders, for a look at a failed run), else `default`.
pub fn test_log_dir(default: &Path) -> PathBuf {
    std::env::var_os("TRENDCAST_TEST_LOG_DIR").map_or_else(|| default.to_path_buf(), PathBuf::from)
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Topic names of one test.
#[derive(Debug, Clone)]
pub struct Topics {
    pub sales: String,
    pub clicks: String,
    pub output: String,
    pub dead_letter: String,
}

impl Topics {
    /// Names and creates the four topics: sales, clicks and output with `partitions` each,
    /// the dead-letter topic with one.
    pub fn create(prefix: &str, partitions: i32) -> Self {
        let t = Self::new(prefix);
        create_topics(
            &brokers(),
            &[
                (&t.sales, partitions),
                (&t.clicks, partitions),
                (&t.output, partitions),
                (&t.dead_letter, 1),
            ],
        );
        t
    }

    pub fn new(prefix: &str) -> Self {
        let base = unique(prefix);
        Self {
            sales: format!("{base}-sales"),
            clicks: format!("{base}-clicks"),
            output: format!("{base}-updates"),
            dead_letter: format!("{base}-dlq"),
        }
    }
}

/// Creates topics on the test broker and waits until their metadata is visible.
pub fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    trendcast::kafka::create_topics(brokers, topics).unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until `engine` has consumed `n` messages, failing the test if a thread stopped or
/// `timeout` passed.
pub fn wait_consumed(engine: &trendcast::engine::RunningEngine, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while engine.stats().total_consumed() < n {
        assert!(!engine.has_failed(), "an engine thread stopped");
        assert!(
            Instant::now() < deadline,
            "consumed {} of {n} within {timeout:?}",
            engine.stats().total_consumed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Engine settings against the test broker and `topics`, with the shipped baseline model.
pub fn settings(topics: &Topics) -> Settings {
    Settings::resolve(&raw_config(topics)).expect("test settings resolve")
}

/// [`settings`] with checkpoints off: the engine starts from the group's committed offsets.
pub fn settings_without_checkpoints(topics: &Topics) -> Settings {
    let mut raw = raw_config(topics);
    raw.checkpoint.dir = String::new();
    Settings::resolve(&raw).expect("test settings resolve")
}

/// The raw configuration behind [`settings`], for tests that change more keys.
pub fn raw_config(topics: &Topics) -> RawConfig {
    let mut raw = RawConfig::default();
    raw.kafka.brokers = brokers();
    raw.kafka.group_id = unique("group");
    raw.kafka.sales_topic = topics.sales.clone();
    raw.kafka.clicks_topic = topics.clicks.clone();
    raw.kafka.output_topic = topics.output.clone();
    raw.kafka.dead_letter_topic = topics.dead_letter.clone();
    raw.scoring.manifest = root()
        .join("models/baseline/manifest.json")
        .display()
        .to_string();
    raw.scoring.onnxruntime_library = ort_library().display().to_string();
    raw.scoring.min_rescore_interval = "50ms".into();
    raw.telemetry.metrics_listen = String::new();
    raw.checkpoint.changelog_topic = format!("{}-changelog", topics.sales);
    raw.checkpoint.dir = std::env::temp_dir()
        .join(unique("trendcast-state"))
        .display()
        .to_string();
    raw
}

/// The signals topics a test creates.
pub struct SignalTopics<'a> {
    pub inventory: &'a str,
    pub restock: &'a str,
    pub hot: &'a str,
    pub new_products: &'a str,
}

/// Turns the signals processor on over `topics`, with a hot ranking every 200 ms.
pub fn enable_signals(raw: &mut RawConfig, topics: &SignalTopics) {
    raw.signals.enabled = true;
    raw.signals.inventory_topic = topics.inventory.to_string();
    raw.signals.restock_topic = topics.restock.to_string();
    raw.signals.hot_products_topic = topics.hot.to_string();
    raw.signals.hot_interval = "200ms".into();
    raw.signals.new_product_topic = topics.new_products.to_string();
}

/// A message to produce: optional key, optional value.
pub type Msg = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Produces `(key, value)` pairs to `topic` and waits for acknowledgement.
pub fn produce(brokers: &str, topic: &str, messages: &[Msg]) {
    produce_with(brokers, topic, messages, &[])
}

/// Produces `messages` in record batches of up to `per_batch` messages: librdkafka lingers long
/// enough to fill each batch (for the mid-batch fetch tests).
pub fn produce_batched(brokers: &str, topic: &str, messages: &[Msg], per_batch: usize) {
    let per_batch = per_batch.to_string();
    produce_with(
        brokers,
        topic,
        messages,
        &[
            ("batch.num.messages", per_batch.as_str()),
            ("batch.size", "4000000"),
            ("linger.ms", "500"),
        ],
    )
}

fn produce_with(brokers: &str, topic: &str, messages: &[Msg], extra: &[(&str, &str)]) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("message.max.bytes", "4194304");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: ThreadedProducer<DefaultProducerContext> = config.create().expect("producer");
    for (key, value) in messages {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush test producer");
}

/// Reads `topic` from the beginning with a fresh group until `want` messages arrived or
/// `quiet` passed without a new one (after at least one arrived or `timeout` passed).
pub fn read_all(brokers: &str, topic: &str, want: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe reader");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

/// Loads a JSON Schema from `schemas/` as a validator (formats asserted).
pub fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas").join(name)).expect("schema file");
    let value: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&value)
        .expect("schema compiles")
}

/// Value of a header, as text.
pub fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// `trendcast run` as a child process with `config/default.toml`, pointed at the test broker,
/// `topics`, consumer `group` and checkpoint folder `state`; stderr piped. Callers add `.env`
/// overrides and spawn it.
pub fn trendcast_run(topics: &Topics, group: &str, state: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trendcast"));
    command
        .current_dir(root())
        .args(["--config", "config/default.toml", "run"])
        .env("ORT_DYLIB_PATH", ort_library())
        .env("TRENDCAST_KAFKA__BROKERS", brokers())
        .env("TRENDCAST_KAFKA__GROUP_ID", group)
        .env("TRENDCAST_CHECKPOINT__DIR", state)
        .env("TRENDCAST_KAFKA__SALES_TOPIC", &topics.sales)
        .env("TRENDCAST_KAFKA__CLICKS_TOPIC", &topics.clicks)
        .env("TRENDCAST_KAFKA__OUTPUT_TOPIC", &topics.output)
        .env("TRENDCAST_KAFKA__DEAD_LETTER_TOPIC", &topics.dead_letter)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// Committed offsets of `group` for `partitions` partitions of `topic` (0 when none).
pub fn committed_offsets(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let list = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let out = list
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .collect();
    // the list goes before its consumer
    drop(list);
    out
}

/// `GET path` from `addr` over a plain HTTP/1.1 connection: (status code, body); `None` when
/// nothing answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// A free loopback address for a child's listener.
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    format!("127.0.0.1:{port}")
}
