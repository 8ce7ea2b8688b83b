//! Planted trends through the real broker and the shipped model (docs/TRENDS.md).
//!
//! A seeded generator plants five kinds of SKU over 70 days of sales (and clicks): ramps up
//! (2–3× over the last three weeks), ramps down (to 5–10 % over the same weeks), flat
//! Poisson-like counts, weekly-seasonal flat counts and intermittent flat counts (a sale every
//! few days). The engine runs with the shipped model and the signals component; the latest
//! update of each SKU, read back from the output topic with a stock consumer, must call:
//!
//! - at least 90 % of the risers rising and 90 % of the fallers falling;
//! - at least 80 % of every kind of flat series flat;
//! - mean `p_up` risers > flat > fallers;
//!
//! and the last hot-products ranking must hold a riser and no faller. The trend report made from
//! the topics (`trendcast report --from-topics`) lists risers as rising and fallers as falling.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use trendcast::config::Settings;
use trendcast::engine::RunningEngine;

use common::rng::Rng;
use common::*;

const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_300_000_000_000 - 1_300_000_000_000 % DAY_MS;
const DAYS: i64 = 70;
const PER_KIND: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Rising,
    Falling,
    Flat,
    Weekly,
    Intermittent,
}

const KINDS: [Kind; 5] = [
    Kind::Rising,
    Kind::Falling,
    Kind::Flat,
    Kind::Weekly,
    Kind::Intermittent,
];

/// Expected units on each of the 70 days.
fn rates(kind: Kind, rng: &mut Rng) -> Vec<f64> {
    let ramp_start = DAYS - 22;
    let ramp = |day: i64, end: f64| {
        let done = ((day - ramp_start).max(0) as f64 / 21.0).min(1.0);
        1.0 + (end - 1.0) * done
    };
    let level = rng.uniform(4.0, 20.0);
    let flat = rng.uniform(4.0, 10.0);
    let (grow, shrink) = (rng.uniform(2.0, 3.0), rng.uniform(0.05, 0.1));
    let phase = (rng.next() % 7) as i64;
    let sparse = rng.uniform(0.15, 0.5);
    // a weekly profile of mean 1
    const WEEK: [f64; 7] = [1.3, 1.2, 1.1, 1.0, 1.2, 0.6, 0.6];
    (0..DAYS)
        .map(|d| match kind {
            Kind::Rising => level * ramp(d, grow),
            Kind::Falling => level * ramp(d, shrink),
            Kind::Flat => flat,
            Kind::Weekly => flat * WEEK[((d + phase) % 7) as usize],
            Kind::Intermittent => sparse,
        })
        .collect()
}

/// A message with its event time, so that the stream can be produced in time order.
type Timed = (i64, Msg);

/// Sales (one message per order of 1–4 units) and clicks (a view per 3 orders) of one SKU.
fn events(sku: &str, kind: Kind, rng: &mut Rng) -> (Vec<Timed>, Vec<Timed>) {
    let price = rng.uniform(1.5, 5.0);
    let (mut sales, mut clicks) = (Vec::new(), Vec::new());
    for (day, rate) in rates(kind, rng).into_iter().enumerate() {
        let mut units = rng.poisson(rate);
        let ts = T0 + day as i64 * DAY_MS + 9 * 3_600_000;
        let mut order = 0;
        while units > 0 {
            let qty = units.min(1 + (rng.next() % 4) as u32);
            units -= qty;
            order += 1;
            let at = ts + order * 60_000;
            let v = format!(r#"{{"sku":"{sku}","ts":{at},"qty":{qty},"unit_price":{price:.2}}}"#);
            sales.push((at, (Some(sku.as_bytes().to_vec()), Some(v.into_bytes()))));
            if order % 3 == 1 {
                let c = format!(r#"{{"sku":"{sku}","ts":{at},"kind":"view"}}"#);
                clicks.push((at, (Some(sku.as_bytes().to_vec()), Some(c.into_bytes()))));
            }
        }
    }
    (sales, clicks)
}

fn latest_updates(brokers: &str, topic: &str, want: usize) -> HashMap<String, serde_json::Value> {
    let mut latest: HashMap<String, serde_json::Value> = HashMap::new();
    for m in read_all(brokers, topic, want, Duration::from_secs(120)) {
        let v: serde_json::Value =
            serde_json::from_slice(m.payload().expect("update payload")).expect("update JSON");
        let sku = v["sku"].as_str().expect("sku").to_string();
        let seq = v["seq"].as_u64().expect("seq");
        if latest.get(&sku).and_then(|o| o["seq"].as_u64()) < Some(seq) {
            latest.insert(sku, v);
        }
    }
    latest
}

#[test]
fn planted_trends_are_called_right_by_the_shipped_model() {
    let brokers = brokers();
    let topics = Topics::create("planted", 2);
    let hot = format!("{}-hot", topics.sales);
    create_topics(&brokers, &[(&hot, 1)]);
    let mut raw = raw_config(&topics);
    raw.scoring.manifest = root()
        .join("models/trendcast-demand/manifest.json")
        .display()
        .to_string();
    raw.signals.enabled = true;
    raw.signals.hot_products_topic = hot.clone();
    raw.signals.hot_interval = "200ms".into();
    raw.signals.hot_max_age = "400d".into();
    let settings = Settings::resolve(&raw).expect("settings resolve");

    let mut rng = Rng(20_261_130);
    let mut kind_of = HashMap::new();
    let (mut sales, mut clicks) = (Vec::new(), Vec::new());
    for kind in KINDS {
        for i in 0..PER_KIND {
            let sku = format!("{kind:?}-{i:02}").to_lowercase();
            let (s, c) = events(&sku, kind, &mut rng);
            sales.extend(s);
            clicks.extend(c);
            kind_of.insert(sku, kind);
        }
    }
    // one event the day after closes the last day's bucket for everyone
    let next_day = T0 + DAYS * DAY_MS + 3_600_000;
    let close = format!(r#"{{"sku":"clock","ts":{next_day},"qty":1}}"#);
    sales.push((
        next_day,
        (Some(b"clock".to_vec()), Some(close.into_bytes())),
    ));
    // in event-time order, as a live feed arrives (batched: many messages per record batch)
    let in_time_order = |mut timed: Vec<Timed>| {
        timed.sort_by_key(|(ts, _)| *ts);
        timed.into_iter().map(|(_, m)| m).collect::<Vec<Msg>>()
    };
    let (sales, clicks) = (in_time_order(sales), in_time_order(clicks));
    produce(&brokers, &topics.sales, &sales);
    produce(&brokers, &topics.clicks, &clicks);
    let total = (sales.len() + clicks.len()) as u64;

    let published = Arc::new(AtomicUsize::new(0));
    let incoherent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (counter, bad) = (published.clone(), incoherent.clone());
    // the shipped model's flat band (its manifest's `direction_output`; docs/TRENDS.md)
    let band = 0.2;
    let observer = Box::new(move |u: &trendcast::publish::TrendUpdate| {
        counter.fetch_add(1, Ordering::Relaxed);
        let v = trendcast::scoring::distribution::update_violations(u, band);
        if !v.is_empty() {
            bad.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((u.sku.clone(), v));
        }
    });
    let engine = RunningEngine::start(&settings, Some(observer)).expect("engine starts");
    wait_consumed(&engine, total, Duration::from_secs(240));
    assert_eq!(
        engine.stats().total_rejected(),
        0,
        "every planted event is admitted"
    );
    // caught up: what is ready is scored and acknowledged, then read back by a stock consumer
    engine
        .finish_replay(Duration::from_secs(120))
        .expect("scorer drains");
    let latest = latest_updates(&brokers, &topics.output, published.load(Ordering::Relaxed));
    {
        let bad = incoherent.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            bad.is_empty(),
            "{} of {} updates broke coherence, e.g. {:?}",
            bad.len(),
            published.load(Ordering::Relaxed),
            bad.first()
        );
    }

    let mut tally: HashMap<Kind, (usize, usize, usize, f64)> = HashMap::new();
    for (sku, kind) in &kind_of {
        let u = latest
            .get(sku)
            .unwrap_or_else(|| panic!("no update for {sku}"));
        let t = tally.entry(*kind).or_default();
        match u["trend"]["direction"].as_str() {
            Some("rising") => t.0 += 1,
            Some("falling") => t.1 += 1,
            _ => t.2 += 1,
        }
        t.3 += u["trend"]["p_up"].as_f64().expect("p_up") / PER_KIND as f64;
    }
    let report = format!("(rising, falling, flat, mean p_up) per kind: {tally:?}");
    println!("{report}");
    let need = |share: f64| (share * PER_KIND as f64).ceil() as usize;
    assert!(tally[&Kind::Rising].0 >= need(0.9), "risers: {report}");
    assert!(tally[&Kind::Falling].1 >= need(0.9), "fallers: {report}");
    for kind in [Kind::Flat, Kind::Weekly, Kind::Intermittent] {
        assert!(tally[&kind].2 >= need(0.8), "{kind:?}: {report}");
    }
    let flat_p_up = [Kind::Flat, Kind::Weekly, Kind::Intermittent]
        .iter()
        .map(|k| tally[k].3)
        .sum::<f64>()
        / 3.0;
    assert!(
        tally[&Kind::Rising].3 > flat_p_up && flat_p_up > tally[&Kind::Falling].3,
        "mean p_up must run risers > flat > fallers: {report}"
    );

    // the ranking, once the signals component has seen the updates
    let deadline = Instant::now() + Duration::from_secs(60);
    let ranked: Vec<String> = loop {
        let rankings = read_all(&brokers, &hot, usize::MAX, Duration::from_secs(3));
        let last = rankings
            .last()
            .and_then(|m| m.payload())
            .map(|p| serde_json::from_slice::<serde_json::Value>(p).expect("ranking JSON"));
        let considered = last.as_ref().and_then(|v| v["skus_considered"].as_u64());
        if considered >= Some(kind_of.len() as u64) {
            let top = last.as_ref().and_then(|v| v["top"].as_array()).cloned();
            break top
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["sku"].as_str().map(String::from))
                .collect();
        }
        assert!(Instant::now() < deadline, "no ranking covering every SKU");
    };
    let kinds: Vec<Kind> = ranked
        .iter()
        .filter_map(|s| kind_of.get(s).copied())
        .collect();
    assert!(kinds.contains(&Kind::Rising), "no riser ranked: {ranked:?}");
    assert!(
        !kinds.contains(&Kind::Falling),
        "a faller ranked: {ranked:?}"
    );
    println!("ranked kinds: {kinds:?}");
    report_names_the_planted_trends(&settings, &kind_of, sales.len() as u64);
    engine
        .shutdown(Duration::from_secs(30))
        .expect("engine stops");
}

/// The trend report made from the topics lists only planted risers as rising and only planted
/// fallers as falling, and its calibration panel judged the calls of four past weeks.
fn report_names_the_planted_trends(
    settings: &Settings,
    kind_of: &HashMap<String, Kind>,
    sales: u64,
) {
    use trendcast::report::{self, collect, ReportOptions};
    let inputs = collect::from_topics(settings).expect("report inputs read from the topics");
    assert!(inputs.not_read.is_empty(), "{:?}", inputs.not_read);
    assert_eq!(
        inputs.sales_events, sales,
        "every sale read back ({} unreadable)",
        inputs.unreadable
    );
    let options = ReportOptions {
        top: 10,
        ..ReportOptions::default()
    };
    let built = report::build(&inputs, &options);
    let kinds = |rows: &[report::tables::ProductRow]| -> Vec<Option<Kind>> {
        rows.iter().map(|r| kind_of.get(&r.sku).copied()).collect()
    };
    assert_eq!(built.rising.len(), 10, "{:?}", kinds(&built.rising));
    assert!(
        kinds(&built.rising)
            .iter()
            .all(|k| *k == Some(Kind::Rising)),
        "rising table: {:?}",
        kinds(&built.rising)
    );
    assert!(!built.falling.is_empty(), "no falling table");
    assert!(
        kinds(&built.falling)
            .iter()
            .all(|k| *k == Some(Kind::Falling)),
        "falling table: {:?}",
        kinds(&built.falling)
    );
    assert_eq!(
        built.calibration.origins.len(),
        4,
        "{:?}",
        built.calibration
    );
    assert!(built.calibration.origins[0].skus >= kind_of.len() / 2);
    let html = report::html::render(&built);
    for row in built.rising.iter().chain(&built.falling) {
        assert!(
            html.contains(&format!("data-sku=\"{}\"", row.sku)),
            "{} not in the HTML",
            row.sku
        );
    }
}
