//! End to end over TCP against the real broker: sales and clicks in, trend updates out, read back
//! by an independent consumer and checked against the schema and the model's known behaviour.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rdkafka::Message;

use common::*;
use trendcast::datasets::{online_retail, ClickRecord, SaleRecord};
use trendcast::engine::RunningEngine;
use trendcast::publish::{Direction, TrendUpdate};
use trendcast::window::Feature;

const DAY: i64 = 86_400_000;

#[test]
fn sales_and_clicks_become_schema_valid_trend_updates() {
    let brokers = brokers();
    let topics = Topics::create("pipeline", 4);

    // Real sales: the first five weeks of Online Retail.
    let data = online_retail::load(&root().join("data/online-retail/online_retail.csv.gz"))
        .expect("dataset");
    let start = data.events[0].ts;
    let mut sales: Vec<SaleRecord> = data
        .events
        .into_iter()
        .filter(|e| e.ts < start + 35 * DAY)
        .collect();
    // A SKU with a known answer: 5 units every day, 3 views and 1 add-to-cart every day.
    let day0 = start - start.rem_euclid(DAY);
    let mut clicks = Vec::new();
    for d in 0..35 {
        let ts = day0 + d * DAY + 12 * 3_600_000;
        sales.push(SaleRecord {
            sku: "TEST-CONST".into(),
            ts,
            qty: 5.0,
            unit_price: Some(2.0),
            order_id: None,
        });
        for kind in ["view", "view", "view", "add_to_cart"] {
            clicks.push(ClickRecord {
                sku: "TEST-CONST".into(),
                ts,
                kind: kind.into(),
                session_id: Some(format!("s{d}")),
            });
        }
    }
    sales.sort_by_key(|e| e.ts);
    let encode = |sku: &str, v: Vec<u8>| (Some(sku.as_bytes().to_vec()), Some(v));
    let sales_msgs: Vec<_> = sales
        .iter()
        .map(|e| encode(&e.sku, serde_json::to_vec(e).expect("json")))
        .collect();
    let click_msgs: Vec<_> = clicks
        .iter()
        .map(|e| encode(&e.sku, serde_json::to_vec(e).expect("json")))
        .collect();
    let sales_schema = schema("sales_event.schema.json");
    let click_schema = schema("click_event.schema.json");
    for (_, v) in sales_msgs.iter().take(100) {
        let value: serde_json::Value =
            serde_json::from_slice(v.as_deref().expect("value")).expect("json");
        assert!(
            sales_schema.is_valid(&value),
            "produced sales event must match its schema: {value}"
        );
    }
    for (_, v) in &click_msgs {
        let value: serde_json::Value =
            serde_json::from_slice(v.as_deref().expect("value")).expect("json");
        assert!(
            click_schema.is_valid(&value),
            "produced click event must match its schema: {value}"
        );
    }
    produce(&brokers, &topics.sales, &sales_msgs);
    produce(&brokers, &topics.clicks, &click_msgs);
    let total = (sales_msgs.len() + click_msgs.len()) as u64;

    let settings = settings(&topics);
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    wait_consumed(&engine, total, Duration::from_secs(120));
    assert_eq!(engine.stats().total_consumed(), total);
    let rejected = engine.stats().total_rejected();
    if rejected > 0 {
        let dlq = read_all(
            &brokers,
            &topics.dead_letter,
            rejected as usize,
            Duration::from_secs(20),
        );
        let details: Vec<_> = dlq
            .iter()
            .take(5)
            .map(|m| header(m, "trendcast-detail"))
            .collect();
        panic!(
            "{rejected} rejected: {:?} {details:?}",
            engine.stats().rejected_by_reason()
        );
    }
    assert_eq!(
        engine.stats().window_updates.get(),
        total,
        "in = applied + rejected"
    );

    // Window state of the known SKU: the last closed bucket holds one day's events.
    engine
        .finish_replay(Duration::from_secs(60))
        .expect("finish replay");
    let closed = engine.store().clock().closed_index().expect("closed index");
    let window = engine
        .store()
        .get("TEST-CONST")
        .expect("state for TEST-CONST");
    let last = window.bucket(closed);
    assert_eq!(last[Feature::Units as usize], 5.0);
    assert_eq!(last[Feature::Revenue as usize], 10.0);
    assert_eq!(last[Feature::Orders as usize], 1.0);
    assert_eq!(last[Feature::Views as usize], 3.0);
    assert_eq!(last[Feature::AddToCarts as usize], 1.0);
    let published = engine.stats().updates_published.get();
    let skus: HashSet<&str> = sales.iter().map(|e| e.sku.as_str()).collect();
    engine.shutdown(Duration::from_secs(30)).expect("shutdown");

    // Read everything back with an independent consumer.
    let out = read_all(
        &brokers,
        &topics.output,
        published as usize,
        Duration::from_secs(60),
    );
    assert_eq!(
        out.len() as u64,
        published,
        "every acknowledged update is readable"
    );
    let update_schema = schema("trend_update.schema.json");
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let mut latest: BTreeMap<String, TrendUpdate> = BTreeMap::new();
    for m in &out {
        let value: serde_json::Value =
            serde_json::from_slice(m.payload().expect("payload")).expect("update is JSON");
        if let Err(e) = update_schema.validate(&value) {
            panic!("update does not match schemas/trend_update.schema.json: {e}: {value}");
        }
        let u: TrendUpdate = serde_json::from_value(value).expect("update decodes");
        assert_eq!(m.key(), Some(u.sku.as_bytes()), "keyed by SKU");
        assert_eq!(
            header(m, "trendcast-schema").as_deref(),
            Some("trend_update/1"),
            "the schema and its version ride in a header"
        );
        assert_eq!(u.model, "baseline-ses@1");
        assert_eq!(u.horizon.len(), 7);
        for step in &u.horizon {
            let q: Vec<f32> = ["0.1", "0.5", "0.9"]
                .iter()
                .map(|k| step.quantiles[*k])
                .collect();
            assert!(q[0] <= q[1] && q[1] <= q[2], "quantiles ordered: {q:?}");
        }
        if let Some(prev) = last_seq.insert(u.sku.clone(), u.seq) {
            assert!(
                u.seq > prev,
                "seq must increase per SKU: {} after {prev} for {}",
                u.seq,
                u.sku
            );
        }
        latest.insert(u.sku.clone(), u);
    }
    let updated: HashSet<&str> = latest.keys().map(String::as_str).collect();
    assert_eq!(updated, skus, "every SKU with sales gets a trend update");

    // The constant SKU: SES of a constant is that constant, with zero spread in the model's
    // output. The median and the mean stay 5; the online calibration may widen the interval
    // around it, since its widths are learnt from every SKU of the level stratum.
    let c = &latest["TEST-CONST"];
    eprintln!("{}", serde_json::to_string(c).unwrap_or_default());
    for step in &c.horizon {
        let median = step.quantiles.get("0.5").copied().unwrap_or(f32::NAN);
        assert!(
            (median - 5.0).abs() < 1e-4,
            "constant demand forecasts a median of 5, got {median}"
        );
        if let Some(mean) = step.mean {
            assert!((mean - 5.0).abs() < 1e-4, "mean {mean}");
        }
        for v in step.quantiles.values() {
            assert!(*v >= 0.0 && v.is_finite(), "quantile {v}");
        }
    }
    assert_eq!(c.trend.direction, Direction::Flat);
    // no spread and no change: rising (more than the flat band above) is impossible
    assert!(c.trend.p_up.abs() < 1e-9, "p_up {}", c.trend.p_up);
    assert_eq!(
        c.horizon[0].start, c.as_of,
        "the horizon starts where the data ends"
    );
}
