//! The query API over real HTTP, against the test broker: two `trendcast run` instances in one
//! consumer group (each owning some of the partitions) and one `trendcast serve` replica (owning
//! none) all answer for every SKU with its newest published update, byte for byte as published.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SKUS: usize = 12;

fn sale(sku: &str, day: i64, qty: usize) -> Msg {
    let ts = 1_294_000_000_000 + day * 86_400_000;
    // a producer that added a field the schema does not name: skipped by default
    let v = format!(r#"{{"sku":"{sku}","ts":{ts},"qty":{qty},"store_id":"S1"}}"#);
    (Some(sku.as_bytes().to_vec()), Some(v.into_bytes()))
}

fn sku(i: usize) -> String {
    format!("Q{i:02}")
}

/// Thirty days of sales of every test SKU, on the sales topic.
fn produce_sales(brokers: &str, topics: &Topics) {
    let input: Vec<Msg> = (0..30)
        .flat_map(|day| (0..SKUS).map(move |i| sale(&sku(i), day, 1 + (i + day as usize) % 5)))
        .collect();
    produce(brokers, &topics.sales, &input);
}

/// A trend-update-shaped message the view takes (it reads only `sku` and `seq`).
fn scripted_update(sku: &str, seq: u64) -> Msg {
    let v = format!(r#"{{"sku":"{sku}","seq":{seq},"note":"scripted"}}"#);
    (Some(sku.as_bytes().to_vec()), Some(v.into_bytes()))
}

/// Waits up to `secs` seconds for `done`, failing the test with `what` after that.
fn wait_until(what: &str, secs: u64, done: &dyn Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `POST path` with a JSON body: (status code, body).
fn http_post(addr: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

/// The child processes, with their stderr logs; killed when the test ends, however it ends.
struct Children(Vec<Child>, Vec<std::path::PathBuf>);

impl Children {
    /// Adds a child whose stderr goes to a log file.
    fn spawn(&mut self, command: &mut Command, name: &str) {
        let log = std::env::temp_dir()
            .join(unique(name))
            .with_extension("log");
        let file = std::fs::File::create(&log).expect("child log");
        self.0.push(command.stderr(file).spawn().expect("spawn"));
        self.1.push(log);
    }

    /// What became of each child: running, or its exit status and the end of its log.
    fn report(&mut self) -> String {
        let mut out = String::new();
        for (child, log) in self.0.iter_mut().zip(&self.1) {
            let status = child.try_wait().ok().flatten();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = text.lines().rev().take(8).collect::<Vec<_>>().join(" | ");
            out.push_str(&format!("\n{}: {status:?}: {tail}", log.display()));
        }
        out
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

/// Every message of `topic` (assigned from the beginning, no group, so no join to wait for),
/// once none has arrived for `quiet`.
fn read_quiet(brokers: &str, topic: &str, partitions: i32, quiet: Duration) -> Vec<Vec<u8>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("query-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    drop(tpl);
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(rdkafka::Message::payload(&m).unwrap_or_default().to_vec());
            last = Instant::now();
        }
    }
    out
}

/// The newest update per SKU on the output topic, once every SKU has one and the topic has
/// stopped growing.
fn newest_updates(brokers: &str, topic: &str) -> HashMap<String, (u64, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut newest: HashMap<String, (u64, Vec<u8>)> = HashMap::new();
        for payload in read_quiet(brokers, topic, 2, Duration::from_secs(5)) {
            let update: Value = serde_json::from_slice(&payload).expect("update JSON");
            let sku = update["sku"].as_str().expect("sku").to_string();
            let seq = update["seq"].as_u64().expect("seq");
            if newest.get(&sku).is_none_or(|(s, _)| seq > *s) {
                newest.insert(sku, (seq, payload));
            }
        }
        if newest.len() == SKUS {
            return newest;
        }
        assert!(
            Instant::now() < deadline,
            "updates for {} of {SKUS} SKUs after 120 s",
            newest.len()
        );
    }
}

#[test]
fn every_instance_answers_for_every_sku_with_its_newest_update() {
    let brokers = brokers();
    let topics = Topics::create("query", 2);
    produce_sales(&brokers, &topics);
    let group = unique("query-group");
    let states = [
        tempfile::tempdir().expect("state"),
        tempfile::tempdir().expect("state"),
    ];
    let apis = [free_addr(), free_addr(), free_addr()];
    let mut children = Children(Vec::new(), Vec::new());
    for (state, api) in states.iter().zip(&apis) {
        let mut run = trendcast_run(&topics, &group, state.path());
        run.env("TRENDCAST_API__LISTEN", api)
            .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", "");
        children.spawn(&mut run, "query-run");
    }
    let mut serve = Command::new(env!("CARGO_BIN_EXE_trendcast"));
    serve
        .current_dir(root())
        .args(["--config", "config/default.toml", "serve"])
        .env("TRENDCAST_KAFKA__BROKERS", &brokers)
        .env("TRENDCAST_KAFKA__OUTPUT_TOPIC", &topics.output)
        .env("TRENDCAST_API__LISTEN", &apis[2])
        .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", "")
        .stdout(Stdio::null());
    children.spawn(&mut serve, "query-serve");

    let mut newest = newest_updates(&brokers, &topics.output);
    for api in &apis {
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..SKUS {
            let sku = sku(i);
            loop {
                let (seq, payload) = &newest[&sku];
                let answer = http_get(api, &format!("/v1/forecasts/{sku}"));
                let got = match &answer {
                    Some((200, body)) => {
                        serde_json::from_str::<Value>(body).expect("answer JSON")["seq"].as_u64()
                    }
                    _ => None,
                };
                if got == Some(*seq) {
                    let body = &answer.as_ref().expect("answered").1;
                    assert_eq!(body.as_bytes(), &payload[..], "{api} {sku}: as published");
                    break;
                }
                if got.is_some_and(|g| g > *seq) {
                    // the engines published more since the topic was read: read it again
                    newest = newest_updates(&brokers, &topics.output);
                    continue;
                }
                if Instant::now() > deadline {
                    panic!(
                        "{api} never answered {sku} with seq {seq}: last {answer:?}{}",
                        children.report()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let (status, body) = http_get(api, "/readyz").expect("/readyz answers");
        assert_eq!(status, 200, "{api} ready: {body}");
        let (status, body) = http_get(api, "/v1/forecasts/NO-SUCH-SKU").expect("answers");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("NO-SUCH-SKU"), "{body}");
        let (status, body) = http_post(
            api,
            "/v1/forecasts:batch",
            r#"{"skus":["Q00","Q11","NOPE"]}"#,
        )
        .expect("batch answers");
        assert_eq!(status, 200, "{body}");
        let batch: Value = serde_json::from_str(&body).expect("batch JSON");
        assert_eq!(
            batch["forecasts"]["Q00"]["seq"].as_u64(),
            Some(newest["Q00"].0)
        );
        assert_eq!(
            batch["forecasts"]["Q11"]["seq"].as_u64(),
            Some(newest["Q11"].0)
        );
        assert_eq!(batch["missing"], serde_json::json!(["NOPE"]));
        let too_many: Vec<String> = (0..1_001).map(|i| format!("S{i}")).collect();
        let (status, _) = http_post(
            api,
            "/v1/forecasts:batch",
            &serde_json::json!({ "skus": too_many }).to_string(),
        )
        .expect("answers");
        assert_eq!(status, 400, "more than 1,000 SKUs");
        let (status, _) = http_post(api, "/v1/forecasts:batch", "not json").expect("answers");
        assert_eq!(status, 400);
        let (status, body) = http_get(api, "/v1/hot-products").expect("answers");
        assert_eq!(status, 404, "signals are off in this deployment: {body}");
        assert!(body.contains("publishes no hot-products topic"), "{body}");
        let (status, body) = http_get(api, "/openapi.json").expect("answers");
        assert_eq!(status, 200);
        let doc: Value = serde_json::from_str(&body).expect("OpenAPI JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/v1/forecasts/{sku}"]["get"].is_object());
        assert!(doc["components"]["schemas"]["trend_update"]["properties"]["sku"].is_object());
    }
}

/// A topic that does not exist when the view starts (a signals topic before the signals
/// component first publishes) is picked up when it appears, without the topics already being
/// read starting over, and readiness waits only for the trend-update topic.
#[test]
fn a_topic_that_appears_later_joins_the_view() {
    use trendcast::query::{Output, QueryService};
    let brokers = brokers();
    let topics = Topics::create("query-late", 2);
    let restock = unique("query-late-restock");
    produce(
        &brokers,
        &topics.output,
        &[scripted_update("A", 1), scripted_update("B", 1)],
    );
    let kafka = settings(&topics).kafka;
    let service = QueryService::start(
        &kafka,
        vec![
            (topics.output.clone(), Output::Forecasts),
            (restock.clone(), Output::Restock),
        ],
        None,
        "127.0.0.1:0".parse().expect("address"),
    )
    .expect("query service starts");
    let api = service.addr().to_string();
    let wait = |what: &str, done: &dyn Fn() -> bool| wait_until(what, 30, done);
    wait("ready without the restock topic", &|| service.ready());
    assert_eq!(http_get(&api, "/v1/restock/A").map(|r| r.0), Some(404));
    create_topics(&brokers, &[(&restock, 2)]);
    produce(&brokers, &restock, &[scripted_update("A", 7)]);
    wait("the restock signal", &|| {
        http_get(&api, "/v1/restock/A")
            .is_some_and(|(status, body)| status == 200 && body.contains(r#""seq":7"#))
    });
    produce(&brokers, &topics.output, &[scripted_update("A", 2)]);
    wait("a new update on the topic read all along", &|| {
        http_get(&api, "/v1/forecasts/A").is_some_and(|(_, body)| body.contains(r#""seq":2"#))
    });
    assert!(!service.failed());
}

/// While the broker is down the view goes on answering from what it holds (liveness stays 200),
/// and once the broker is back the reader picks up where it was: a newer update published
/// after the restart is answered. Tansu on `sqlite://` keeps the topic through the restart.
#[test]
fn the_api_keeps_answering_while_the_broker_restarts() {
    use trendcast::query::{Output, QueryService};
    let mut broker = DurableBroker::start();
    let topics = Topics::new("query-restart");
    create_topics(&broker.brokers(), &[(&topics.output, 2)]);
    produce(
        &broker.brokers(),
        &topics.output,
        &[scripted_update("A", 1), scripted_update("B", 1)],
    );
    let mut kafka = settings(&topics).kafka;
    kafka.brokers = broker.brokers();
    let service = QueryService::start(
        &kafka,
        vec![(topics.output.clone(), Output::Forecasts)],
        None,
        "127.0.0.1:0".parse().expect("address"),
    )
    .expect("query service starts");
    let api = service.addr().to_string();
    let wait = |what: &str, done: &dyn Fn() -> bool| wait_until(what, 60, done);
    let answers = |sku: &str, seq: u64| {
        http_get(&api, &format!("/v1/forecasts/{sku}")).is_some_and(|(status, body)| {
            status == 200 && body.contains(&format!(r#""seq":{seq}"#))
        })
    };
    wait("both SKUs before the restart", &|| {
        answers("A", 1) && answers("B", 1)
    });

    broker.down();
    // the reader notices the broker is gone within its fetch and reconnect timeouts: ask for a
    // while, every answer must still come from the view
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(5) {
        assert!(answers("A", 1), "answered while the broker is down");
        assert_eq!(http_get(&api, "/healthz").map(|r| r.0), Some(200), "live");
        assert_eq!(
            http_get(&api, "/v1/forecasts/NOPE").map(|r| r.0),
            Some(404),
            "unknown SKU while the broker is down"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    broker.up();
    produce(
        &broker.brokers(),
        &topics.output,
        &[scripted_update("A", 2)],
    );
    wait("the update published after the restart", &|| {
        answers("A", 2)
    });
    assert!(answers("B", 1), "what was read before the restart is kept");
    assert!(!service.failed(), "the reader survived the restart");
}

/// The OpenAPI document is one a standard tool accepts, and the API answers as it says:
/// schemathesis (from PyPI) calls every operation with generated valid and invalid requests and
/// checks each status code, content type and body against `/openapi.json`. The document is
/// given example SKUs that the engine has published, so successful answers are checked against
/// the trend-update schema too.
#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let st = std::env::var("TRENDCAST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!("TRENDCAST_SCHEMATHESIS is not set: run the tests with scripts/test.sh, which installs schemathesis")
    });
    let brokers = brokers();
    let topics = Topics::create("query-openapi", 2);
    produce_sales(&brokers, &topics);
    let state = tempfile::tempdir().expect("state");
    let api = free_addr();
    let mut children = Children(Vec::new(), Vec::new());
    let mut run = trendcast_run(&topics, &unique("openapi-group"), state.path());
    run.env("TRENDCAST_API__LISTEN", &api)
        .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", "");
    children.spawn(&mut run, "openapi-run");
    let newest = newest_updates(&brokers, &topics.output);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(0..SKUS)
        .all(|i| http_get(&api, &format!("/v1/forecasts/{}", sku(i))).is_some_and(|r| r.0 == 200))
    {
        assert!(
            Instant::now() < deadline,
            "every SKU answered within 60 s{}",
            children.report()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(newest.len(), SKUS);

    // what axum itself would answer in plain text comes in the API's error form
    for (path, want) in [
        ("/v1/forecasts/%FF", 400),
        ("/v1/forecasts/", 404),
        ("/v2/x", 404),
    ] {
        let (status, body) = http_get(&api, path).expect("answers");
        assert_eq!(status, want, "{path}: {body}");
        let e: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert!(e["error"].is_string(), "{path}: {body}");
    }
    let (status, body) = http_get(&api, "/openapi.json").expect("the document");
    assert_eq!(status, 200);
    let mut doc: Value = serde_json::from_str(&body).expect("OpenAPI JSON");
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |ops| ops.len()))
        .sum();
    let known: Vec<String> = (0..SKUS).map(sku).collect();
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        if path.contains("{sku}") {
            item["get"]["parameters"][0]["examples"] = serde_json::json!({
                "published": {"value": known[0]},
                "unknown": {"value": "NO-SUCH-SKU"},
            });
        }
    }
    doc["paths"]["/v1/forecasts:batch"]["post"]["requestBody"]["content"]["application/json"]
        ["examples"] = serde_json::json!({
        "known and unknown": {"value": {"skus": [known[1], known[2], "NOPE"]}},
    });
    let file = tempfile::NamedTempFile::new().expect("document file");
    std::fs::write(file.path(), doc.to_string()).expect("write the document");
    // schemathesis keeps a cache in its working folder: not the repository
    let workdir = tempfile::tempdir().expect("schemathesis folder");
    let output = Command::new(&st)
        .current_dir(workdir.path())
        .args(["--no-color", "run"])
        .arg(file.path())
        .args(["--url", &format!("http://{api}")])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "40"])
        .args(["--seed", "1"])
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found the API and its document apart:\n{text}{}",
        children.report()
    );
    // it did call every operation (a run that tested nothing would also exit 0)
    assert!(text.contains(&format!("Tested: {operations}")), "{text}");
}

/// The Avro schema a catalog service writes entries with: the fields of
/// `schemas/catalog_entry.schema.json`, the optional ones unions with null.
const ENTRY_AVRO: &str = r#"{"type": "record", "name": "Entry", "namespace": "shop",
  "fields": [{"name": "sku", "type": "string"},
             {"name": "title", "type": "string"},
             {"name": "description", "type": ["null", "string"], "default": null},
             {"name": "category", "type": ["null", "string"], "default": null}]}"#;

/// A catalog service writing Avro through a schema registry (the stand-in of
/// `common::registry`): its entries give the view their SKUs' categories as JSON ones do, so
/// `hot-products?category=` finds them.
#[test]
fn avro_catalog_entries_give_the_view_its_categories() {
    use apache_avro::types::Value as Avro;
    use common::registry::{framed, Registry};
    use trendcast::query::{Output, QueryService};

    let brokers = brokers();
    let topics = Topics::create("query-avro", 2);
    let (hot, catalog) = (unique("query-avro-hot"), unique("query-avro-catalog"));
    create_topics(&brokers, &[(&hot, 1), (&catalog, 2)]);
    let registry = Registry::start();
    let id = registry.hold("AVRO", ENTRY_AVRO);
    let schema = apache_avro::Schema::parse_str(ENTRY_AVRO).expect("avro schema");
    let entry = Avro::Record(vec![
        ("sku".into(), Avro::String("B".into())),
        ("title".into(), Avro::String("Blue mug".into())),
        ("description".into(), Avro::Union(0, Box::new(Avro::Null))),
        (
            "category".into(),
            Avro::Union(1, Box::new(Avro::String("kitchen".into()))),
        ),
    ]);
    let datum = apache_avro::to_avro_datum(&schema, entry).expect("datum");
    let top: Vec<String> = ["A", "B"]
        .iter()
        .enumerate()
        .map(|(i, sku)| {
            format!(
                r#"{{"rank":{},"sku":"{sku}","score":0.5,"growth":0.5,"p_up":0.5,"forecast_units":10.0,"as_of":"2011-12-01T00:00:00Z"}}"#,
                i + 1
            )
        })
        .collect();
    let ranking = format!(
        r#"{{"generated_at":"2026-01-01T00:00:00Z","as_of":"2011-12-01T00:00:00Z","partitions":[0,1],"skus_considered":2,"top":[{}]}}"#,
        top.join(",")
    );
    produce(&brokers, &topics.output, &[scripted_update("A", 1)]);
    produce(&brokers, &hot, &[(None, Some(ranking.into_bytes()))]);
    let json_entry = br#"{"sku":"A","title":"Garden hose","category":"garden"}"#;
    produce(
        &brokers,
        &catalog,
        &[
            (Some(b"B".to_vec()), Some(framed(id, &datum))),
            (Some(b"A".to_vec()), Some(json_entry.to_vec())),
        ],
    );

    let mut raw = raw_config(&topics);
    raw.schema_registry.url = registry.url.clone();
    let settings = trendcast::config::Settings::resolve(&raw).expect("settings");
    let service = QueryService::start(
        &settings.kafka,
        vec![
            (topics.output.clone(), Output::Forecasts),
            (hot.clone(), Output::HotProducts),
            (catalog.clone(), Output::Catalog),
        ],
        settings.schema_registry.as_ref(),
        "127.0.0.1:0".parse().expect("address"),
    )
    .expect("query service starts");
    let api = service.addr().to_string();
    let skus_in = |category: &str| -> Vec<String> {
        http_get(&api, &format!("/v1/hot-products?category={category}"))
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .map(|v| {
                v["top"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["sku"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until("both categories in the view", 30, &|| {
        skus_in("kitchen") == ["B"] && skus_in("garden") == ["A"]
    });
    assert!(!service.failed());
}
