//! Exactly-once state through crashes and rebalances, against real Kafka-protocol brokers.
//!
//! Each test replays real events (Online Retail sales and Retailrocket clicks, the clicks shifted
//! by 1,461 days so both logs cover May–August 2011) into co-partitioned topics, runs
//! `trendcast run` as a child process the way an operator would, disturbs it, and then checks:
//! - the per-SKU window state (`trendcast dump-state` of the final checkpoint) equals that of an
//!   uninterrupted run byte for byte;
//! - every closed bucket in which a SKU had an applied event has a trend update for that SKU with
//!   that bucket's end as `as_of` on the output topic, and no bucket without one has any.
//!
//! Input is produced in record batches of 500 messages, so every restart resumes from a committed
//! offset inside a batch: on Tansu 0.6.0 that is the case the engine's offset guard
//! (`trendcast::ingest::offset_guard`) must rewind for, or messages are lost.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use common::*;
use trendcast::datasets::{online_retail, retailrocket, EventRecord};
use trendcast::ingest::{decode, Admission, Source, ValidationLimits};
use trendcast::window::{rfc3339, WindowStore};

/// The tests share one machine's two cores: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Retailrocket (May–Sep 2015) moved onto Online Retail's 2011.
const CLICK_SHIFT_MS: i64 = 1_461 * 86_400_000;
const PARTITIONS: i32 = 4;

fn bundled_data(name: &str) -> PathBuf {
    let p = root().join("data").join(name);
    assert!(p.exists(), "real data missing: {}", p.display());
    p
}

/// Sales of Online Retail from `from` (RFC 3339 date) for `sales` events, plus up to `clicks`
/// Retailrocket clicks shifted into the same months, merged in time order.
fn real_events(sales: usize, clicks: usize) -> Vec<EventRecord> {
    let from = chrono::DateTime::parse_from_rfc3339("2011-05-01T00:00:00Z")
        .expect("date")
        .timestamp_millis();
    let or = online_retail::load(&bundled_data("online-retail/online_retail.csv.gz")).expect("OR");
    let mut events: Vec<EventRecord> = or
        .events
        .into_iter()
        .filter(|e| e.ts >= from)
        .take(sales)
        .map(EventRecord::Sale)
        .collect();
    let rr = retailrocket::load(&bundled_data("retailrocket-subset/events.csv.gz")).expect("RR");
    // Retailrocket's purchases become sales, its views and add-to-carts clicks: shift both
    events.extend(rr.events.into_iter().take(clicks).map(|e| match e {
        EventRecord::Click(mut c) => {
            c.ts -= CLICK_SHIFT_MS;
            EventRecord::Click(c)
        }
        EventRecord::Sale(mut s) => {
            s.ts -= CLICK_SHIFT_MS;
            EventRecord::Sale(s)
        }
    }));
    events.sort_by_key(EventRecord::ts);
    events
}

fn produce_events(brokers: &str, topics: &Topics, events: &[EventRecord]) {
    let mut sales = Vec::new();
    let mut clicks = Vec::new();
    for e in events {
        let msg = (
            Some(e.sku().as_bytes().to_vec()),
            Some(serde_json::to_vec(e).expect("json")),
        );
        match e {
            EventRecord::Sale(_) => sales.push(msg),
            EventRecord::Click(_) => clicks.push(msg),
        }
    }
    let started = Instant::now();
    produce_batched(brokers, &topics.sales, &sales, 500);
    produce_batched(brokers, &topics.clicks, &clicks, 500);
    eprintln!(
        "produced {} sales + {} clicks in {:.1?}",
        sales.len(),
        clicks.len(),
        started.elapsed()
    );
}

/// One engine's identity: group, checkpoint folder, output topic.
struct Run {
    name: String,
    group: String,
    state: tempfile::TempDir,
    output: String,
    config: PathBuf,
}

impl Run {
    fn new(name: &str, brokers: &str, topics: &Topics) -> Self {
        let group = unique(&format!("recovery-{name}"));
        let output = format!("{}-{name}-updates", topics.sales);
        create_topics(brokers, &[(&output, PARTITIONS)]);
        Self::member(name, brokers, topics, &group, &output)
    }

    /// Another instance (own state folder: another host) of `group` writing to `output`.
    fn member(name: &str, brokers: &str, topics: &Topics, group: &str, output: &str) -> Self {
        let group = group.to_string();
        let output = output.to_string();
        let state = tempfile::tempdir().expect("state dir");
        let config = state.path().join("trendcast.toml");
        let text = format!(
            r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
# dynamic membership: these runs hand partitions over through 3 s sessions, and Tansu 0.6.0
# pauses a static member's join for 3 s (twice on a first join), so a static member with a 3 s
# session is expelled while it joins, again and again (tests/static_membership.rs covers static
# membership with the default 45 s session)
group_instance_id = ""
sales_topic = "{sales}"
clicks_topic = "{clicks}"
output_topic = "{output}"
dead_letter_topic = "{dlq}"
[kafka.properties]
"session.timeout.ms" = "3000"
"heartbeat.interval.ms" = "500"
"max.poll.interval.ms" = "10000"
"fetch.wait.max.ms" = "20"
[scoring]
manifest = "{manifest}"
onnxruntime_library = "{ort}"
min_rescore_interval = "50ms"
[telemetry]
metrics_listen = ""
log_format = "json"
[checkpoint]
dir = "{dir}"
interval = "1s"
compact_every = 5
"#,
            sales = topics.sales,
            clicks = topics.clicks,
            dlq = topics.dead_letter,
            manifest = root().join("models/baseline/manifest.json").display(),
            ort = ort_library().display(),
            dir = state.path().join("ckpt").display(),
        );
        std::fs::write(&config, text).expect("write config");
        Self {
            name: name.to_string(),
            group,
            state,
            output,
            config,
        }
    }

    /// Starts `trendcast run`; its log lines are collected.
    fn spawn(&self, log: &Arc<Mutex<Vec<(Instant, String)>>>) -> Child {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trendcast"))
            .args(["--config"])
            .arg(&self.config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn trendcast run");
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            // also on disk while the test runs, for a look at a run that hangs
            let dir = test_log_dir(self.state.path());
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}-engine.log", self.name)))
                .ok();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push((Instant::now(), line));
                    }
                }
            });
        }
        child
    }

    fn dump(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_trendcast"))
            .args(["--config"])
            .arg(&self.config)
            .args(["dump-state", "--dir"])
            .arg(self.state.path().join("ckpt").join(&self.group))
            .output()
            .expect("dump-state");
        assert!(
            out.status.success(),
            "dump-state ({}) failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8 dump")
    }
}

fn offsets(brokers: &str, group: Option<&str>, topics: &[&str]) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group.unwrap_or("trendcast-test-offsets"))
        .create()
        .expect("consumer");
    let mut out = Vec::new();
    match group {
        Some(_) => {
            let mut tpl = TopicPartitionList::new();
            for t in topics {
                for p in 0..PARTITIONS {
                    tpl.add_partition(t, p);
                }
            }
            if let Ok(list) = consumer.committed_offsets(tpl, Duration::from_secs(10)) {
                for e in list.elements() {
                    out.push(match e.offset() {
                        Offset::Offset(o) => o,
                        _ => 0,
                    });
                }
            }
        }
        None => out = log_ends(&consumer, topics),
    }
    out
}

/// The end offset (one past the last message) of every partition of `topics`, in the order
/// `offsets` lists them. Not the high watermark alone: Tansu 0.6.0 reports the last record
/// batch's first offset + 1, so the last message is read from there (on Apache Kafka the two
/// agree).
fn log_ends(consumer: &BaseConsumer, topics: &[&str]) -> Vec<i64> {
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        for p in 0..PARTITIONS {
            // a restarted broker may need a while before it answers metadata requests
            let deadline = Instant::now() + Duration::from_secs(90);
            let high = loop {
                match consumer.fetch_watermarks(t, p, Duration::from_secs(10)) {
                    Ok((_, high)) => break high,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("watermarks of {t}/{p}: {e}; retrying");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Err(e) => panic!("watermarks of {t}/{p}: {e}"),
                }
            };
            ends.push(high);
            if high > 0 {
                tpl.add_partition_offset(t, p, Offset::Offset(high - 1))
                    .expect("offset");
            }
        }
    }
    if tpl.count() == 0 {
        return ends;
    }
    consumer.assign(&tpl).expect("assign the last batches");
    let index = |topic: &str, p: i32| {
        let t = topics
            .iter()
            .position(|t| *t == topic)
            .expect("known topic");
        t * PARTITIONS as usize + p as usize
    };
    // every assigned partition sends its last batch; then a quiet second ends the read
    let mut heard = std::collections::HashSet::new();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while heard.len() < tpl.count() || quiet_since.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < deadline,
            "last batches not read within 60 s"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let i = index(m.topic(), m.partition());
            ends[i] = ends[i].max(m.offset() + 1);
            heard.insert(i);
            quiet_since = Instant::now();
        }
    }
    consumer.unassign().expect("unassign");
    ends
}

/// Waits until `group` has committed every input offset (the engine checkpointed all input).
fn wait_caught_up(brokers: &str, run: &Run, topics: &Topics, child: &mut Child, timeout: Duration) {
    wait_caught_up_unless(brokers, run, topics, child, timeout, &|| false);
}

/// As [`wait_caught_up`], but gives up (returns false) as soon as `broken()` says the broker can
/// no longer serve.
fn wait_caught_up_unless(
    brokers: &str,
    run: &Run,
    topics: &Topics,
    child: &mut Child,
    timeout: Duration,
    broken: &dyn Fn() -> bool,
) -> bool {
    let inputs = [topics.sales.as_str(), topics.clicks.as_str()];
    let end = offsets(brokers, None, &inputs);
    let deadline = Instant::now() + timeout;
    loop {
        if broken() {
            return false;
        }
        let committed = offsets(brokers, Some(&run.group), &inputs);
        if committed == end {
            return true;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{}: engine exited",
            run.name
        );
        assert!(
            Instant::now() < deadline,
            "{}: committed {committed:?} of {end:?} within {timeout:?}",
            run.name
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "no exit within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// (sku, bucket index) of every event the engine applies, computed offline from the topics as
/// stored (each partition in offset order, through the engine's own decoder and admission),
/// plus the newest closed bucket at the end.
fn applied_buckets(
    brokers: &str,
    topics: &Topics,
    events: &[EventRecord],
) -> (BTreeSet<(String, i64)>, i64) {
    let sales = events
        .iter()
        .filter(|e| matches!(e, EventRecord::Sale(_)))
        .count();
    let counts = [sales, events.len() - sales];
    let settings = settings(topics);
    let store = Arc::new(WindowStore::new(settings.window.clone()));
    let spec = store.spec();
    let mut admission = Admission::new(store.clone());
    let limits = ValidationLimits {
        max_future_ms: i64::MAX / 4,
        ..settings.validation.clone()
    };
    let mut applied = BTreeSet::new();
    for (topic, source) in [
        (&topics.sales, Source::Sales),
        (&topics.clicks, Source::Clicks),
    ] {
        let n = counts[source as usize];
        let mut msgs = read_all(brokers, topic, n, Duration::from_secs(120));
        assert_eq!(msgs.len(), n, "read back {topic}");
        msgs.sort_by_key(|m| (m.partition(), m.offset()));
        for m in &msgs {
            let Ok(event) = decode(source, m.key(), m.payload(), &limits, i64::MAX / 4) else {
                continue;
            };
            if admission.admit(source, m.partition(), &event).is_ok() {
                applied.insert((event.sku.to_string(), spec.index_of(event.ts)));
            }
        }
    }
    let closed = store.clock().closed_index().expect("events were applied");
    (applied, closed)
}

/// (sku, as_of) of every trend update on `topic`.
fn updates(brokers: &str, topic: &str) -> BTreeSet<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("updates-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut ends = HashMap::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        ends.insert(p, high);
    }
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = BTreeSet::new();
    let mut next: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Tansu's high watermark can trail the newest writes by a batch: after reaching it, keep
    // reading until the topic has been quiet for 2 s.
    let mut quiet_since: Option<Instant> = None;
    loop {
        let reached = !ends
            .iter()
            .any(|(p, e)| next.get(p).copied().unwrap_or(0) < *e);
        if reached && quiet_since.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            break;
        }
        if reached && quiet_since.is_none() {
            quiet_since = Some(Instant::now());
        }
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            if reached {
                quiet_since = Some(Instant::now());
            }
            next.insert(m.partition(), m.offset() + 1);
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).expect("update json");
            out.insert((
                v["sku"].as_str().unwrap_or_default().to_string(),
                v["as_of"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// Every closed bucket with an applied event of a SKU has that SKU's update for it, and no
/// other bucket has one.
fn assert_every_closed_bucket_updated(
    brokers: &str,
    topics: &Topics,
    run: &Run,
    applied: &BTreeSet<(String, i64)>,
    closed: i64,
) {
    let spec = settings(topics).window.bucket;
    let got = updates(brokers, &run.output);
    let missing: Vec<_> = applied
        .iter()
        .filter(|(_, b)| *b <= closed)
        .map(|(sku, b)| (sku.clone(), rfc3339(spec.end(*b))))
        .filter(|k| !got.contains(k))
        .collect();
    let want = applied.iter().filter(|(_, b)| *b <= closed).count();
    if let Some((sku, _)) = missing.first() {
        let theirs: Vec<_> = got
            .iter()
            .filter(|(s, _)| s == sku)
            .map(|(_, a)| a.clone())
            .collect();
        let buckets: Vec<_> = applied
            .iter()
            .filter(|(s, _)| s == sku)
            .map(|(_, b)| rfc3339(spec.end(*b)))
            .collect();
        panic!(
            "{}: {} of {want} closed (sku, bucket) pairs have no update, e.g. {:?}\n{sku}: updates as of {theirs:?}\n{sku}: applied buckets ending {buckets:?}; newest closed ends {}",
            run.name,
            missing.len(),
            &missing[..missing.len().min(5)],
            rfc3339(spec.end(closed))
        );
    }
    // and none for a bucket without data: a scorer that lags (restarts, catch-up) must not
    // walk the empty buckets in between
    let with_data: BTreeSet<(String, String)> = applied
        .iter()
        .map(|(sku, b)| (sku.clone(), rfc3339(spec.end(*b))))
        .collect();
    let extra: Vec<_> = got.difference(&with_data).collect();
    assert!(
        extra.is_empty(),
        "{}: {} of {} updates are for a bucket in which the SKU had no applied event, e.g. {:?}",
        run.name,
        extra.len(),
        got.len(),
        &extra[..extra.len().min(5)]
    );
    eprintln!(
        "{}: all {want} closed (sku, bucket) pairs have an update, and no other bucket has one",
        run.name
    );
}

/// A reference run without disturbance: its final dump.
fn reference_dump(brokers: &str, topics: &Topics) -> String {
    reference_dump_with(brokers, topics, None)
}

/// The same on `mock` (whose topics, changelog included, must exist beforehand).
fn reference_dump_with(
    brokers: &str,
    topics: &Topics,
    mock: Option<
        &rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    >,
) -> String {
    let run = match mock {
        None => Run::new("reference", brokers, topics),
        Some(cluster) => {
            let group = unique("recovery-reference");
            cluster
                .create_topic(&format!("{group}-changelog"), PARTITIONS, 1)
                .expect("mock changelog");
            let output = format!("{}-reference-updates", topics.sales);
            Run::member("reference", brokers, topics, &group, &output)
        }
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut child = run.spawn(&log);
    wait_caught_up(brokers, &run, topics, &mut child, Duration::from_secs(600));
    stop(&mut child);
    eprintln!("reference run: {:.1?}", started.elapsed());
    let dump = run.dump();
    assert!(
        dump.lines().count() > 100,
        "reference dump too small:\n{dump}"
    );
    dump
}

/// Log lines containing `needle`.
fn count_lines(log: &Arc<Mutex<Vec<(Instant, String)>>>, needle: &str) -> usize {
    log.lock()
        .map(|l| l.iter().filter(|(_, s)| s.contains(needle)).count())
        .unwrap_or(0)
}

/// Waits until `n` partition restores have been logged in all.
fn wait_restored(log: &Arc<Mutex<Vec<(Instant, String)>>>, n: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_lines(log, "partition state restored") < n {
        if child.try_wait().expect("try_wait").is_some() || Instant::now() > deadline {
            let tail: Vec<String> = log
                .lock()
                .map(|l| l.iter().rev().take(20).map(|(_, s)| s.clone()).collect())
                .unwrap_or_default();
            panic!(
                "no restore of its partitions; last log lines:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Share of the input committed by `run`'s group, in percent.
fn progress(brokers: &str, run: &Run, topics: &Topics) -> f64 {
    let inputs = [topics.sales.as_str(), topics.clicks.as_str()];
    let end: i64 = offsets(brokers, None, &inputs).iter().sum();
    let done: i64 = offsets(brokers, Some(&run.group), &inputs).iter().sum();
    100.0 * done as f64 / end.max(1) as f64
}

/// Seeded xorshift: kill points differ per run but can be replayed from the printed seed.
fn rng(seed: u64) -> impl FnMut(u64, u64) -> u64 {
    let mut x = seed.max(1);
    move |lo, hi| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lo + x % (hi - lo).max(1)
    }
}

fn seed() -> u64 {
    std::env::var("TRENDCAST_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        })
}

fn assert_same_state(reference: &str, got: &str, what: &str) {
    if reference != got {
        let diff = reference
            .lines()
            .zip(got.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("reference: {a}\n{what}: {b}"))
            .unwrap_or_else(|| {
                format!(
                    "{} vs {} lines",
                    reference.lines().count(),
                    got.lines().count()
                )
            });
        panic!("{what}: window state differs from the uninterrupted run\n{diff}");
    }
}

#[test]
fn sigkill_three_times_changes_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let brokers = brokers();
    let topics = Topics::create("crash", PARTITIONS);
    let events = real_events(150_000, 60_000);
    assert!(events.len() >= 200_000, "{} events", events.len());
    produce_events(&brokers, &topics, &events);
    let reference = reference_dump(&brokers, &topics);

    let seed = seed();
    eprintln!("crash test seed {seed} (TRENDCAST_TEST_SEED replays it)");
    let mut next = rng(seed);
    let run = Run::new("crashed", &brokers, &topics);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let mut child = run.spawn(&log);
        // kill while it works: once it has restored its partitions, at a random point after
        wait_restored(&log, (i + 1) * PARTITIONS as usize, &mut child);
        let after = Duration::from_millis(next(300, 5_000));
        std::thread::sleep(after);
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "engine exited early"
        );
        kill(&mut child);
        let consumed = progress(&brokers, &run, &topics);
        eprintln!(
            "SIGKILL {} at {after:.1?} after restore; committed {consumed:.0}% of the input",
            i + 1
        );
    }
    let mut child = run.spawn(&log);
    // the last kill may come after every offset was committed; then "caught up" holds at once,
    // and a SIGTERM before the group assigns the partitions would stop a run that owns nothing
    // (and so closes and scores nothing): wait until this run has restored them
    wait_restored(&log, 4 * PARTITIONS as usize, &mut child);
    finish_and_check(
        &brokers,
        &topics,
        &run,
        &mut child,
        &log,
        &reference,
        &events,
        "after 3 SIGKILLs",
    );
}

/// Lets `run` read all input, stops it with SIGTERM, then checks its state against `reference`
/// and that every closed bucket has its update.
#[allow(clippy::too_many_arguments)]
fn finish_and_check(
    brokers: &str,
    topics: &Topics,
    run: &Run,
    child: &mut Child,
    log: &Arc<Mutex<Vec<(Instant, String)>>>,
    reference: &str,
    events: &[EventRecord],
    what: &str,
) {
    let _warnings = WarningsAtEnd(log, &run.name);
    wait_caught_up(brokers, run, topics, child, Duration::from_secs(600));
    stop(child);
    assert_same_state(reference, &run.dump(), what);
    let (applied, closed) = applied_buckets(brokers, topics, events);
    assert_every_closed_bucket_updated(brokers, topics, run, &applied, closed);
}

/// Prints the engine's warnings when dropped (also when a check panicked).
struct WarningsAtEnd<'a>(&'a Arc<Mutex<Vec<(Instant, String)>>>, &'a str);

impl Drop for WarningsAtEnd<'_> {
    fn drop(&mut self) {
        print_warnings(self.0, self.1);
    }
}

/// Prints the engine's warnings and errors (at most 20 distinct messages): what went wrong
/// around a fault is in CI's output when a later check fails.
fn print_warnings(log: &Arc<Mutex<Vec<(Instant, String)>>>, name: &str) {
    let lines = log.lock().map(|l| l.clone()).unwrap_or_default();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, line) in &lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let level = v["level"].as_str().unwrap_or("");
        if level != "WARN" && level != "ERROR" {
            continue;
        }
        let mut message = format!("{level} {}", v["fields"]["message"].as_str().unwrap_or(""));
        if let Some(e) = v["fields"]["error"].as_str() {
            message = format!("{message}: {e}");
        }
        match counts.iter_mut().find(|(m, _)| *m == message) {
            Some((_, n)) => *n += 1,
            None => counts.push((message, 1)),
        }
    }
    for (message, n) in counts.iter().take(20) {
        eprintln!("{name} engine log (×{n}): {:.300}", message);
    }
}

/// Partitions named in "partition state restored" log lines after `since`, with their times.
fn restores_since(log: &Arc<Mutex<Vec<(Instant, String)>>>, since: Instant) -> Vec<(Instant, u64)> {
    log.lock()
        .map(|l| {
            l.iter()
                .filter(|(t, s)| *t >= since && s.contains("partition state restored"))
                .filter_map(|(t, s)| {
                    let v: serde_json::Value = serde_json::from_str(s).ok()?;
                    Some((*t, v["fields"]["partition"].as_u64()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tansu 0.6.0's group coordinator keeps a member killed while leading the group in the next
/// generation's assignment, so its partitions are never handed over; this test therefore runs on
/// librdkafka's mock cluster (a Kafka-protocol broker served over TCP by this test process), whose
/// coordinator expires sessions like Kafka. The mock keeps about 5 MiB per partition, so the
/// replay is kept small (10 days of both logs).
#[test]
fn a_survivor_takes_over_a_killed_instance_within_10_s() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mock = MockSetup::new("takeover", None);
    let (brokers, topics, group, output) = (&mock.brokers, &mock.topics, &mock.group, &mock.output);
    let events = mock.events.clone();
    let reference = reference_dump_with(brokers, topics, Some(&mock.cluster));
    let survivor = Run::member("survivor", brokers, topics, group, output);
    let victim = Run::member("victim", brokers, topics, group, output);
    let (slog, vlog) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    // the victim starts first (so it leads the group), the survivor joins and takes its share
    let mut v = victim.spawn(&vlog);
    wait_restored(&vlog, PARTITIONS as usize, &mut v);
    let mut s = survivor.spawn(&slog);
    wait_restored(&slog, PARTITIONS as usize / 2, &mut s);
    let start = Instant::now() - Duration::from_secs(3600);
    // the victim keeps what the survivor did not get
    let taken: Vec<u64> = restores_since(&slog, start)
        .iter()
        .map(|(_, p)| *p)
        .collect();
    let owned: Vec<u64> = (0..PARTITIONS as u64)
        .filter(|p| !taken.contains(p))
        .collect();
    std::thread::sleep(Duration::from_millis(next_ms()));
    let killed = Instant::now();
    kill(&mut v);
    eprintln!("victim owned partitions {owned:?}; SIGKILL");
    let deadline = killed + Duration::from_secs(60);
    let took = loop {
        let back = restores_since(&slog, killed);
        if owned.iter().all(|p| back.iter().any(|(_, q)| q == p)) {
            break back
                .iter()
                .map(|(t, _)| *t - killed)
                .max()
                .unwrap_or_default();
        }
        if Instant::now() > deadline {
            let tail: Vec<String> = slog
                .lock()
                .map(|l| {
                    l.iter()
                        .rev()
                        .take(40)
                        .map(|(_, s)| s.chars().take(400).collect())
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "the survivor never restored {owned:?}; its last log lines (newest first):\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "takeover: the survivor restored the victim's partitions {:.2} s after SIGKILL",
        took.as_secs_f64()
    );
    if let Ok(l) = slog.lock() {
        for (t, line) in l.iter().filter(|(t, _)| *t >= killed) {
            if line.contains("rebalanced") || line.contains("restored") || line.contains("revoked")
            {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                eprintln!(
                    "  +{:.2} s {} {}",
                    (*t - killed).as_secs_f64(),
                    v["fields"]["message"],
                    v["fields"]["took_ms"]
                );
            }
        }
    }
    assert!(took < Duration::from_secs(10), "takeover took {took:?}");
    finish_and_check(
        brokers,
        topics,
        &survivor,
        &mut s,
        &slog,
        &reference,
        &events,
        "after a takeover",
    );
}

/// librdkafka's mock cluster with the topics of one test, 10 days of both logs produced, and the
/// changelog of `group` created (the mock has no CreateTopics).
struct MockSetup {
    cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    brokers: String,
    topics: Topics,
    group: String,
    output: String,
    events: Vec<EventRecord>,
}

impl MockSetup {
    /// Produces the first `produced` events (all when `None`).
    fn new(prefix: &str, produced: Option<usize>) -> Self {
        let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        let brokers = cluster.bootstrap_servers();
        let topics = Topics::new(prefix);
        let group = unique("recovery-group");
        let output = format!("{}-group-updates", topics.sales);
        let reference_output = format!("{}-reference-updates", topics.sales);
        for (t, n) in [
            (topics.sales.as_str(), PARTITIONS),
            (topics.clicks.as_str(), PARTITIONS),
            (topics.dead_letter.as_str(), 1),
            (output.as_str(), PARTITIONS),
            (reference_output.as_str(), PARTITIONS),
            (format!("{group}-changelog").as_str(), PARTITIONS),
        ] {
            cluster.create_topic(t, n, 1).expect("mock topic");
        }
        let events = real_events(8_000, 3_000);
        let n = produced.unwrap_or(events.len()).min(events.len());
        produce_events(&brokers, &topics, &events[..n]);
        Self {
            cluster,
            brokers,
            topics,
            group,
            output,
            events,
        }
    }
}

/// The broker goes down mid-replay and comes back; the engine reconnects on its own and the state
/// and updates are as without the outage. Runs on librdkafka's mock cluster, whose broker can be
/// taken down and up with its data kept (see docs/RELIABILITY.md for why not Tansu on sqlite).
#[test]
fn a_broker_outage_mid_replay_changes_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // half the input before the outage, the rest after it: the engine must reconnect to see it
    let half = real_events(8_000, 3_000).len() / 2;
    let mock = MockSetup::new("outage", Some(half));
    let (brokers, topics) = (&mock.brokers, &mock.topics);
    let run = Run::member("outage", brokers, topics, &mock.group, &mock.output);
    pause_on_unacknowledged_updates(&run);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut child = run.spawn(&log);
    wait_restored(&log, PARTITIONS as usize, &mut child);
    // down at once, while the engine reads the first half and its updates are in flight:
    // backpressure pauses the partitions, the session ends during the outage, and the
    // assignment comes back after it (`pause_on_unacknowledged_updates`)
    let before = progress(brokers, &run, topics);
    mock.cluster.broker_down(1).expect("broker down");
    eprintln!("broker down with {before:.0}% of the first half committed");
    std::thread::sleep(Duration::from_secs(5));
    mock.cluster.broker_up(1).expect("broker up");
    produce_events(brokers, topics, &mock.events[half..]);
    eprintln!("broker up again; second half produced");
    let reference = reference_dump_with(brokers, topics, Some(&mock.cluster));
    let rebalanced = log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, line)| line.contains("revoked partitions checkpointed"))
        .count();
    eprintln!("revocations seen around the outage: {rebalanced}");
    finish_and_check(
        brokers,
        topics,
        &run,
        &mut child,
        &log,
        &reference,
        &mock.events,
        "after a broker outage",
    );
}

/// Backpressure after 500 unacknowledged updates: while the broker is down, ingest pauses every
/// partition, and it resumes them once the broker is back, around the group session's end (3 s
/// here, 10 s with `relax_group_timing`), when the assignment is lost and given back.
/// librdkafka keeps a pause across that (only the application resumes a partition), so a
/// partition paused when it was revoked must be resumed when it is assigned again: once, one
/// came back paused and was never read (CI, a durable broker restart).
fn pause_on_unacknowledged_updates(run: &Run) {
    let mut text = std::fs::read_to_string(&run.config).expect("config");
    text.push_str("[ingest]\nmax_publish_in_flight = 500\n");
    std::fs::write(&run.config, text).expect("config");
}

fn next_ms() -> u64 {
    rng(seed())(500, 3_000)
}

/// The group session timeout `relax_group_timing` sets.
const GROUP_SESSION: Duration = Duration::from_secs(10);

/// Heartbeats every 3 s (session 10 s) and checkpoints every 3 s instead of the other tests'
/// 0.5 s / 1 s.
fn relax_group_timing(run: &Run) {
    let text = std::fs::read_to_string(&run.config).expect("config");
    let text = text
        .replace(
            r#""session.timeout.ms" = "3000""#,
            r#""session.timeout.ms" = "10000""#,
        )
        .replace(
            r#""heartbeat.interval.ms" = "500""#,
            r#""heartbeat.interval.ms" = "3000""#,
        )
        .replace(r#"interval = "1s""#, r#"interval = "3s""#);
    std::fs::write(&run.config, text).expect("config");
}

/// The broker on durable storage (Tansu on `sqlite://`) is stopped mid-replay and started again;
/// the engine reconnects on its own, and its state and updates are as in an undisturbed run (the
/// reference runs on the shared in-memory broker, with the same events and partitioning).
#[test]
fn a_durable_broker_restart_mid_replay_changes_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // three quarters before the restart (enough that the engine is still reading when the broker
    // goes down), the rest after it: the engine must reconnect to see it
    let events = real_events(12_000, 4_000);
    let shared = brokers();
    let reference_topics = Topics::create("restart-reference", PARTITIONS);
    produce_events(&shared, &reference_topics, &events);
    let reference = reference_dump(&shared, &reference_topics);
    // Tansu's own storage can die mid-run (a panic in its sqlite engine, docs/RELIABILITY.md):
    // such a try cannot pass, so it is reported and the scenario runs again on a fresh broker
    const TRIES: usize = 3;
    for attempt in 1..=TRIES {
        match restart_mid_replay(&events, &reference) {
            None => return,
            Some(panic) => eprintln!("try {attempt}/{TRIES}: Tansu's storage died ({panic})"),
        }
    }
    panic!("Tansu's sqlite storage died in each of {TRIES} tries: the engine was not tested");
}

/// One try of the durable-broker restart; `Some(Tansu's panic)` when the broker's storage died
/// (nothing about the engine is known then), `None` when every check passed.
fn restart_mid_replay(events: &[EventRecord], reference: &str) -> Option<String> {
    let first = events.len() * 3 / 4;
    let mut broker = DurableBroker::start();
    let brokers = broker.brokers();
    let topics = Topics::new("restart");
    create_topics(
        &brokers,
        &[
            (&topics.sales, PARTITIONS),
            (&topics.clicks, PARTITIONS),
            (&topics.dead_letter, 1),
        ],
    );
    produce_events(&brokers, &topics, &events[..first]);
    let run = Run::new("restart", &brokers, &topics);
    // Fewer group writes: Tansu 0.6.0's sqlite engine can panic in a heartbeat's group update
    // (`unreachable!` in tansu-storage service.rs:337), after which its storage answers every
    // request with an error (UNKNOWN_SERVER_ERROR); see docs/RELIABILITY.md.
    relax_group_timing(&run);
    pause_on_unacknowledged_updates(&run);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut child = run.spawn(&log);
    wait_restored(&log, PARTITIONS as usize, &mut child);
    std::thread::sleep(Duration::from_millis(rng(seed())(200, 1_500)));
    let before = progress(&brokers, &run, &topics);
    let down_at = Instant::now();
    broker.down();
    eprintln!("broker stopped with {before:.0}% of the first part committed");
    // down for longer than the group session (10 s, `relax_group_timing`): the engine's
    // assignment is lost, it rejoins and restores every partition, and the rest of the log
    // arrives while it does (in CI, a 3 s outage plus a slow restart did this by chance, and
    // the engine stalled there)
    std::thread::sleep(GROUP_SESSION + Duration::from_secs(2));
    broker.up();
    eprintln!("broker up again after {:.1?}", down_at.elapsed());
    produce_events(&brokers, &topics, &events[first..]);
    let died = || broker.storage_died().is_some();
    let timeout = Duration::from_secs(600);
    // the engine's warnings go with a timeout here, as `finish_and_check` prints them with its own
    let warnings = WarningsAtEnd(&log, &run.name);
    let caught_up = wait_caught_up_unless(&brokers, &run, &topics, &mut child, timeout, &died);
    // not printed twice: it holds only references, so forgetting it leaks nothing
    std::mem::forget(warnings);
    if !caught_up {
        // how the engine ends on a broker that answers nothing is not this test's subject
        kill(&mut child);
        return broker.storage_died();
    }
    finish_and_check(
        &brokers,
        &topics,
        &run,
        &mut child,
        &log,
        reference,
        events,
        "after a broker restart",
    );
    None
}
