//! Measures resident memory per SKU of the window store: inserts N SKUs (default 200,000) with
//! one event each and compares the process's resident set before and after.
//!
//! `cargo run --release --example state_memory -- 200000`

use std::sync::Arc;

use trendcast::config::{RawConfig, Settings};
use trendcast::ingest::{Admission, Event, EventBody, Source};
use trendcast::window::WindowStore;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let settings = match Settings::resolve(&RawConfig::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("default settings: {e}");
            std::process::exit(1);
        }
    };
    let skus: Vec<String> = (0..n).map(|i| format!("SKU-{i:08}")).collect();
    let before = trendcast::telemetry::rss_bytes();
    let store = Arc::new(WindowStore::new(settings.window.clone()));
    let mut admission = Admission::new(store.clone());
    for (i, sku) in skus.iter().enumerate() {
        let event = Event {
            sku: sku.as_str().into(),
            ts: trendcast::vocab::EventTime::from_millis(1_294_000_000_000 + (i as i64 % 1000)),
            body: EventBody::Sale {
                qty: 1.0,
                unit_price: Some(1.0),
            },
        };
        let _ = admission.admit(Source::Sales, 0, &event);
    }
    let after = trendcast::telemetry::rss_bytes();
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    let raw = settings.window.ring_capacity() * 24;
    println!(
        "{{\"skus\": {n}, \"sku_key_bytes\": 12, \"ring_slots\": {}, \"raw_window_bytes\": {raw}, \"rss_bytes_per_sku\": {per:.0}, \"ratio_to_raw\": {:.2}}}",
        settings.window.ring_capacity(),
        per / raw as f64
    );
}
