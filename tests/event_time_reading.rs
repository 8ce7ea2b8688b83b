//! Input partitions are read together in event time, not one after another.
//!
//! Buckets close by the event-time frontier, the slowest owned partition. A consumer that reads
//! librdkafka's one consumer queue gets Tansu's partitions in long runs, one after another, and
//! the engine had to hold back (or pause) the partitions that ran ahead. Ingest now reads each
//! partition from its own queue, furthest behind first (`trendcast::ingest::partition_queues`).
//! This test produces a replay-like log (event times rising, keys spread over four partitions,
//! large record batches) and checks that almost nothing had to be held back, and that every
//! message was applied once.

mod common;

use std::time::Duration;

use common::*;
use trendcast::engine::RunningEngine;

const MESSAGES: usize = 20_000;
const DAYS: i64 = 30;

fn produce_log(topic: &str) {
    let day0 = 1_294_185_600_000_i64; // 2011-01-05T00:00:00Z
    let step = DAYS * 86_400_000 / MESSAGES as i64;
    let msgs: Vec<Msg> = (0..MESSAGES)
        .map(|i| {
            let sku = format!("ET{:03}", i % 400);
            let v = format!(
                r#"{{"sku":"{sku}","ts":{},"qty":1}}"#,
                day0 + i as i64 * step
            );
            (Some(sku.into_bytes()), Some(v.into_bytes()))
        })
        .collect();
    produce_batched(&brokers(), topic, &msgs, 2000);
}

#[test]
fn partitions_are_read_together_in_event_time() {
    let topics = Topics::create("event-time", 4);
    produce_log(&topics.sales);
    let settings = settings_without_checkpoints(&topics);
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    wait_consumed(&engine, MESSAGES as u64, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(1));
    let stats = engine.stats();
    assert_eq!(
        stats.total_consumed(),
        MESSAGES as u64,
        "each message applied once"
    );
    assert_eq!(stats.total_rejected(), 0);
    let held = stats.held_back.get();
    eprintln!("held back: {held} of {MESSAGES}");
    assert!(
        held * 100 <= MESSAGES as u64,
        "{held} of {MESSAGES} messages were held back ahead of the frontier (at most 1 % allowed)"
    );
    engine.shutdown(Duration::from_secs(30)).expect("shutdown");
}
