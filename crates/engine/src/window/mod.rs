//! Window state: event-time buckets, per-SKU sliding windows, the sharded store that holds them
//! and the event-time clock that closes their buckets.
//!
//! Data path position: ingest → **window** → scoring → publish. Ingest validates an event and
//! calls [`WindowStore::apply`]; the scorer asks the store for closed windows.

pub mod admission;
pub mod bucket;
pub mod clock;
pub mod closes;
pub mod evictions;
pub mod features;
pub mod sku_window;
pub mod store;

pub use admission::Admission;
pub use bucket::{rfc3339, wall_clock_rfc3339, BucketIndex, BucketSpec};
pub use clock::EventClock;
pub use closes::CloseTriggers;
pub use evictions::{EvictionCounts, EvictionLog, EvictionReason};
pub use features::{BucketFeatures, Feature, FEATURE_COUNT};
pub use sku_window::{Applied, ScoreDecision, SkuWindow, WindowCheckError};
pub use store::{StoreOutcome, WindowStore};

use crate::vocab::EventTime;

/// Bucketing and state bounds (from `[window]`).
#[derive(Debug, Clone)]
pub struct WindowSettings {
    /// Bucket width and alignment.
    pub bucket: BucketSpec,
    /// Closed buckets per window (what the model sees).
    pub buckets: usize,
    /// How long after a bucket's end its events are still accepted (ms).
    pub lateness_ms: i64,
    /// Upper bound on SKUs held.
    pub max_skus: usize,
    /// Shards of the SKU map (0 = default).
    pub shards: usize,
}

impl WindowSettings {
    /// Ring slots per SKU: the closed window plus the buckets that can still be open
    /// (the current one and those within the allowed lateness).
    pub fn ring_capacity(&self) -> usize {
        let width = self.bucket.width_ms();
        let open = (self.lateness_ms + width - 1) / width + 1;
        self.buckets + open as usize
    }
}

/// True when an event at `ts` arrives too late: its bucket closed for the input it came from,
/// whose largest event time so far is `source_watermark`.
///
/// Lateness is judged per input partition, so the decision depends only on that partition's
/// order of events, never on how partitions interleave.
pub fn is_late(
    spec: BucketSpec,
    lateness_ms: i64,
    source_watermark: EventTime,
    ts: EventTime,
) -> bool {
    spec.index_of(ts) < spec.index_of(source_watermark.minus_ms(lateness_ms))
}

/// Whole days since 1970-01-01 UTC of the moment `t` (what a model's calendar input takes).
pub fn epoch_day(t: EventTime) -> f32 {
    t.millis().div_euclid(crate::vocab::DAY_MS) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::DAY_MS;

    #[test]
    fn lateness_boundary() {
        let spec = BucketSpec::new(DAY_MS);
        let hour = 3_600_000;
        let t = EventTime::from_millis;
        let day1 = DAY_MS; // start of bucket 1
                           // an event of bucket 0 is on time until the source passes end(0) + 1h
        assert!(!is_late(spec, hour, t(day1 + hour - 1), t(day1 - 1)));
        assert!(is_late(spec, hour, t(day1 + hour), t(day1 - 1)));
        assert!(!is_late(spec, hour, t(day1 + hour), t(day1)));
    }

    #[test]
    fn epoch_days_are_exact() {
        // 2011-11-04T00:00:00Z is day 15282; one ms earlier is still day 15281
        assert_eq!(
            epoch_day(EventTime::from_millis(1_320_364_800_000)),
            15282.0
        );
        assert_eq!(
            epoch_day(EventTime::from_millis(1_320_364_799_999)),
            15281.0
        );
        assert_eq!(epoch_day(EventTime::from_millis(-1)), -1.0);
    }
}
