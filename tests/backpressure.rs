//! With a deliberately slow model, ingest stops reading its input instead of piling up work,
//! memory stays under a stated bound, and no event or update is lost.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::Message;

use common::*;
use trendcast::engine::RunningEngine;
use trendcast::window::Feature;

const SKUS: usize = 1500;
const DAYS: i64 = 8;
/// The stated bound on the test process's resident memory.
const RSS_BOUND_BYTES: u64 = 1 << 30;

#[test]
fn slow_scoring_pauses_ingest_and_loses_nothing() {
    let python = std::env::var_os("TRENDCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("TRENDCAST_PYTHON is not set: run the tests with scripts/test.sh")
        });
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new(python)
        .arg(root().join("tests/python/make_slow_model.py"))
        .arg(dir.path())
        .status()
        .expect("model builder runs");
    assert!(status.success());

    let topics = Topics::create("backpressure", 2);
    let day0 = 1_294_185_600_000_i64; // 2011-01-05T00:00:00Z
    let mut msgs = Vec::new();
    for d in 0..DAYS {
        for i in 0..SKUS {
            let sku = format!("BP{i:05}");
            let v = format!(
                r#"{{"sku":"{sku}","ts":{},"qty":1}}"#,
                day0 + d * 86_400_000 + 3_600_000
            );
            msgs.push((Some(sku.into_bytes()), Some(v.into_bytes())));
        }
    }
    // batches of 500: ingest pauses and resumes inside them (the offset guard's case on Tansu)
    produce_batched(&brokers(), &topics.sales, &msgs, 500);

    let mut settings = settings(&topics);
    settings.scoring.manifest = dir.path().join("manifest.json");
    settings.scoring.batch_size = 1;
    settings.backpressure.max_scoring_backlog = 100;
    let engine = RunningEngine::start(&settings, None).expect("engine starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut peak_rss = 0;
    while engine.stats().total_consumed() < msgs.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {}",
            engine.stats().total_consumed(),
            msgs.len()
        );
        assert!(!engine.has_failed());
        peak_rss = peak_rss.max(trendcast::telemetry::rss_bytes());
        std::thread::sleep(Duration::from_millis(50));
    }
    engine
        .finish_replay(Duration::from_secs(120))
        .expect("finish");
    peak_rss = peak_rss.max(trendcast::telemetry::rss_bytes());
    let stats = engine.stats().clone();
    eprintln!(
        "pauses {}, waited at closes {} ms, rewinds {}, duplicates dropped {}, offsets missing {}",
        stats.pauses.get(),
        stats.close_wait_ms.get(),
        stats.rewinds.get(),
        stats.rewind_duplicates.get(),
        stats.offsets_missing.get()
    );
    assert_eq!(
        stats.offsets_missing.get(),
        0,
        "no gap accepted on a gapless log"
    );
    // Ingest is held back two ways: backpressure pauses its reading while more windows wait
    // than the bound (at least the SKUs held, since one close makes them all wait), and at
    // each close it waits until the scorer has taken the previous close's windows. With one
    // close pending at a time the backlog sits right at the bound, so whether a close tips it
    // over is a matter of timing: eight days give seven closes while ingest reads.
    let held_ms = stats.close_wait_ms.get();
    assert!(
        stats.pauses.get() >= 1 || held_ms >= 1_000,
        "the slow scorer must have held ingest back (pauses {}, waited at closes {held_ms} ms)",
        stats.pauses.get()
    );
    assert_eq!(stats.total_rejected(), 0);
    assert!(
        peak_rss < RSS_BOUND_BYTES,
        "peak RSS {peak_rss} over the stated bound {RSS_BOUND_BYTES}"
    );
    // No event lost: every SKU holds one unit on each of the eight days.
    let closed = engine.store().clock().closed_index().expect("closed");
    for i in 0..SKUS {
        let w = engine.store().get(&format!("BP{i:05}")).expect("SKU held");
        let units: f32 = (0..DAYS)
            .map(|d| w.bucket(closed - d)[Feature::Units as usize])
            .sum();
        assert_eq!(units, DAYS as f32, "BP{i:05}");
    }
    let published = stats.updates_published.get();
    engine.shutdown(Duration::from_secs(60)).expect("shutdown");
    let out = read_all(
        &brokers(),
        &topics.output,
        published as usize,
        Duration::from_secs(60),
    );
    assert_eq!(out.len() as u64, published);
    let skus: HashSet<Vec<u8>> = out
        .iter()
        .filter_map(|m| m.key().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(skus.len(), SKUS, "every SKU got trend updates");
}
