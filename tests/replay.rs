//! `trendcast replay` against the real broker: every event arrives once, keyed by its SKU with its
//! payload's event time intact; clones multiply SKUs; `--speed` paces by event time.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::Message;

use common::*;

fn replay(
    topics: &Topics,
    input: &std::path::Path,
    extra: &[&str],
) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_trendcast"))
        .current_dir(root())
        .args([
            "replay",
            "--no-progress",
            "--input",
            input.to_str().expect("utf8"),
        ])
        .args(extra)
        .env("TRENDCAST_KAFKA__BROKERS", brokers())
        .env("TRENDCAST_KAFKA__SALES_TOPIC", &topics.sales)
        .env("TRENDCAST_KAFKA__CLICKS_TOPIC", &topics.clicks)
        .output()
        .expect("replay runs");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("summary")).expect("json");
    (v["replay"].clone(), elapsed)
}

/// (key, sku field, ts field) of every message, sorted.
fn read_back(topic: &str, want: usize) -> Vec<(String, String, i64)> {
    let mut got: Vec<_> = read_all(&brokers(), topic, want, Duration::from_secs(60))
        .iter()
        .map(|m| {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().expect("payload")).expect("json");
            (
                String::from_utf8_lossy(m.key().expect("key")).into_owned(),
                v["sku"].as_str().expect("sku").to_string(),
                v["ts"].as_i64().expect("ts in ms"),
            )
        })
        .collect();
    got.sort();
    got
}

#[test]
fn replays_retailrocket_with_keys_and_times_preserved() {
    let topics = Topics::new("replay");
    create_topics(&brokers(), &[(&topics.sales, 3), (&topics.clicks, 3)]);
    // The first 2,000 rows of the real Retailrocket log.
    let src = root().join("data/retailrocket-subset/events.csv.gz");
    let rr = trendcast::datasets::retailrocket::load(&src).expect("retailrocket");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("rr.jsonl");
    let lines: Vec<String> = rr
        .events
        .iter()
        .take(2000)
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    std::fs::write(&input, lines.join("\n")).expect("write");
    let (summary, _) = replay(&topics, &input, &["--clones", "2"]);
    assert_eq!(summary["events"], 4000);
    assert_eq!(summary["synthetic_events"], 2000);
    let sales = summary["sales"].as_u64().expect("sales") as usize;
    let clicks = summary["clicks"].as_u64().expect("clicks") as usize;
    assert_eq!(sales + clicks, 4000);
    assert!(sales > 0 && clicks > 0, "both topics used: {summary}");

    let mut want: Vec<(String, String, i64)> = Vec::new();
    let mut want_sales = Vec::new();
    for e in rr.events.iter().take(2000) {
        for sku in [e.sku().to_string(), format!("{}~1", e.sku())] {
            let row = (sku.clone(), sku, e.ts());
            match e {
                trendcast::datasets::EventRecord::Sale(_) => want_sales.push(row),
                trendcast::datasets::EventRecord::Click(_) => want.push(row),
            }
        }
    }
    want.sort();
    want_sales.sort();
    assert_eq!(
        read_back(&topics.clicks, clicks),
        want,
        "clicks: each once, key = sku, ts kept"
    );
    assert_eq!(
        read_back(&topics.sales, sales),
        want_sales,
        "sales: each once, key = sku, ts kept"
    );
    let distinct: BTreeMap<&str, ()> = want
        .iter()
        .chain(&want_sales)
        .map(|r| (r.0.as_str(), ()))
        .collect();
    assert_eq!(summary["skus"].as_u64(), Some(distinct.len() as u64));
}

#[test]
fn speed_paces_by_event_time() {
    let topics = Topics::new("replay-speed");
    create_topics(&brokers(), &[(&topics.sales, 1), (&topics.clicks, 1)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("paced.csv");
    // 11 events spanning 10 s of event time; at 5x they take 2 s.
    let mut text = String::from("sku,ts,qty\n");
    for i in 0..=10 {
        text.push_str(&format!(
            "P{},{},1\n",
            i % 3,
            1_294_221_600_000_i64 + i * 1000
        ));
    }
    std::fs::write(&input, text).expect("write");
    let (summary, _) = replay(&topics, &input, &["--speed", "5"]);
    let elapsed = summary["elapsed_s"].as_f64().expect("elapsed");
    assert!(
        (1.9..4.0).contains(&elapsed),
        "10 s of events at 5x took {elapsed} s"
    );
    let (fast, _) = replay(&topics, &input, &[]);
    assert!(
        fast["elapsed_s"].as_f64().expect("elapsed") < 1.5,
        "unpaced replay is not held back: {fast}"
    );
    assert_eq!(
        read_all(&brokers(), &topics.sales, 22, Duration::from_secs(30)).len(),
        22
    );
}
