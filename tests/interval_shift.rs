//! A shift in demand through the real broker: the online interval calibration
//! (`scoring/calibration.rs`) brings the 80 % interval's coverage back to nominal.
//!
//! A seeded generator plants 100 steady SKUs (Poisson, 6–20 units a day, no sales on Saturdays,
//! the calendar of the log the shipped model was trained on) for 15 weeks; then, for the last six
//! weeks, every SKU becomes twice as volatile at the same mean (a gamma-mixed Poisson whose
//! variance is 4× the mean: a shop-wide change such as a new promotion calendar). The engine
//! replays the log twice from the broker, with the online layer on and off, and every update is
//! read back from its output topic with a stock consumer.
//!
//! Coverage is judged by issue day: the share of (update, step) pairs of the updates published
//! at the closes of seven consecutive days whose actual lies in the published 10–90 % range.
//! With the online layer, from [`RECOVER`] buckets after the shift on, that rolling coverage
//! must stay within 0.80 ± 0.03. Without it the same check fails (asserted, so the layer is what
//! makes the difference): the model's offline-calibrated intervals cover these series well
//! above nominal before and after the shift.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::Message;
use trendcast::config::Settings;
use trendcast::engine::RunningEngine;

use common::rng::Rng;
use common::*;

const DAY_MS: i64 = 86_400_000;
/// A Monday (2011-03-14, UTC).
const T0: i64 = 1_300_060_800_000;
const WEEKS: i64 = 21;
const DAYS: i64 = WEEKS * 7;
/// First day of the volatile regime.
const SHIFT: i64 = DAYS - 42;
const SKUS: usize = 100;
const HORIZON: i64 = 14;
/// Buckets after the shift from which the rolling coverage must be back within ±3 points.
const RECOVER: i64 = 14;
/// Issue days per rolling-coverage point.
const ROLL: i64 = 7;

/// Units of every SKU on every day, planted.
fn plant(rng: &mut Rng) -> Vec<Vec<u32>> {
    (0..SKUS)
        .map(|_| {
            let level = rng.uniform(6.0, 20.0);
            (0..DAYS)
                .map(|d| {
                    // T0 is a Monday: day 5 of each week is a Saturday
                    if d % 7 == 5 {
                        return 0;
                    }
                    let rate = if d >= SHIFT {
                        // variance level + level² / k = 4 · level
                        level * rng.gamma_mean_one(level / 3.0)
                    } else {
                        level
                    };
                    rng.poisson(rate)
                })
                .collect()
        })
        .collect()
}

/// One sale message per SKU and selling day, in time order, then a clock event the day after
/// that closes the last day's bucket.
fn messages(units: &[Vec<u32>]) -> Vec<Msg> {
    let mut out = Vec::new();
    for d in 0..DAYS {
        for (i, series) in units.iter().enumerate() {
            let qty = series[d as usize];
            if qty > 0 {
                let at = T0 + d * DAY_MS + 9 * 3_600_000 + i as i64 * 1_000;
                let sku = format!("shift-{i:03}");
                let v = format!(r#"{{"sku":"{sku}","ts":{at},"qty":{qty},"unit_price":2.5}}"#);
                out.push((Some(sku.into_bytes()), Some(v.into_bytes())));
            }
        }
    }
    let next_day = T0 + DAYS * DAY_MS + 3_600_000;
    let close = format!(r#"{{"sku":"clock","ts":{next_day},"qty":1}}"#);
    out.push((Some(b"clock".to_vec()), Some(close.into_bytes())));
    out
}

/// Day index (since T0) of an RFC 3339 instant.
fn day_of(rfc3339: &str) -> i64 {
    let t: DateTime<Utc> = rfc3339.parse().expect("RFC 3339 time");
    (t.timestamp_millis() - T0).div_euclid(DAY_MS)
}

/// Per issue day: (pairs covered, pairs judged), over the latest update of each SKU and close.
fn coverage_by_issue_day(
    updates: &[serde_json::Value],
    units: &[Vec<u32>],
) -> HashMap<i64, (u64, u64)> {
    let mut latest: HashMap<(String, i64), &serde_json::Value> = HashMap::new();
    for u in updates {
        let (Some(sku), Some(as_of)) = (u["sku"].as_str(), u["as_of"].as_str()) else {
            panic!("update without sku or as_of: {u}");
        };
        let key = (sku.to_string(), day_of(as_of));
        let newer = latest
            .get(&key)
            .is_none_or(|o| o["seq"].as_u64() < u["seq"].as_u64());
        if newer {
            latest.insert(key, u);
        }
    }
    let mut by_day: HashMap<i64, (u64, u64)> = HashMap::new();
    for ((sku, issued), u) in latest {
        let Some(i) = sku
            .strip_prefix("shift-")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        for step in u["horizon"].as_array().expect("horizon") {
            let day = day_of(step["start"].as_str().expect("step start"));
            if !(0..DAYS).contains(&day) {
                continue;
            }
            let q = &step["quantiles"];
            let (lo, hi) = (q["0.1"].as_f64(), q["0.9"].as_f64());
            let (Some(lo), Some(hi)) = (lo, hi) else {
                panic!("no 0.1/0.9 quantiles: {step}");
            };
            let actual = f64::from(units[i][day as usize]);
            let e = by_day.entry(issued).or_default();
            e.0 += u64::from(lo - 1e-4 <= actual && actual <= hi + 1e-4);
            e.1 += 1;
        }
    }
    by_day
}

/// Rolling coverage over [`ROLL`] issue days ending at each day whose horizon is fully past.
fn rolling(by_day: &HashMap<i64, (u64, u64)>) -> Vec<(i64, f64)> {
    (ROLL..=DAYS - HORIZON)
        .filter_map(|t| {
            let (c, n) = (t - ROLL + 1..=t)
                .filter_map(|d| by_day.get(&d))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            (n > 0).then(|| (t, c as f64 / n as f64))
        })
        .collect()
}

/// Replays the topics once with the online layer `online`; returns every update published.
fn replay(topics: &Topics, total: u64, online: bool) -> Vec<serde_json::Value> {
    let output = format!("{}-{}", topics.output, if online { "on" } else { "off" });
    create_topics(&brokers(), &[(&output, 2)]);
    let mut raw = raw_config(topics);
    raw.kafka.output_topic = output.clone();
    // each replay checkpoints apart (raw_config names a fresh directory)
    raw.checkpoint.changelog_topic = format!("{output}-changelog");
    raw.scoring.manifest = root()
        .join("models/trendcast-demand/manifest.json")
        .display()
        .to_string();
    raw.scoring.calibration.online = online;
    let settings = Settings::resolve(&raw).expect("settings resolve");
    let published = Arc::new(AtomicUsize::new(0));
    let counter = published.clone();
    let observer = Box::new(move |_: &trendcast::publish::TrendUpdate| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let engine = RunningEngine::start(&settings, Some(observer)).expect("engine starts");
    wait_consumed(&engine, total, Duration::from_secs(240));
    engine
        .finish_replay(Duration::from_secs(120))
        .expect("scorer drains");
    engine
        .shutdown(Duration::from_secs(30))
        .expect("engine stops");
    let want = published.load(Ordering::Relaxed);
    read_all(&brokers(), &output, want, Duration::from_secs(120))
        .iter()
        .map(|m| serde_json::from_slice(m.payload().expect("payload")).expect("update JSON"))
        .collect()
}

/// The rolling points from RECOVER buckets after the shift on that are off nominal by more than
/// three points.
fn off_nominal(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    points
        .iter()
        .filter(|(t, c)| *t >= SHIFT + RECOVER && (c - 0.80).abs() > 0.03)
        .copied()
        .collect()
}

#[test]
fn online_calibration_restores_coverage_after_a_volatility_shift() {
    let topics = Topics::create("shift", 2);
    let units = plant(&mut Rng(20_261_208));
    let sales = messages(&units);
    produce(&brokers(), &topics.sales, &sales);
    let total = sales.len() as u64;

    let on = rolling(&coverage_by_issue_day(
        &replay(&topics, total, true),
        &units,
    ));
    let off = rolling(&coverage_by_issue_day(
        &replay(&topics, total, false),
        &units,
    ));
    let show = |p: &[(i64, f64)]| -> String {
        p.iter()
            .filter(|(t, _)| t % 7 == 0)
            .map(|(t, c)| format!("{}:{c:.3}", t - SHIFT))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "rolling coverage (issue day − shift: coverage), online on:  {}",
        show(&on)
    );
    println!(
        "rolling coverage (issue day − shift: coverage), online off: {}",
        show(&off)
    );
    let judged = on.iter().filter(|(t, _)| *t >= SHIFT + RECOVER).count();
    assert!(judged >= 10, "only {judged} rolling points after recovery");
    let bad = off_nominal(&on);
    assert!(
        bad.is_empty(),
        "with the online layer, {} of {judged} points are off 0.80 ± 0.03: {bad:?}",
        bad.len()
    );
    let bad_off = off_nominal(&off);
    assert!(
        !bad_off.is_empty(),
        "without the online layer the check must fail, yet every point is within 0.80 ± 0.03"
    );
}
