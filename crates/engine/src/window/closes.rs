//! Which input event closed each bucket, for the event→update latency.
//!
//! Every trend update carries the producer create time of the event whose arrival closed its
//! bucket (`scoring::TRIGGER_HEADER`), so a subscriber can measure event→update latency from the
//! update alone. Ingest records each close here; the scorer looks up the trigger of the bucket
//! it scored. Only the newest [`CLOSE_TRIGGERS_KEPT`] closes are kept: the scorer never lags
//! that far behind a close it has not scored, and a bucket whose close was dropped gets no
//! trigger rather than a wrong one.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::bucket::BucketIndex;

/// Closes remembered for latency measurement.
pub const CLOSE_TRIGGERS_KEPT: usize = 256;

/// The newest closes, oldest first: (newest bucket closed, producer create time of the event
/// that closed it; none for a close no event brought about).
#[derive(Debug, Default)]
pub struct CloseTriggers {
    closes: Mutex<VecDeque<(BucketIndex, Option<i64>)>>,
}

impl CloseTriggers {
    /// Remembers that the event created (by its producer) at `created_ms` closed every bucket
    /// after the previous close up to `closed`. `None` records a close no event brought about.
    pub fn record(&self, closed: BucketIndex, created_ms: Option<i64>) {
        // a poisoned lock only costs latency headers, never state
        if let Ok(mut t) = self.closes.lock() {
            if t.len() == CLOSE_TRIGGERS_KEPT {
                t.pop_front();
            }
            t.push_back((closed, created_ms));
        }
    }

    /// Producer create time of the event that closed `bucket`: that of the first close that
    /// reached it. One close can cover several buckets (the frontier jumps over days without
    /// events), so the close recorded under a later index is the one that closed an earlier
    /// bucket, never one recorded before it. None when no event closed it, or when the close that
    /// did is no longer kept.
    pub fn trigger_of(&self, bucket: BucketIndex) -> Option<i64> {
        let t = self.closes.lock().ok()?;
        let i = t.iter().position(|(c, _)| *c >= bucket)?;
        if i == 0 && t.len() == CLOSE_TRIGGERS_KEPT {
            return None; // the close that reached it may have been dropped
        }
        t[i].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_takes_the_trigger_of_the_close_that_reached_it() {
        let s = CloseTriggers::default();
        s.record(10, Some(1_000));
        // the frontier jumped over a day without events: buckets 11 and 12 closed together
        s.record(12, Some(2_000));
        s.record(13, None);
        s.record(14, Some(4_000));
        assert_eq!(s.trigger_of(10), Some(1_000));
        assert_eq!(s.trigger_of(11), Some(2_000), "not the close before it");
        assert_eq!(s.trigger_of(12), Some(2_000));
        assert_eq!(s.trigger_of(13), None, "closed by no event");
        assert_eq!(s.trigger_of(14), Some(4_000));
        assert_eq!(s.trigger_of(15), None, "not closed yet");
    }

    #[test]
    fn a_close_no_longer_kept_gives_no_trigger() {
        let s = CloseTriggers::default();
        for i in 0..=CLOSE_TRIGGERS_KEPT as i64 {
            s.record(10 * i, Some(i));
        }
        // the close that reached bucket 1 (index 10) was dropped; index 20 is the oldest kept
        assert_eq!(s.trigger_of(1), None);
        assert_eq!(s.trigger_of(11), Some(2), "reached by the close kept at 20");
        assert_eq!(s.trigger_of(21), Some(3));
    }
}
