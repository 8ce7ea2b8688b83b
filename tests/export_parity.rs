//! `trendcast export-windows` writes exactly the windows the live engine scores: the same events
//! through Kafka and the engine, and through the exporter, give identical windows at the final
//! closed bucket.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use trendcast::datasets::{online_retail, EventRecord};
use trendcast::engine::RunningEngine;
use trendcast::window::{Feature, FEATURE_COUNT};

fn read_npy(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn exported_windows_equal_live_windows() {
    let data = online_retail::load(&root().join("data/online-retail/online_retail.csv.gz"))
        .expect("dataset");
    let start = data.events[0].ts;
    let events: Vec<_> = data
        .events
        .into_iter()
        .filter(|e| e.ts < start + 40 * 86_400_000)
        .collect();

    // Live: through the broker and the engine.
    let topics = Topics::create("parity", 2);
    let msgs: Vec<Msg> = events
        .iter()
        .map(|e| {
            (
                Some(e.sku.as_bytes().to_vec()),
                Some(serde_json::to_vec(e).expect("json")),
            )
        })
        .collect();
    produce(&brokers(), &topics.sales, &msgs);
    let settings = settings(&topics);
    let engine = RunningEngine::start(&settings, None).expect("engine");
    wait_consumed(&engine, msgs.len() as u64, Duration::from_secs(120));
    engine
        .finish_replay(Duration::from_secs(60))
        .expect("finish");
    let closed = engine.store().clock().closed_index().expect("closed");
    let t = settings.window.buckets;
    let mut live: HashMap<String, Vec<f32>> = HashMap::new();
    for (sku, _) in engine.store().snapshot() {
        let mut row = vec![0.0; t * FEATURE_COUNT];
        engine
            .store()
            .write_window(&sku, closed, &Feature::ALL, &mut row);
        if row.iter().any(|v| *v != 0.0) {
            live.insert(sku.to_string(), row);
        }
    }
    engine.shutdown(Duration::from_secs(30)).expect("shutdown");

    // Offline: the exporter on the same events.
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<EventRecord> = events.into_iter().map(EventRecord::Sale).collect();
    trendcast::export::export(records, &settings.window, 7, dir.path()).expect("export");
    let windows = read_npy(&dir.path().join("windows.npy"));
    let index = std::fs::read_to_string(dir.path().join("index.csv")).expect("index");
    let origin = trendcast::window::rfc3339(settings.window.bucket.end(closed));
    let per = t * FEATURE_COUNT;
    let mut exported: HashMap<String, Vec<f32>> = HashMap::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols[2] == origin {
            let row: usize = cols[0].parse().expect("row");
            exported.insert(
                cols[1].to_string(),
                windows[row * per..(row + 1) * per].to_vec(),
            );
        }
    }
    assert!(live.len() > 1000, "enough SKUs: {}", live.len());
    assert_eq!(exported.len(), live.len(), "same SKUs at {origin}");
    for (sku, row) in &live {
        assert_eq!(exported.get(sku), Some(row), "window of {sku} at {origin}");
    }
}
