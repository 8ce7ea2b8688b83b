//! Fuzzes the input decoder: any key and payload on either topic must give an event or a
//! rejection with a reason, never a panic; an accepted event must satisfy the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trendcast::ingest::{decode, Source, ValidationLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(selector >> 1).min(rest.len());
    let (key, payload) = rest.split_at(split);
    let source = if selector & 1 == 0 {
        Source::Sales
    } else {
        Source::Clicks
    };
    let limits = ValidationLimits::default();
    let now = 1_800_000_000_000;
    if let Ok(event) = decode(source, Some(key), Some(payload), &limits, now) {
        assert!(!event.sku.is_empty() && event.sku.len() <= limits.max_sku_bytes);
        let ts = event.ts.millis();
        assert!(ts >= limits.min_ts_ms && ts <= now + limits.max_future_ms);
        assert_eq!(event.sku.as_bytes(), key);
        assert_eq!(event.body.source(), source);
    }
});
