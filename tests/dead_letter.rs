//! Every kind of bad input lands in the dead-letter topic, bytes intact, with its reason; nothing
//! else is lost and the engine keeps running.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::Message;

use common::*;
use trendcast::engine::RunningEngine;

fn msg(key: &str, value: &str) -> Msg {
    (
        Some(key.as_bytes().to_vec()),
        Some(value.as_bytes().to_vec()),
    )
}

#[test]
fn each_bad_message_is_dead_lettered_with_its_reason() {
    let brokers = brokers();
    let topics = Topics::create("dlq", 1);
    let ts = 1_294_221_600_000_i64; // 2011-01-05T10:00:00Z
    let good = |sku: &str, ts: i64| {
        msg(
            sku,
            &format!(r#"{{"sku":"{sku}","ts":{ts},"qty":2,"unit_price":1.5}}"#),
        )
    };
    // (message, expected reason or None for valid), in partition order.
    let sales: Vec<(Msg, Option<&str>)> = vec![
        (good("OK1", ts), None),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000,"qty":3"#),
            Some("invalid_json"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000,"qty":NaN}"#),
            Some("invalid_json"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000,"qty":Infinity}"#),
            Some("invalid_json"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000,"qty":1e999}"#),
            Some("invalid_json"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000,"qty":1e300}"#),
            Some("invalid_value"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000}"#),
            Some("missing_field"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":1294221600000,"qty":"3"}"#),
            Some("wrong_type"),
        ),
        (
            msg(
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":3,"colour":"red"}"#,
            ),
            Some("unknown_field"),
        ),
        (
            msg(
                "A",
                r#"{"sku":"A","ts":1294221600000,"qty":3,"unit_price":-0.5}"#,
            ),
            Some("invalid_value"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":-1000,"qty":3}"#),
            Some("timestamp_out_of_range"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":"2199-01-01T00:00:00Z","qty":3}"#),
            Some("timestamp_out_of_range"),
        ),
        (
            msg("A", r#"{"sku":"A","ts":"not a date","qty":3}"#),
            Some("invalid_value"),
        ),
        (
            msg("", r#"{"sku":"A","ts":1294221600000,"qty":3}"#),
            Some("missing_key"),
        ),
        (
            (
                None,
                Some(br#"{"sku":"A","ts":1294221600000,"qty":3}"#.to_vec()),
            ),
            Some("missing_key"),
        ),
        (
            msg("B", r#"{"sku":"A","ts":1294221600000,"qty":3}"#),
            Some("key_mismatch"),
        ),
        (
            (Some(b"A".to_vec()), Some(vec![b'{', 0xff, 0xfe, b'}'])),
            Some("invalid_utf8"),
        ),
        (
            (Some(b"A".to_vec()), Some(vec![b' '; 1_000_000])),
            Some("payload_too_large"),
        ),
        ((Some(b"A".to_vec()), None), Some("empty_payload")),
        (good("OK1", ts + 3 * 86_400_000), None),
        // Two days after a bucket closed for this partition: late.
        (good("OK1", ts), Some("late")),
        (good("OK2", ts + 3 * 86_400_000), None),
    ];
    let clicks: Vec<(Msg, Option<&str>)> = vec![
        (
            msg("C", r#"{"sku":"C","ts":1294221600000,"kind":"view"}"#),
            None,
        ),
        (
            msg("C", r#"{"sku":"C","ts":1294221600000,"kind":"purchase"}"#),
            Some("invalid_value"),
        ),
        (
            msg("C", r#"{"sku":"C","ts":1294221600000}"#),
            Some("missing_field"),
        ),
        (msg("C", r#"[1,2,3]"#), Some("wrong_type")),
    ];
    produce(
        &brokers,
        &topics.sales,
        &sales.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
    );
    produce(
        &brokers,
        &topics.clicks,
        &clicks.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
    );
    let total = (sales.len() + clicks.len()) as u64;
    let bad: Vec<&(Msg, Option<&str>)> = sales
        .iter()
        .chain(&clicks)
        .filter(|(_, r)| r.is_some())
        .collect();

    // strict schemas, so that an unknown field is one of the reasons exercised (by default it is
    // skipped and counted: crates/engine/src/ingest/event.rs, tests/schemas.rs)
    let mut raw = raw_config(&topics);
    raw.ingest.strict_schema = true;
    let settings = trendcast::config::Settings::resolve(&raw).expect("settings");
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    wait_consumed(&engine, total, Duration::from_secs(60));
    engine
        .finish_replay(Duration::from_secs(30))
        .expect("finish");
    let stats = engine.stats().clone();
    assert_eq!(stats.total_consumed(), total);
    assert_eq!(
        stats.window_updates.get() + stats.total_rejected(),
        total,
        "in = applied + rejected"
    );
    assert_eq!(
        stats.total_rejected(),
        bad.len() as u64,
        "{:?}",
        stats.rejected_by_reason()
    );
    assert_eq!(
        stats.dead_letters.get(),
        bad.len() as u64,
        "every reject acknowledged by the DLQ"
    );
    engine.shutdown(Duration::from_secs(30)).expect("shutdown");

    let dlq = read_all(
        &brokers,
        &topics.dead_letter,
        bad.len(),
        Duration::from_secs(60),
    );
    assert_eq!(dlq.len(), bad.len());
    // Sales are one partition and clicks another source; match by (source topic, offset).
    let mut by_origin: HashMap<(String, i64), &rdkafka::message::OwnedMessage> = HashMap::new();
    for m in &dlq {
        let topic = header(m, "trendcast-source-topic").expect("source topic header");
        let offset: i64 = header(m, "trendcast-source-offset")
            .expect("offset header")
            .parse()
            .expect("numeric offset");
        assert!(header(m, "trendcast-detail").is_some_and(|d| !d.is_empty()));
        by_origin.insert((topic, offset), m);
    }
    for (topic, list) in [(&topics.sales, &sales), (&topics.clicks, &clicks)] {
        for (offset, ((key, value), reason)) in list.iter().enumerate() {
            let Some(reason) = reason else { continue };
            let m = by_origin
                .get(&(topic.clone(), offset as i64))
                .unwrap_or_else(|| {
                    panic!("{topic} offset {offset} ({reason}) missing from the DLQ")
                });
            assert_eq!(
                header(m, "trendcast-reason").as_deref(),
                Some(*reason),
                "{topic}@{offset}"
            );
            assert_eq!(
                m.payload(),
                value.as_deref(),
                "original bytes intact at {topic}@{offset}"
            );
            let key = key.as_deref().filter(|k| !k.is_empty());
            assert_eq!(
                m.key().filter(|k| !k.is_empty()),
                key,
                "original key at {topic}@{offset}"
            );
        }
    }
}
