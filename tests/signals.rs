//! The signals component through a real broker: restock signals fire on edges only (and keep
//! doing so across a restart, and across a move to another host through the signals
//! changelog), bad inventory is dead-lettered, Avro inventory is read through a schema registry,
//! and the hot-products ranking is unchanged by duplicate delivery of trend updates.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::Message;
use serde_json::{json, Value};

use common::registry::{framed, Registry};
use common::{
    brokers, committed_offsets, create_topics, enable_signals, produce, read_all, schema, unique,
    Msg, SignalTopics, Topics,
};
use trendcast::config::Settings;
use trendcast::publish::{Publisher, RegistryAccess, SchemaRegistry};
use trendcast::signals::processor::SignalStats;
use trendcast::signals::{Signals, SignalsError};
use trendcast::telemetry::EngineStats;

const T0: i64 = 1_322_697_600_000; // 2011-12-01T00:00:00Z
const DAY: i64 = 86_400_000;

struct Setup {
    settings: Settings,
    topics: Topics,
    inventory: String,
    restock: String,
    hot: String,
    catalog: String,
    new_products: String,
}

/// Topics and settings; with `text` = (text model folder, launch library) the catalog input
/// and new-product forecasts are on too.
fn setup(partitions: i32, text: Option<(&str, &std::path::Path)>) -> Setup {
    let topics = Topics::new("signals");
    let inventory = format!("{}-inventory", topics.sales);
    let restock = format!("{}-restock", topics.sales);
    let hot = format!("{}-hot", topics.sales);
    let catalog = format!("{}-catalog", topics.sales);
    let new_products = format!("{}-new-products", topics.sales);
    create_topics(
        &brokers(),
        &[
            (&topics.output, partitions),
            (&inventory, partitions),
            (&catalog, partitions),
            (&restock, 1),
            (&hot, 1),
            (&new_products, 1),
            (&topics.dead_letter, 1),
        ],
    );
    let mut raw = common::raw_config(&topics);
    raw.checkpoint.interval = "300ms".into();
    enable_signals(
        &mut raw,
        &SignalTopics {
            inventory: &inventory,
            restock: &restock,
            hot: &hot,
            new_products: &new_products,
        },
    );
    raw.signals.hot_top = 3;
    raw.signals.hot_min_volume = 5.0;
    if let Some((model, library)) = text {
        raw.signals.catalog_topic = catalog.clone();
        raw.signals.text_model = model.to_string();
        raw.signals.launch_library = library.display().to_string();
    }
    Setup {
        settings: Settings::resolve(&raw).expect("settings resolve"),
        topics,
        inventory,
        restock,
        hot,
        catalog,
        new_products,
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(), SignalsError>>,
    stats: Arc<SignalStats>,
    publisher: Publisher,
}

fn start(s: &Setup) -> Running {
    start_reading_avro(s, None)
}

/// [`start`], reading Avro inputs through `registry`.
fn start_reading_avro(s: &Setup, registry: Option<SchemaRegistry>) -> Running {
    let publisher =
        Publisher::new(&s.settings.kafka, Arc::new(EngineStats::new())).expect("producer");
    let signals = Signals::new(
        &s.settings.kafka,
        s.settings.signals.clone().expect("signals on"),
        s.settings.checkpoint.dir.as_deref(),
        publisher.clone(),
    )
    .expect("signals start")
    .read_avro_through(registry);
    let stats = signals.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || signals.run(&flag));
    Running {
        stop,
        handle,
        stats,
        publisher,
    }
}

impl Running {
    /// Produces one scripted message ("inv": to the inventory topic, else to the trend-update
    /// topic) and waits until the component has read it.
    fn feed(&self, s: &Setup, brokers: &str, topic: &str, msg: &Msg) {
        let topic = if topic == "inv" {
            &s.inventory
        } else {
            &s.topics.output
        };
        let before = self.read();
        produce(brokers, topic, std::slice::from_ref(msg));
        self.wait_read(before + 1);
    }

    fn read(&self) -> u64 {
        self.stats.updates.get() + self.stats.inventory.get() + self.stats.catalog.get()
    }

    fn wait_read(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.read() < n {
            assert!(!self.handle.is_finished(), "the signals thread stopped");
            assert!(
                Instant::now() < deadline,
                "read {} of {n} inputs",
                self.read()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `done` holds (the counters move after the input is counted as read).
    fn wait_until(&self, what: &str, done: impl Fn(&SignalStats) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(&self.stats) {
            assert!(!self.handle.is_finished(), "the signals thread stopped");
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.handle
            .join()
            .expect("signals thread")
            .expect("signals ran cleanly");
        self.publisher
            .flush(Duration::from_secs(30))
            .expect("flush");
    }
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// A trend update with 14 daily steps whose three quantiles all equal `per_day`.
fn update(sku: &str, seq: u64, per_day: f32, strength: f64, p_up: f64) -> Msg {
    let horizon: Vec<Value> = (0..14)
        .map(|i| {
            json!({"start": at(T0 + i * DAY), "end": at(T0 + (i + 1) * DAY),
                   "quantiles": {"0.1": per_day, "0.5": per_day, "0.9": per_day}})
        })
        .collect();
    let direction = if strength > 0.1 { "rising" } else { "flat" };
    let body = json!({"sku": sku, "as_of": at(T0), "model": "scripted@1", "seq": seq,
                      "horizon": horizon,
                      "trend": {"direction": direction, "strength": strength, "p_up": p_up}});
    (
        Some(sku.as_bytes().to_vec()),
        Some(body.to_string().into_bytes()),
    )
}

fn stock(sku: &str, ts: i64, on_hand: f64, on_order: f64) -> Msg {
    let body = json!({"sku": sku, "ts": ts, "on_hand": on_hand, "on_order": on_order});
    (
        Some(sku.as_bytes().to_vec()),
        Some(body.to_string().into_bytes()),
    )
}

fn bodies(brokers: &str, topic: &str, want: usize) -> Vec<Value> {
    read_all(brokers, topic, want, Duration::from_secs(20))
        .iter()
        .filter_map(|m| m.payload().and_then(|p| serde_json::from_slice(p).ok()))
        .collect()
}

#[test]
fn restock_signals_fire_on_edges_only_across_a_restart() {
    restock_script(Restart::SameHost);
}

/// The second half runs on "another host": an empty checkpoint folder under the same group
/// identity (a StatefulSet pod rescheduled without its volume). The state comes back from the
/// signals changelog, so the triggers armed before the move still fire exactly as on one host.
#[test]
fn restock_signals_fire_on_edges_only_across_a_move_to_another_host() {
    restock_script(Restart::NewHost);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// Same checkpoint folder.
    SameHost,
    /// An empty checkpoint folder: only the changelog holds the state.
    NewHost,
}

fn restock_script(restart: Restart) {
    let mut s = setup(2, None);
    let b = brokers();
    // 10 a day, no spread: ROP = 7 days × 10 = 70, order-up-to = 14 days × 10 = 140
    let script: Vec<(&str, Msg)> = vec![
        ("inv", stock("A", T0, 200.0, 0.0)),     // no forecast yet
        ("upd", update("A", 1, 10.0, 0.0, 0.5)), // 200 > 70
        ("inv", stock("A", T0 + 1, 100.0, 0.0)), // 100 > 70
        ("inv", stock("A", T0 + 2, 60.0, 0.0)),  // crosses: order 140 − 60 = 80
        ("inv", stock("A", T0 + 3, 58.0, 0.0)),  // 82 vs 80: not material
        // restart here
        ("upd", update("A", 2, 20.0, 1.0, 0.9)), // ROP 140, S 280: order 222
        ("upd", update("A", 2, 20.0, 1.0, 0.9)), // duplicate
        ("inv", stock("A", T0 + 4, 58.0, 222.0)), // position 280 > 140: clear
        ("inv", stock("A", T0 + 1, 0.0, 0.0)),   // older than the held snapshot
        (
            "inv",
            (
                Some(b"A".to_vec()),
                Some(br#"{"sku":"A","ts":1,"on_hand":"many"}"#.to_vec()),
            ),
        ),
    ];
    let mut running = start(&s);
    for (i, (topic, msg)) in script.iter().enumerate() {
        if i == 5 {
            running.stop();
            if restart == Restart::NewHost {
                let fresh = std::env::temp_dir().join(unique("trendcast-new-host"));
                s.settings.checkpoint.dir = Some(fresh);
            }
            running = start(&s);
        }
        running.feed(&s, &b, topic, msg);
    }
    running.stop();

    let signals = bodies(&b, &s.restock, 3);
    let seen: Vec<(String, String, f64, u64)> = signals
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap_or_default().to_string(),
                v["reason"].as_str().unwrap_or_default().to_string(),
                v["order_qty"].as_f64().unwrap_or(-1.0),
                v["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("reorder".into(), "crossed_reorder_point".into(), 80.0, 1),
            ("reorder".into(), "recommendation_changed".into(), 222.0, 2),
            ("clear".into(), "back_above_reorder_point".into(), 0.0, 3),
        ]
    );
    println!("restock signal example: {}", signals[0]);
    let first = &signals[0];
    assert_eq!(first["reorder_point"], json!(70.0));
    assert_eq!(first["order_up_to"], json!(140.0));
    // 60 units at 10 a day, counted from the snapshot time (T0 + 2 ms)
    assert_eq!(first["stockout_at"], json!(at(T0 + 2 + 6 * DAY)));
    let validator = schema("restock_signal.schema.json");
    for v in &signals {
        assert!(validator.is_valid(v), "schema rejects {v}");
    }
    let dead = read_all(&b, &s.topics.dead_letter, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1, "the malformed snapshot is dead-lettered");
    assert_eq!(
        common::header(&dead[0], "trendcast-reason").as_deref(),
        Some("wrong_type")
    );
}

/// The Avro schema an inventory system writes snapshots with: the fields of
/// `schemas/inventory_snapshot.schema.json`.
const STOCK_AVRO: &str = r#"{"type": "record", "name": "Stock", "namespace": "shop",
  "fields": [{"name": "sku", "type": "string"},
             {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
             {"name": "on_hand", "type": "double"},
             {"name": "on_order", "type": ["null", "double"], "default": null}]}"#;

/// A snapshot of `sku` as an Avro datum of [`STOCK_AVRO`] (not yet framed).
fn avro_stock(schema: &apache_avro::Schema, sku: &str, ts: i64, on_hand: f64) -> Vec<u8> {
    use apache_avro::types::Value as Avro;
    let record = Avro::Record(vec![
        ("sku".into(), Avro::String(sku.into())),
        ("ts".into(), Avro::TimestampMillis(ts)),
        ("on_hand".into(), Avro::Double(on_hand)),
        (
            "on_order".into(),
            Avro::Union(1, Box::new(Avro::Double(0.0))),
        ),
    ]);
    apache_avro::to_avro_datum(schema, record).expect("avro datum")
}

/// An inventory system writing Avro through a Schema Registry (the stand-in of
/// `common::registry`): its snapshot counts as a JSON one does, so the restock signal fires from
/// it, and a datum cut short is dead-lettered as `invalid_avro`.
#[test]
fn avro_inventory_snapshots_are_read_through_the_registry() {
    let s = setup(2, None);
    let b = brokers();
    let registry = Registry::start();
    let id = registry.hold("AVRO", STOCK_AVRO);
    let schema = apache_avro::Schema::parse_str(STOCK_AVRO).expect("avro schema");
    let client = SchemaRegistry::new(
        &registry.url,
        Duration::from_secs(5),
        &RegistryAccess::default(),
    )
    .expect("client");
    let datum = avro_stock(&schema, "A", T0 + 1, 60.0);
    let key = Some(b"A".to_vec());
    let script: Vec<(&str, Msg)> = vec![
        ("upd", update("A", 1, 10.0, 0.0, 0.5)), // ROP 70, order-up-to 140
        ("inv", (key.clone(), Some(framed(id, &datum)))), // 60 < 70: order 80
        ("inv", (key, Some(framed(id, &datum[..datum.len() - 3])))),
    ];
    let running = start_reading_avro(&s, Some(client));
    for (topic, msg) in &script {
        running.feed(&s, &b, topic, msg);
    }
    running.stop();

    let signals = bodies(&b, &s.restock, 1);
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0]["action"], json!("reorder"));
    assert_eq!(signals[0]["order_qty"], json!(80.0));
    let dead = read_all(&b, &s.topics.dead_letter, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1, "the datum cut short is dead-lettered");
    assert_eq!(
        common::header(&dead[0], "trendcast-reason").as_deref(),
        Some("invalid_avro")
    );
}

#[test]
fn the_ranking_is_unchanged_by_duplicate_updates() {
    let s = setup(2, None);
    let b = brokers();
    let updates: Vec<Msg> = vec![
        update("rise-a", 1, 2.0, 0.5, 0.6), // rising, p_up 0.6
        update("rise-b", 1, 2.0, 0.8, 0.9), // rising, p_up 0.9, 28 units
        update("rise-c", 1, 1.0, 0.4, 0.9), // rising, p_up 0.9, 14 units
        update("small", 1, 0.2, 3.0, 0.9),  // 2.8 units: under the volume floor
        update("fall", 1, 5.0, -0.5, 0.1),  // not called rising
        update("rise-d", 1, 3.0, 0.1, 0.5), // called flat
    ];
    let running = start(&s);
    produce(&b, &s.topics.output, &updates);
    running.wait_read(updates.len() as u64);
    std::thread::sleep(Duration::from_millis(800)); // a ranking interval passes
    let rankings_before = running.stats.rankings.get();
    produce(&b, &s.topics.output, &updates); // delivered again
    running.wait_read(2 * updates.len() as u64);
    std::thread::sleep(Duration::from_millis(800));
    let rankings_after = running.stats.rankings.get();
    running.stop();

    let rankings = bodies(&b, &s.hot, rankings_before as usize);
    let last = rankings.last().expect("a ranking was published");
    println!("ranking example: {last}");
    let top: Vec<&str> = last["top"]
        .as_array()
        .expect("top")
        .iter()
        .filter_map(|r| r["sku"].as_str())
        .collect();
    assert_eq!(top, ["rise-b", "rise-c", "rise-a"]);
    assert_eq!(last["skus_considered"], json!(6));
    assert!(schema("hot_products.schema.json").is_valid(last), "{last}");
    // duplicates changed nothing, so nothing new was published (the final one at shutdown is
    // skipped too: the ranking did not change)
    assert_eq!(rankings_after, rankings_before);
    assert_eq!(rankings.len() as u64, rankings_before);
}

fn catalog_entry(sku: &str, title: &str) -> Msg {
    let body = json!({"sku": sku, "title": title, "description": "", "category": ""});
    (
        Some(sku.as_bytes().to_vec()),
        Some(body.to_string().into_bytes()),
    )
}

#[test]
fn new_products_get_text_forecasts_then_blends_and_embeddings_survive_a_restart() {
    use trendcast::catalog::library::{LaunchLibrary, LibraryProduct};
    use trendcast::catalog::TextEmbedder;
    let model = std::env::var("TRENDCAST_TEXT_MODEL_DIR").unwrap_or_else(|_| {
        panic!("TRENDCAST_TEXT_MODEL_DIR is not set: run the tests with scripts/test.sh")
    });
    // a library of three mugs selling 6 a day and three bags selling 1 a day
    let mut embedder = TextEmbedder::load(
        std::path::Path::new(&model),
        Some(&common::ort_library()),
        1,
    )
    .expect("text model");
    let items = [
        ("mug-1", "WHITE CERAMIC TEA MUG", 6.0),
        ("mug-2", "RED SPOTTY CERAMIC MUG", 6.0),
        ("mug-3", "ENAMEL COFFEE MUG", 6.0),
        ("bag-1", "JUMBO SHOPPER BAG", 1.0),
        ("bag-2", "LUNCH BAG WOODLAND", 1.0),
        ("bag-3", "RECYCLED TOTE BAG", 1.0),
    ];
    let texts: Vec<&str> = items.iter().map(|i| i.1).collect();
    let embeddings = embedder.embed(&texts).expect("embed");
    let library = LaunchLibrary {
        text_model: "all-MiniLM-L6-v2".into(),
        k: 3,
        mix: 1.0,
        products: items
            .iter()
            .zip(embeddings)
            .map(|((sku, _, level), embedding)| LibraryProduct {
                sku: sku.to_string(),
                curve: vec![*level; 14],
                embedding,
            })
            .collect(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("library.bin");
    library.save(&path).expect("save library");
    let s = setup(2, Some((&model, &path)));
    let b = brokers();

    let running = start(&s);
    produce(
        &b,
        &s.catalog,
        &[catalog_entry("NEW-MUG", "BLUE CERAMIC COFFEE MUG")],
    );
    running.wait_read(1);
    running.wait_until("the embedding", |s| s.embeddings.get() == 1);
    running.stop();
    // the catalog's offsets are committed with the state (a restart re-reads nothing)
    let group = format!("{}-signals", s.settings.kafka.group_id);
    let committed: i64 = committed_offsets(&b, &group, &s.catalog, 2).iter().sum();
    assert_eq!(committed, 1, "catalog offsets committed");
    // after a restart the embedding comes from the saved state: the same text is not embedded
    let running = start(&s);
    produce(
        &b,
        &s.catalog,
        &[catalog_entry("NEW-MUG", "BLUE CERAMIC COFFEE MUG")],
    );
    running.wait_read(1);
    running.wait_until("the reuse", |s| s.embeddings_reused.get() == 1);
    assert_eq!(running.stats.embeddings.get(), 0);
    // its first sale: the first trend update (10 a day) is blended with the text forecast
    produce(
        &b,
        &s.topics.output,
        &[update("NEW-MUG", 1, 10.0, 0.5, 0.6)],
    );
    running.wait_read(2);
    running.stop();

    let out = bodies(&b, &s.new_products, 2);
    assert_eq!(out.len(), 2, "{out:?}");
    let validator = schema("new_product_forecast.schema.json");
    for v in &out {
        assert!(validator.is_valid(v), "schema rejects {v}");
    }
    let (text, blend) = (&out[0], &out[1]);
    println!("new-product forecast examples:\n{text}\n{blend}");
    assert_eq!(text["model"], json!("cold-start-text@1"));
    assert_eq!(text["horizon"][0]["quantiles"]["0.5"], json!(6.0), "{text}");
    let near: Vec<&str> = text["neighbours"]
        .as_array()
        .expect("neighbours")
        .iter()
        .filter_map(|n| n["sku"].as_str())
        .collect();
    assert!(near.iter().all(|n| n.starts_with("mug-")), "{near:?}");
    assert_eq!(blend["model"], json!("cold-start-blend@1"));
    assert_eq!(blend["days_of_history"], json!(1));
    // w = 1/28: 10/28 + 6·27/28
    let q = blend["horizon"][0]["quantiles"]["0.5"]
        .as_f64()
        .unwrap_or(0.0);
    assert!((q - (10.0 / 28.0 + 6.0 * 27.0 / 28.0)).abs() < 1e-4, "{q}");
    assert_eq!(blend["seq"], json!(2));
    report_shows_the_new_product(&s);
}

/// The trend report made from these topics (`trendcast report --from-topics`) shows the new
/// product's newest forecast, with its catalog title and its nearest neighbours.
fn report_shows_the_new_product(s: &Setup) {
    use trendcast::report::{self, collect, ReportOptions};
    // the report reads the sales topic for the actuals (none here)
    create_topics(&brokers(), &[(&s.topics.sales, 1)]);
    let inputs = collect::from_topics(&s.settings).expect("report inputs from the topics");
    assert!(inputs.not_read.is_empty(), "{:?}", inputs.not_read);
    let built = report::build(&inputs, &ReportOptions::default());
    assert_eq!(built.new_products.len(), 1, "{:?}", built.new_products);
    let row = &built.new_products[0];
    assert_eq!(row.sku, "NEW-MUG");
    assert_eq!(
        row.title, "BLUE CERAMIC COFFEE MUG",
        "title from the catalog topic"
    );
    assert_eq!(row.days_of_history, 1, "the newest forecast (the blend)");
    assert!(
        row.neighbours.iter().all(|n| n.0.starts_with("mug-")),
        "{row:?}"
    );
    let html = report::html::render(&built);
    assert!(html.contains(r#"<tr class="new-product" data-sku="NEW-MUG">"#));
}

/// The signals component finds a SKU's state partition with `murmur2_partition`; it must be
/// where trendcast's producer (librdkafka `murmur2_random`) actually puts the key.
#[test]
fn murmur2_partition_is_where_the_producer_puts_a_key() {
    let b = brokers();
    let topic = unique("murmur");
    create_topics(&b, &[(&topic, 7)]);
    let s = setup(1, None);
    let publisher =
        Publisher::new(&s.settings.kafka, Arc::new(EngineStats::new())).expect("producer");
    let keys: Vec<String> = (0..60).map(|i| format!("SKU-{i}-{}", i * 7919)).collect();
    for k in &keys {
        publisher
            .send(
                trendcast::publish::MessageKind::Signal,
                &topic,
                Some(k.as_bytes()),
                Some(b"x"),
                None,
            )
            .expect("send");
    }
    publisher.flush(Duration::from_secs(30)).expect("flush");
    let back = read_all(&b, &topic, keys.len(), Duration::from_secs(30));
    assert_eq!(back.len(), keys.len());
    for m in back {
        let key = m.key().expect("key");
        assert_eq!(
            m.partition() as usize,
            trendcast::kafka::murmur2_partition(key, 7),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn an_inventory_topic_with_another_partition_count_is_refused() {
    let s = setup(2, None);
    let odd = unique("inventory-odd");
    create_topics(&brokers(), &[(&odd, 3)]);
    let mut settings = s.settings.signals.clone().expect("signals on");
    settings.inventory_topic = Some(odd.clone());
    let publisher =
        Publisher::new(&s.settings.kafka, Arc::new(EngineStats::new())).expect("producer");
    let err = Signals::new(&s.settings.kafka, settings, None, publisher)
        .err()
        .expect("a mismatched inventory topic is refused")
        .to_string();
    assert!(
        err.contains(&odd) && err.contains("co-partitioned"),
        "{err}"
    );
}
