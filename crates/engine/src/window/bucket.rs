//! Event-time buckets: fixed-width, UTC-aligned intervals numbered from the Unix epoch.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::vocab::{EventTime, DAY_MS};
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

    /// The bucket holding event time `ts`.
    pub fn index_of(&self, ts: EventTime) -> BucketIndex {
        (ts.millis() - self.origin_ms).div_euclid(self.width_ms)
    }

    /// Start of bucket `index`.
    pub fn start(&self, index: BucketIndex) -> EventTime {
        EventTime::from_millis(index * self.width_ms + self.origin_ms)
    }

    /// End (exclusive) of bucket `index`.
    pub fn end(&self, index: BucketIndex) -> EventTime {
        self.start(index + 1)
    }
}

/// Formats an event time as RFC 3339 UTC with a `Z` suffix, e.g. `2011-01-05T00:00:00Z`.
pub fn rfc3339(ts: EventTime) -> String {
    format_epoch_ms(ts.millis())
}

/// Formats a wall-clock time (epoch milliseconds, e.g. when a ranking was generated) the same
/// way as [`rfc3339`] does event time.
pub fn wall_clock_rfc3339(ms: i64) -> String {
    format_epoch_ms(ms)
}

fn format_epoch_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_buckets_align_to_utc_midnight() {
        let spec = BucketSpec::new(DAY_MS);
        let ts = EventTime::from_millis(1_291_192_560_000); // 2010-12-01T08:36:00Z
        let i = spec.index_of(ts);
        assert_eq!(rfc3339(spec.start(i)), "2010-12-01T00:00:00Z");
        assert_eq!(rfc3339(spec.end(i)), "2010-12-02T00:00:00Z");
    }

    #[test]
    fn weekly_buckets_start_on_monday() {
        let spec = BucketSpec::new(7 * DAY_MS);
        let i = spec.index_of(EventTime::from_millis(1_291_192_560_000)); // Wednesday 2010-12-01
        assert_eq!(rfc3339(spec.start(i)), "2010-11-29T00:00:00Z");
    }

    #[test]
    fn negative_times_floor() {
        let spec = BucketSpec::new(3_600_000);
        assert_eq!(spec.index_of(EventTime::from_millis(-1)), -1);
        assert_eq!(spec.index_of(EventTime::from_millis(0)), 0);
    }
}
