//! Every message is read when consumption starts or resumes inside a record batch.
//!
//! A consumer that is resumed (after a pause) or restarted (from committed offsets) fetches from
//! its position, which is usually inside one of the broker's record batches. Apache Kafka
//! answers such a fetch with the whole batch and the client drops the messages before the
//! position. Tansu 0.6.0 answers with the *next* batch (the rest of the current one is skipped)
//! or, inside the last batch, with nothing. The engine's offset guard
//! (`trendcast::ingest::offset_guard`) sees the first as a gap and the second as a stall, and
//! rewinds. These tests produce large batches and position the engine inside them.

mod common;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use common::*;
use trendcast::engine::RunningEngine;

/// Messages per record batch, and batches per topic.
const BATCH: usize = 1000;
const BATCHES: usize = 2;

/// Produces `BATCHES` batches of `BATCH` sales (one partition) with librdkafka's batching.
fn produce_batches(topic: &str) {
    let day0 = 1_294_185_600_000_i64; // 2011-01-05T00:00:00Z
    let msgs: Vec<Msg> = (0..BATCH * BATCHES)
        .map(|i| {
            let sku = format!("MB{:03}", i % 50);
            let v = format!(
                r#"{{"sku":"{sku}","ts":{},"qty":1}}"#,
                day0 + i as i64 * 1000
            );
            (Some(sku.into_bytes()), Some(v.into_bytes()))
        })
        .collect();
    for chunk in msgs.chunks(BATCH) {
        produce_batched(&brokers(), topic, chunk, BATCH);
    }
}

/// Commits `offset` for `group` on partition 0 of `topic`, as a consumer that stopped there.
fn commit(group: &str, topic: &str, offset: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("offset");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// Starts the engine with its group already committed at `start` and checks it reads every
/// message from there to the end.
fn reads_everything_from(start: i64) {
    let topics = Topics::create("mid-batch", 1);
    produce_batches(&topics.sales);
    let settings = settings_without_checkpoints(&topics);
    commit(&settings.kafka.group_id, &topics.sales, start);
    let want = (BATCH * BATCHES) as u64 - start as u64;
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    wait_consumed(&engine, want, Duration::from_secs(90));
    // nothing more (no message applied twice) once the tail is reached
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(engine.stats().total_consumed(), want, "from offset {start}");
    assert_eq!(engine.stats().total_rejected(), 0);
    engine.shutdown(Duration::from_secs(30)).expect("shutdown");
}

#[test]
fn starting_inside_the_first_batch_reads_the_rest_of_it() {
    reads_everything_from(BATCH as i64 / 2);
}

#[test]
fn starting_inside_the_last_batch_reads_its_tail() {
    reads_everything_from((BATCH + BATCH / 2) as i64);
}
