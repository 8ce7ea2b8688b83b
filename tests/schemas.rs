//! The JSON Schemas in `schemas/` and the engine's decoder agree: every message the schema accepts
//! decodes, and every body the decoder rejects for a reason a schema can express, the schema
//! rejects too.

mod common;

use common::schema;
use trendcast::ingest::{decode, Source, ValidationLimits};

const NOW: i64 = 1_800_000_000_000;

fn both(source: Source, body: &str) -> (bool, bool) {
    let validator = match source {
        Source::Sales => schema("sales_event.schema.json"),
        Source::Clicks => schema("click_event.schema.json"),
    };
    let schema_ok = serde_json::from_str::<serde_json::Value>(body)
        .map(|v| validator.is_valid(&v))
        .unwrap_or(false);
    let key = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("sku").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "K".into());
    let decoder_ok = decode(
        source,
        Some(key.as_bytes()),
        Some(body.as_bytes()),
        &ValidationLimits::default(),
        NOW,
    )
    .is_ok();
    (schema_ok, decoder_ok)
}

#[test]
fn schema_and_decoder_agree_on_sales() {
    let cases = [
        (
            r#"{"sku":"A","ts":"2011-01-05T10:00:00Z","qty":6,"unit_price":2.55,"order_id":"536365"}"#,
            true,
        ),
        (r#"{"sku":"A","ts":1294221600000,"qty":-2}"#, true),
        (
            r#"{"sku":"A","ts":"2011-01-05T10:00:00+01:00","qty":1,"unit_price":null}"#,
            true,
        ),
        (r#"{"sku":"A","ts":1294221600000}"#, false),
        (r#"{"sku":"A","ts":1294221600000,"qty":"6"}"#, false),
        // a field the schema does not name: skipped (ingest.strict_schema = false, the default)
        (r#"{"sku":"A","ts":1294221600000,"qty":6,"extra":1}"#, true),
        (
            r#"{"sku":"A","ts":1294221600000,"qty":6,"unit_price":-1}"#,
            false,
        ),
        (r#"{"sku":"A","ts":1294221600000,"qty":2e6}"#, false),
        (r#"{"sku":"","ts":1294221600000,"qty":6}"#, false),
        (r#"{"sku":"  ","ts":1294221600000,"qty":6}"#, false),
        (r#"{"sku":"A","ts":"yesterday","qty":6}"#, false),
        (r#"{"sku":"A","ts":12.5,"qty":6}"#, false),
        (r#"{"sku":"A","ts":5,"qty":6}"#, false),
        (r#"{"sku":7,"ts":1294221600000,"qty":6}"#, false),
    ];
    for (body, valid) in cases {
        assert_eq!(both(Source::Sales, body), (valid, valid), "{body}");
    }
}

#[test]
fn schema_and_decoder_agree_on_clicks() {
    let cases = [
        (
            r#"{"sku":"A","ts":"2015-06-01T00:00:00Z","kind":"view"}"#,
            true,
        ),
        (
            r#"{"sku":"A","ts":1433116800000,"kind":"add_to_cart","session_id":"s1"}"#,
            true,
        ),
        (
            r#"{"sku":"A","ts":1433116800000,"kind":"wishlist","session_id":null}"#,
            true,
        ),
        (r#"{"sku":"A","ts":1433116800000,"kind":"purchase"}"#, false),
        (r#"{"sku":"A","ts":1433116800000}"#, false),
        // a field the schema does not name: skipped (ingest.strict_schema = false, the default)
        (
            r#"{"sku":"A","ts":1433116800000,"kind":"view","qty":1}"#,
            true,
        ),
    ];
    for (body, valid) in cases {
        assert_eq!(both(Source::Clicks, body), (valid, valid), "{body}");
    }
}

/// With `ingest.strict_schema`, the decoder refuses what the schemas only allow as additional
/// properties: the behaviour before input schemas could grow.
#[test]
fn strict_schema_refuses_fields_the_schema_does_not_name() {
    let strict = ValidationLimits {
        strict_schema: true,
        ..ValidationLimits::default()
    };
    for (source, body) in [
        (
            Source::Sales,
            r#"{"sku":"A","ts":1294221600000,"qty":6,"extra":1}"#,
        ),
        (
            Source::Clicks,
            r#"{"sku":"A","ts":1433116800000,"kind":"view","qty":1}"#,
        ),
    ] {
        let got = decode(source, Some(b"A"), Some(body.as_bytes()), &strict, NOW);
        assert_eq!(
            got.map(|_| ()).map_err(|r| r.reason),
            Err(trendcast::ingest::RejectReason::UnknownField),
            "{body}"
        );
    }
}

#[test]
fn schema_and_decoder_agree_on_inventory_snapshots() {
    let validator = schema("inventory_snapshot.schema.json");
    let range = (946_684_800_000, NOW + 86_400_000);
    let cases = [
        (
            r#"{"sku":"A","ts":"2011-12-01T10:00:00Z","on_hand":12}"#,
            true,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":-3,"on_order":5,"lead_time_days":2.5,"service_level":0.9}"#,
            true,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"on_order":null}"#,
            true,
        ),
        (r#"{"sku":"A","ts":1322733600000}"#, false),
        (r#"{"sku":"A","ts":1322733600000,"on_hand":"1"}"#, false),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"extra":1}"#,
            false,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"on_order":-1}"#,
            false,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"lead_time_days":0}"#,
            false,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"lead_time_days":400}"#,
            false,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"service_level":1}"#,
            false,
        ),
        (
            r#"{"sku":"A","ts":1322733600000,"on_hand":1,"service_level":0.4}"#,
            false,
        ),
        (r#"{"sku":"","ts":1322733600000,"on_hand":1}"#, false),
        (r#"{"sku":"A","ts":"yesterday","on_hand":1}"#, false),
        (r#"{"sku":"A","ts":5,"on_hand":1}"#, false),
    ];
    for (body, expected) in cases {
        let value: serde_json::Value = serde_json::from_str(body).expect("case is JSON");
        let schema_ok = validator.is_valid(&value);
        let sku = value["sku"].as_str().unwrap_or("K").to_string();
        let decoder_ok = trendcast::signals::inventory::decode(
            Some(sku.as_bytes()),
            Some(body.as_bytes()),
            128,
            range,
        )
        .is_ok();
        assert_eq!((schema_ok, decoder_ok), (expected, expected), "{body}");
    }
}

/// The Avro form of each output (`schemas/avro/`) names the fields of its JSON Schema, at every
/// depth, and marks them alike: a required field is a plain type, an optional one a union with
/// null whose default is null (left out of the JSON when null), a required nullable one a union
/// with null and no default (written as null).
#[test]
fn every_output_s_avro_form_matches_its_json_schema() {
    use serde_json::Value;
    /// The schema with each later use of a named type (`"Total"`) replaced by its definition,
    /// so that fields sharing one record type are compared like any other.
    fn inline_named(avro: &Value) -> Value {
        fn collect(v: &Value, named: &mut std::collections::HashMap<String, Value>) {
            match v {
                Value::Object(o) => {
                    if let (Some(Value::String(n)), Some(t)) = (o.get("name"), o.get("type")) {
                        if t == "record" || t == "enum" {
                            named.entry(n.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    o.values().for_each(|x| collect(x, named));
                }
                Value::Array(a) => a.iter().for_each(|x| collect(x, named)),
                _ => {}
            }
        }
        fn substitute(v: &Value, named: &std::collections::HashMap<String, Value>) -> Value {
            match v {
                Value::Object(o) => Value::Object(
                    o.iter()
                        .map(|(k, x)| {
                            let x = match (k.as_str(), x) {
                                ("type", Value::String(n)) if named.contains_key(n) => {
                                    named[n].clone()
                                }
                                _ => substitute(x, named),
                            };
                            (k.clone(), x)
                        })
                        .collect(),
                ),
                Value::Array(a) => Value::Array(
                    a.iter()
                        .map(|x| match x {
                            Value::String(n) if named.contains_key(n) => named[n].clone(),
                            _ => substitute(x, named),
                        })
                        .collect(),
                ),
                _ => v.clone(),
            }
        }
        let mut named = std::collections::HashMap::new();
        collect(avro, &mut named);
        substitute(avro, &named)
    }
    fn read(path: &str) -> Value {
        let text = std::fs::read_to_string(common::root().join("schemas").join(path)).unwrap();
        serde_json::from_str(&text).expect(path)
    }
    fn nullable(json: &Value) -> bool {
        json["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"))
    }
    fn compare(at: &str, json: &Value, avro: &Value, problems: &mut Vec<String>) {
        let avro = match avro.get("type") {
            Some(inner) if inner.is_object() => inner,
            _ => avro,
        };
        match (json.get("properties"), avro["type"].as_str()) {
            (Some(properties), Some("record")) => {
                let fields = avro["fields"].as_array().unwrap();
                let required: Vec<&str> = json["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let names: Vec<&str> = fields.iter().filter_map(|f| f["name"].as_str()).collect();
                let mut expected: Vec<&str> = properties
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                expected.sort();
                let mut got = names.clone();
                got.sort();
                if got != expected {
                    problems.push(format!("{at}: fields {got:?}, JSON Schema {expected:?}"));
                }
                for field in fields {
                    let name = field["name"].as_str().unwrap();
                    let Some(prop) = properties.get(name) else {
                        continue;
                    };
                    let union = field["type"].as_array();
                    let has_null = union.is_some_and(|u| u.iter().any(|t| t == "null"));
                    let default_null = field.get("default") == Some(&Value::Null);
                    let marking = match (required.contains(&name), nullable(prop)) {
                        (true, false) => !has_null && !default_null,
                        (true, true) => has_null && field.get("default").is_none(),
                        (false, _) => has_null && default_null,
                    };
                    if !marking {
                        problems.push(format!("{at}.{name}: optionality differs"));
                    }
                    let inner = union
                        .and_then(|u| u.iter().find(|t| *t != "null"))
                        .cloned()
                        .unwrap_or_else(|| field["type"].clone());
                    compare(
                        &format!("{at}.{name}"),
                        prop,
                        &serde_json::json!({"type": inner}),
                        problems,
                    );
                }
            }
            (_, Some("array")) => compare(
                &format!("{at}[]"),
                &json["items"],
                &serde_json::json!({"type": avro["items"].clone()}),
                problems,
            ),
            (Some(_), other) if other != Some("map") => {
                problems.push(format!("{at}: a JSON object, Avro {other:?}"))
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for name in [
        "trend_update",
        "restock_signal",
        "new_product_forecast",
        "hot_products",
    ] {
        let json = read(&format!("{name}.schema.json"));
        let avro = inline_named(&read(&format!("avro/{name}.avsc")));
        compare(name, &json, &avro, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
