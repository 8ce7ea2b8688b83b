//! Event-time buckets: fixed-width, UTC-aligned intervals numbered from the Unix epoch.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::vocab::DAY_MS;
/// Monday 1970-01-05T00:00:00Z: weekly buckets start on Mondays.
const MONDAY_ORIGIN_MS: i64 = 4 * DAY_MS;

/// Index of a bucket: bucket `i` covers `[start(i), start(i + 1))`.
pub type BucketIndex = i64;

/// Width and alignment of buckets.
///
/// Buckets are aligned to UTC midnight (any width dividing a day, or whole days), and widths that
/// are whole weeks start on Mondays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    width_ms: i64,
    origin_ms: i64,
}

impl BucketSpec {
    /// A spec with the given width in milliseconds (must be positive).
    pub fn new(width_ms: i64) -> Self {
        let width_ms = width_ms.max(1);
        let origin_ms = if width_ms % (7 * DAY_MS) == 0 {
            MONDAY_ORIGIN_MS
        } else {
            0
        };
        Self {
            width_ms,
            origin_ms,
        }
    }

    /// Bucket width in milliseconds.
    pub fn width_ms(&self) -> i64 {
        self.width_ms
    }

    /// The bucket holding event time `ts_ms`.
    pub fn index_of(&self, ts_ms: i64) -> BucketIndex {
        (ts_ms - self.origin_ms).div_euclid(self.width_ms)
    }

    /// Start of bucket `index` in epoch milliseconds.
    pub fn start_ms(&self, index: BucketIndex) -> i64 {
        index * self.width_ms + self.origin_ms
    }

    /// End (exclusive) of bucket `index` in epoch milliseconds.
    pub fn end_ms(&self, index: BucketIndex) -> i64 {
        self.start_ms(index + 1)
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with a `Z` suffix, e.g. `2011-01-05T00:00:00Z`.
pub fn rfc3339(ts_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ts_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ts_ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_buckets_align_to_utc_midnight() {
        let spec = BucketSpec::new(DAY_MS);
        let ts = 1_291_192_560_000; // 2010-12-01T08:36:00Z
        let i = spec.index_of(ts);
        assert_eq!(rfc3339(spec.start_ms(i)), "2010-12-01T00:00:00Z");
        assert_eq!(rfc3339(spec.end_ms(i)), "2010-12-02T00:00:00Z");
    }

    #[test]
    fn weekly_buckets_start_on_monday() {
        let spec = BucketSpec::new(7 * DAY_MS);
        let i = spec.index_of(1_291_192_560_000); // Wednesday 2010-12-01
        assert_eq!(rfc3339(spec.start_ms(i)), "2010-11-29T00:00:00Z");
    }

    #[test]
    fn negative_times_floor() {
        let spec = BucketSpec::new(3_600_000);
        assert_eq!(spec.index_of(-1), -1);
        assert_eq!(spec.index_of(0), 0);
    }
}
