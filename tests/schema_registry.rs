//! The Confluent wire format through the real broker, with the engine's schemas registered over
//! real HTTP (and HTTPS), against the stand-in registry of `common::registry`: no Schema Registry
//! can be installed on these machines.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use rdkafka::Message;
use serde_json::{json, Value};

use common::registry::{framed, self_signed, Registry, MEDIA_TYPE};
use common::*;
use trendcast::engine::{EngineError, RunningEngine};
use trendcast::publish::{RegistryAccess, RegistryError, SchemaRegistry};
use trendcast::vocab::wire;

const DAY: i64 = 86_400_000;
/// 2011-01-03, a Monday.
const START: i64 = 1_294_012_800_000;

/// The Avro schema an Avro-speaking producer writes sales with: the fields of
/// `schemas/sales_event.schema.json`.
const SALE_AVRO: &str = r#"{"type": "record", "name": "Sale", "namespace": "shop",
  "fields": [{"name": "sku", "type": "string"},
             {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
             {"name": "qty", "type": "double"},
             {"name": "unit_price", "type": ["null", "double"], "default": null}]}"#;

/// A sale of `qty` units of `sku` on day `day` as an Avro datum of [`SALE_AVRO`].
fn avro_sale(schema: &apache_avro::Schema, sku: &str, day: i64, qty: f64) -> Vec<u8> {
    use apache_avro::types::Value as Avro;
    let ts = START + day * DAY + 12 * 3_600_000;
    let record = Avro::Record(vec![
        ("sku".into(), Avro::String(sku.into())),
        ("ts".into(), Avro::TimestampMillis(ts)),
        ("qty".into(), Avro::Double(qty)),
        (
            "unit_price".into(),
            Avro::Union(1, Box::new(Avro::Double(2.0))),
        ),
    ]);
    apache_avro::to_avro_datum(schema, record).expect("avro datum")
}

/// A sale of `qty` units of `sku` on day `day`, as plain JSON.
fn sale(sku: &str, day: i64, qty: u32) -> Vec<u8> {
    let ts = START + day * DAY + 12 * 3_600_000;
    serde_json::to_vec(&json!({"sku": sku, "ts": ts, "qty": qty, "unit_price": 2.0})).unwrap()
}

#[test]
fn framed_inputs_are_read_and_outputs_carry_their_registered_schema_id() {
    let brokers = brokers();
    let topics = Topics::create("registry", 2);
    let registry = Registry::start();
    let mut raw = raw_config(&topics);
    raw.schema_registry.url = registry.url.clone();
    raw.schema_registry.frame_outputs = true;
    let settings = trendcast::config::Settings::resolve(&raw).expect("settings");

    // Ten days of three SKUs: one producer frames JSON values (a registry-aware JSON Schema
    // serializer, its schema registered by it), one sends Avro (likewise), one plain JSON. Two
    // framed values are bad: an id the registry does not hold, and an Avro datum cut short.
    let sales_schema = std::fs::read_to_string(root().join("schemas/sales_event.schema.json"))
        .expect("sales schema");
    let (json_id, avro_id) = {
        let mut held = registry.held.lock().unwrap();
        held.schemas.push(("JSON".into(), sales_schema));
        held.schemas.push(("AVRO".into(), SALE_AVRO.into()));
        (held.schemas.len() as u32 - 1, held.schemas.len() as u32)
    };
    let avro_schema = apache_avro::Schema::parse_str(SALE_AVRO).expect("avro schema");
    let mut messages = Vec::new();
    for day in 0..10 {
        messages.push((
            Some(b"FRAMED".to_vec()),
            Some(framed(json_id, &sale("FRAMED", day, 3))),
        ));
        messages.push((Some(b"PLAIN".to_vec()), Some(sale("PLAIN", day, 2))));
        let datum = avro_sale(&avro_schema, "AVRO", day, 4.0);
        messages.push((Some(b"AVRO".to_vec()), Some(framed(avro_id, &datum))));
    }
    let unknown = framed(999, &avro_sale(&avro_schema, "AVRO", 3, 1.0));
    let datum = avro_sale(&avro_schema, "AVRO", 4, 1.0);
    let cut_short = framed(avro_id, &datum[..datum.len() - 4]);
    messages.push((Some(b"AVRO".to_vec()), Some(unknown.clone())));
    messages.push((Some(b"AVRO".to_vec()), Some(cut_short.clone())));
    produce(&brokers, &topics.sales, &messages);

    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    wait_consumed(&engine, messages.len() as u64, Duration::from_secs(60));
    engine
        .finish_replay(Duration::from_secs(60))
        .expect("finish replay");
    assert_eq!(
        engine.stats().total_rejected(),
        2,
        "only the two bad values"
    );

    // the schema went to the registry under the TopicNameStrategy subject, with its media type
    let subject = format!("{}-value", topics.output);
    let id = registry
        .subject_id(&subject)
        .expect("trend_update registered");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/trend_update.schema.json")).unwrap(),
    )
    .unwrap();
    let client = SchemaRegistry::new(
        &registry.url,
        Duration::from_secs(5),
        &RegistryAccess::default(),
    )
    .expect("client");
    let held = client.schema(id).expect("schema by id");
    assert_eq!(held.schema_type, "JSON");
    assert_eq!(
        serde_json::from_str::<Value>(&held.schema).unwrap(),
        expected
    );
    let again = client
        .register_json(&subject, &held.schema)
        .expect("register again");
    assert_eq!(again, id, "the same schema keeps its id");
    assert!(registry
        .held
        .lock()
        .unwrap()
        .content_types
        .iter()
        .all(|c| c == MEDIA_TYPE));

    // every update is framed with that id, and its body is a schema-valid trend update
    let published = engine.stats().updates_published.get() as usize;
    assert!(
        published >= 16,
        "both SKUs scored on most days: {published}"
    );
    let updates = read_all(&brokers, &topics.output, published, Duration::from_secs(30));
    assert_eq!(updates.len(), published);
    let validator = schema("trend_update.schema.json");
    let mut skus = std::collections::BTreeSet::new();
    for m in &updates {
        let (schema_id, body) = wire::unframe(m.payload().expect("value"));
        assert_eq!(schema_id, Some(id), "framed with the registered id");
        let update: Value = serde_json::from_slice(body).expect("JSON body");
        assert!(validator.is_valid(&update), "{update}");
        skus.insert(update["sku"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(
        skus.into_iter().collect::<Vec<_>>(),
        ["AVRO", "FRAMED", "PLAIN"]
    );
    // the Avro sales counted as JSON ones do: 4 units a day, every day
    let window = engine.store().get("AVRO").expect("AVRO window");
    let closed = engine.store().clock().closed_index().expect("closed");
    assert_eq!(
        window.bucket(closed)[trendcast::window::Feature::Units as usize],
        4.0
    );

    // the two bad values are dead-lettered byte for byte, saying why
    let dead = read_all(&brokers, &topics.dead_letter, 2, Duration::from_secs(20));
    let mut reasons: Vec<(Option<String>, Option<&[u8]>)> = dead
        .iter()
        .map(|m| (header(m, "trendcast-reason"), m.payload()))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            (Some("invalid_avro".into()), Some(cut_short.as_slice())),
            (Some("unknown_schema".into()), Some(unknown.as_slice())),
        ]
    );
    drop(engine);
}

/// The Avro datum of a framed output value, decoded with the schema registered under its id,
/// as a consumer with a registry-aware Avro deserializer reads it.
fn read_avro(client: &SchemaRegistry, value: &[u8], want_id: u32) -> apache_avro::types::Value {
    let (id, body) = wire::unframe(value);
    assert_eq!(id, Some(want_id), "framed with the subject's id");
    let held = client.schema(want_id).expect("schema by id");
    assert_eq!(held.schema_type, "AVRO");
    let schema = apache_avro::Schema::parse_str(&held.schema).expect("an Avro schema");
    let mut reader = body;
    let datum = apache_avro::from_avro_datum(&schema, &mut reader, None).expect("decodes");
    assert!(reader.is_empty(), "one datum, nothing after it");
    datum
}

/// A field of a decoded Avro record.
fn field<'a>(datum: &'a apache_avro::types::Value, name: &str) -> &'a apache_avro::types::Value {
    match datum {
        apache_avro::types::Value::Record(fields) => {
            &fields.iter().find(|(n, _)| n == name).expect(name).1
        }
        other => panic!("not a record: {other:?}"),
    }
}

/// `output_format = "avro"`: every output topic's subject holds the Avro form of its schema, the
/// values are Avro datums framed with its id, and the engine's own readers (the signals
/// component reading trend updates, the query API) read them back: the API answers the JSON a
/// JSON engine would have published, valid against the JSON Schema.
#[test]
fn avro_outputs_are_registered_as_avro_and_read_back_as_json() {
    use trendcast::query::{Output, QueryService};
    let brokers = brokers();
    let topics = Topics::create("registry-avro-out", 2);
    let (restock, hot, inventory, new_products) = (
        unique("avro-out-restock"),
        unique("avro-out-hot"),
        unique("avro-out-inventory"),
        unique("avro-out-new"),
    );
    create_topics(
        &brokers,
        &[
            (&restock, 1),
            (&hot, 1),
            (&inventory, 2),
            (&new_products, 1),
        ],
    );
    let registry = Registry::start();
    let mut raw = raw_config(&topics);
    raw.schema_registry.url = registry.url.clone();
    raw.schema_registry.frame_outputs = true;
    raw.schema_registry.output_format = "avro".into();
    enable_signals(
        &mut raw,
        &SignalTopics {
            inventory: &inventory,
            restock: &restock,
            hot: &hot,
            new_products: &new_products,
        },
    );
    raw.signals.hot_min_volume = 0.0;
    let settings = trendcast::config::Settings::resolve(&raw).expect("settings");

    // two SKUs selling every day; one has nothing on hand, so it is reordered
    let mut messages = Vec::new();
    for day in 0..10 {
        messages.push((Some(b"UP".to_vec()), Some(sale("UP", day, 1 + day as u32))));
        messages.push((Some(b"EVEN".to_vec()), Some(sale("EVEN", day, 3))));
    }
    produce(&brokers, &topics.sales, &messages);
    let stock = json!({"sku": "UP", "ts": START + 9 * DAY, "on_hand": 0.0});
    produce(
        &brokers,
        &inventory,
        &[(Some(b"UP".to_vec()), Some(stock.to_string().into_bytes()))],
    );
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    wait_consumed(&engine, messages.len() as u64, Duration::from_secs(60));
    engine
        .finish_replay(Duration::from_secs(60))
        .expect("finish replay");

    let client = SchemaRegistry::new(
        &registry.url,
        Duration::from_secs(5),
        &RegistryAccess::default(),
    )
    .expect("client");
    let subject_id = |topic: &str| {
        registry
            .subject_id(&format!("{topic}-value"))
            .unwrap_or_else(|| panic!("{topic} registered"))
    };
    let published = engine.stats().updates_published.get() as usize;
    assert!(published >= 10, "both SKUs scored: {published}");
    let updates = read_all(&brokers, &topics.output, published, Duration::from_secs(30));
    assert_eq!(updates.len(), published);
    let update_id = subject_id(&topics.output);
    let mut newest = std::collections::HashMap::new();
    for m in &updates {
        let datum = read_avro(&client, m.payload().expect("value"), update_id);
        let apache_avro::types::Value::String(sku) = field(&datum, "sku") else {
            panic!("sku is a string");
        };
        let apache_avro::types::Value::Long(seq) = field(&datum, "seq") else {
            panic!("seq is a long");
        };
        let seen = newest.entry(sku.clone()).or_insert(*seq);
        *seen = (*seen).max(*seq);
    }
    assert_eq!(newest.len(), 2, "{newest:?}");

    // the signals component read the Avro updates: a ranking over both SKUs, a reorder for UP
    // (the first ranking, at the start, considered nothing yet; the next came with the updates)
    let rankings = read_all(&brokers, &hot, 2, Duration::from_secs(30));
    let last = rankings.last().expect("a ranking");
    let ranking = read_avro(&client, last.payload().expect("value"), subject_id(&hot));
    assert!(
        matches!(field(&ranking, "skus_considered"), apache_avro::types::Value::Long(n) if *n >= 1),
        "{ranking:?}"
    );
    let signals = read_all(&brokers, &restock, 1, Duration::from_secs(30));
    let signal = read_avro(
        &client,
        signals[0].payload().expect("value"),
        subject_id(&restock),
    );
    assert_eq!(
        field(&signal, "sku"),
        &apache_avro::types::Value::String("UP".into())
    );

    // the query API answers each as the JSON its schema describes
    let service = QueryService::start(
        &settings.kafka,
        vec![
            (topics.output.clone(), Output::Forecasts),
            (restock.clone(), Output::Restock),
        ],
        settings.schema_registry.as_ref(),
        "127.0.0.1:0".parse().expect("address"),
    )
    .expect("query service starts");
    let api = service.addr().to_string();
    let (update_schema, restock_schema) = (
        schema("trend_update.schema.json"),
        schema("restock_signal.schema.json"),
    );
    let answer = |path: &str| -> Option<Value> {
        http_get(&api, path)
            .filter(|(status, _)| *status == 200)
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for (sku, seq) in &newest {
        let update = loop {
            match answer(&format!("/v1/forecasts/{sku}")) {
                Some(u) if u["seq"].as_i64() == Some(*seq) => break u,
                other => assert!(std::time::Instant::now() < deadline, "{sku}: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(update_schema.is_valid(&update), "{update}");
    }
    let signal = loop {
        if let Some(s) = answer("/v1/restock/UP") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no restock answer");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(restock_schema.is_valid(&signal), "{signal}");
    assert!(
        signal.get("stockout_at").is_some(),
        "a required field, null or not"
    );
    assert!(!service.failed());

    // the trend report reads the Avro outputs (and the sales) as the API does
    let report = trendcast_tools::report::collect::from_topics(&settings).expect("report inputs");
    assert_eq!(report.unreadable, 0, "{:?}", report.not_read);
    assert_eq!(report.sales_events, messages.len() as u64);
    for (sku, seq) in &newest {
        assert_eq!(report.latest[sku].seq, *seq as u64, "{sku}");
    }
    assert!(report.restock.contains_key("UP"));
    drop(engine);
}

#[test]
fn an_unreachable_registry_stops_the_start_naming_it() {
    let topics = Topics::create("registry-down", 1);
    // a port nothing listens on
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut raw = raw_config(&topics);
    raw.schema_registry.url = url.clone();
    raw.schema_registry.frame_outputs = true;
    raw.schema_registry.timeout = "2s".into();
    let settings = trendcast::config::Settings::resolve(&raw).expect("settings");
    match RunningEngine::start(&settings, None) {
        Err(e @ EngineError::Registry(_)) => {
            let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(chain.contains(&url["http://".len()..]), "{chain}");
        }
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("started without its registry"),
    }
}

#[test]
fn an_avro_value_whose_schema_cannot_be_fetched_stops_ingest_and_is_not_dead_lettered() {
    let brokers = brokers();
    let topics = Topics::create("registry-avro-down", 1);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut raw = raw_config(&topics);
    raw.schema_registry.url = url;
    raw.schema_registry.timeout = "2s".into();
    let settings = trendcast::config::Settings::resolve(&raw).expect("settings");
    let schema = apache_avro::Schema::parse_str(SALE_AVRO).expect("avro schema");
    // a plain sale (offset 0), then an Avro one (offset 1) whose schema cannot be fetched
    let value = framed(5, &avro_sale(&schema, "AVRO", 0, 1.0));
    let messages = [
        (Some(b"PLAIN".to_vec()), Some(sale("PLAIN", 0, 1))),
        (Some(b"AVRO".to_vec()), Some(value)),
    ];
    produce(&brokers, &topics.sales, &messages);
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !engine.has_failed() {
        assert!(
            std::time::Instant::now() < deadline,
            "ingest went on without the schema"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        engine.stats().total_rejected(),
        0,
        "a registry away is not bad input"
    );
    // leaving the group checkpoints what was applied: never past the Avro value
    drop(engine);
    let committed = committed_offsets(&brokers, &raw.kafka.group_id, &topics.sales, 1);
    assert!(
        committed[0] <= 1,
        "committed past the unread value: {committed:?}"
    );
    assert!(read_all(&brokers, &topics.dead_letter, 1, Duration::from_secs(3)).is_empty());
}

/// A hosted registry's setup: https with a certificate of a private CA, and an API key and
/// secret as basic auth. The client registers and reads back over it once it trusts the CA and
/// sends the key; without either it gets a clear error, not a schema.
#[test]
fn an_https_registry_with_a_private_ca_and_basic_auth() {
    let (identity, ca_pem) = self_signed();
    let tls = native_tls::TlsAcceptor::new(identity).expect("acceptor");
    let registry = Registry::start_with(Some(tls), Some("KEY:SECRET"));
    assert!(registry.url.starts_with("https://"));
    let timeout = Duration::from_secs(5);
    let access = RegistryAccess {
        ca_pem: Some(ca_pem.clone()),
        user_info: Some("KEY:SECRET".into()),
    };
    let client = SchemaRegistry::new(&registry.url, timeout, &access).expect("client");
    let schema = r#"{"type": "object"}"#;
    let id = client
        .register_json("t-value", schema)
        .expect("registered over https");
    assert_eq!(registry.subject_id("t-value"), Some(id));
    let held = client.schema(id).expect("read back over https");
    assert_eq!(
        (held.schema_type.as_str(), held.schema.as_str()),
        ("JSON", schema)
    );

    // the private CA not trusted: the handshake fails, and the error names the registry
    let untrusted = RegistryAccess {
        ca_pem: None,
        ..access.clone()
    };
    let client = SchemaRegistry::new(&registry.url, timeout, &untrusted).expect("client");
    let e = client.schema(id).expect_err("certificate not trusted");
    assert!(matches!(e, RegistryError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&registry.url), "{e}");

    // the wrong secret, or none: the registry's 401, with its message
    for user_info in [Some("KEY:WRONG".to_string()), None] {
        let access = RegistryAccess {
            user_info,
            ..access.clone()
        };
        let client = SchemaRegistry::new(&registry.url, timeout, &access).expect("client");
        match client.register_json("t-value", schema) {
            Err(RegistryError::Refused { status, body, .. }) => {
                assert_eq!(status, 401);
                assert!(body.contains("Unauthorized"), "{body}");
            }
            other => panic!("expected a 401, got {other:?}"),
        }
    }
}
