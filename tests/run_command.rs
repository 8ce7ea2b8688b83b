//! `trendcast run` as deployed: consumes from the broker, serves Prometheus metrics (every one
//! that the Grafana dashboard and the alert rules under `deploy/` name), and shuts down cleanly
//! on SIGTERM.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn scrape(addr: &str) -> Option<String> {
    http_get(addr, "/metrics").map(|(_, body)| body)
}

/// Every `trendcast_*` metric name in the dashboard and the alert rules under `deploy/`.
fn metrics_named_in_deploy() -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for file in [
        "deploy/grafana/trendcast.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        for (at, _) in text.match_indices("trendcast_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    assert!(names.len() >= 10, "too few metric names found: {names:?}");
    names
}

/// The names of `wanted` that `body` (a Prometheus scrape) does not export; a histogram's
/// `_bucket`, `_sum` and `_count` series count as exported with the histogram.
fn missing_from(body: &str, wanted: &std::collections::BTreeSet<String>) -> Vec<String> {
    let exported = |name: &str| body.contains(&format!("# TYPE {name} "));
    wanted
        .iter()
        .filter(|name| {
            let histogram = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .any(|base| body.contains(&format!("# TYPE {base} histogram")));
            !exported(name) && !histogram
        })
        .cloned()
        .collect()
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn run_serves_metrics_and_stops_on_sigterm() {
    let brokers = brokers();
    let topics = Topics::create("run", 2);
    let day = 86_400_000_i64;
    let mut msgs = Vec::new();
    for d in 0..10 {
        for sku in ["R1", "R2", "R3"] {
            let v = format!(
                r#"{{"sku":"{sku}","ts":{},"qty":{}}}"#,
                1_294_000_000_000 + d * day,
                d + 1
            );
            msgs.push((Some(sku.as_bytes().to_vec()), Some(v.into_bytes())));
        }
    }
    msgs.push((Some(b"R1".to_vec()), Some(b"not json".to_vec())));
    produce(&brokers, &topics.sales, &msgs);

    let addr = free_addr();
    let state = tempfile::tempdir().expect("state dir");
    let group = unique("run-group");
    // the signals component too, so that its metrics (restock signals) are exported
    let hot = format!("{}-hot", topics.sales);
    create_topics(&brokers, &[(&hot, 1)]);
    let mut child = trendcast_run(&topics, &group, state.path())
        .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", &addr)
        .env("TRENDCAST_SIGNALS__ENABLED", "true")
        .env("TRENDCAST_SIGNALS__HOT_PRODUCTS_TOPIC", &hot)
        .spawn()
        .expect("spawn trendcast run");

    // every metric the dashboard and the alert rules use (the checkpoint histogram appears with
    // the first checkpoint, 5 s in)
    let named = metrics_named_in_deploy();
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Some(body) = scrape(&addr) {
            if metric(&body, "trendcast_events_consumed_total") >= msgs.len() as f64
                && metric(&body, "trendcast_trend_updates_published_total") >= 3.0
                && missing_from(&body, &named).is_empty()
            {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the consumed events and every metric deploy/ names; missing: {:?}",
            scrape(&addr).map(|b| missing_from(&b, &named))
        );
        if child.try_wait().expect("try_wait").is_some() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("trendcast run exited early: {err}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        metric(
            &body,
            "trendcast_events_rejected_total{reason=\"invalid_json\"}"
        ),
        1.0,
        "{body}"
    );
    assert!(!body.contains("sku=\""), "no SKU labels");

    // the orchestrator's probes, on the same listener: alive, and ready once consuming
    let (status, live) = http_get(&addr, "/healthz").expect("/healthz answers");
    assert_eq!(status, 200, "{live}");
    let live: serde_json::Value = serde_json::from_str(&live).expect("/healthz JSON");
    assert_eq!(live["ok"], true, "{live}");
    let running = live["threads_running"].as_array().expect("thread list");
    for thread in ["ingest", "scorer"] {
        assert!(running.contains(&thread.into()), "{live}");
    }
    let (status, ready) = http_get(&addr, "/readyz").expect("/readyz answers");
    assert_eq!(status, 200, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("/readyz JSON");
    assert_eq!(ready["partitions"], 2, "both partitions owned: {ready}");
    assert!(ready["last_poll_ms_ago"].as_u64().expect("polled") < 5_000);
    let (status, _) = http_get(&addr, "/nope").expect("answers");
    assert_eq!(status, 404);
    // latency histograms are exported with buckets (aggregatable), not as summaries
    for histogram in [
        "trendcast_scoring_latency_seconds",
        "trendcast_event_to_update_seconds",
        "trendcast_scoring_batch_windows",
    ] {
        assert!(
            body.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} is not a histogram:\n{body}"
        );
        assert!(
            body.contains(&format!("{histogram}_bucket{{le=\"+Inf\"}}")),
            "{histogram} has no buckets:\n{body}"
        );
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(exit.success(), "exit {exit:?}: {err}");
    assert!(err.contains("shutting down"), "{err}");

    // graceful shutdown checkpointed the state and committed the offsets it reflects
    let dump = Command::new(env!("CARGO_BIN_EXE_trendcast"))
        .args(["dump-state", "--dir"])
        .arg(state.path().join(&group))
        .output()
        .expect("dump-state");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    let skus: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let mut names: Vec<&str> = skus.iter().filter_map(|v| v["sku"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["R1", "R2", "R3"], "{text}");
    let committed = committed_offsets(&brokers, &group, &topics.sales, 2);
    assert_eq!(
        committed.iter().sum::<i64>(),
        msgs.len() as i64,
        "committed {committed:?}"
    );
}

/// A store at `window.max_skus` evicts the least recently active SKUs inside the ingest path;
/// the operator's only sign of it is `trendcast_window_evictions_total{reason="capacity"}`.
#[test]
fn evictions_at_the_sku_bound_are_counted() {
    let topics = Topics::create("run-cap", 1);
    let day = 86_400_000_i64;
    let mut msgs = Vec::new();
    for d in 0..3 {
        for sku in ["C1", "C2", "C3", "C4", "C5"] {
            let v = format!(
                r#"{{"sku":"{sku}","ts":{},"qty":1}}"#,
                1_294_000_000_000 + d * day
            );
            msgs.push((Some(sku.as_bytes().to_vec()), Some(v.into_bytes())));
        }
    }
    produce(&brokers(), &topics.sales, &msgs);
    let addr = free_addr();
    let state = tempfile::tempdir().expect("state dir");
    let mut child = trendcast_run(&topics, &unique("run-cap-group"), state.path())
        .env("TRENDCAST_TELEMETRY__METRICS_LISTEN", &addr)
        .env("TRENDCAST_WINDOW__MAX_SKUS", "2")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn trendcast run");
    let capacity = "trendcast_window_evictions_total{reason=\"capacity\"}";
    // housekeeping reports evictions every 5 s
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = scrape(&addr).unwrap_or_default();
        if metric(&body, "trendcast_events_consumed_total") >= msgs.len() as f64
            && metric(&body, capacity) > 0.0
        {
            break body;
        }
        if Instant::now() >= deadline || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            panic!("no capacity eviction counted:\n{body}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    // five SKUs through a store of two: at least three had to go
    assert!(metric(&body, capacity) >= 3.0, "{body}");
    assert!(metric(&body, "trendcast_window_skus") <= 2.0, "{body}");
}
