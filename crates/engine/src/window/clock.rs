//! The event-time clock: which buckets have closed.
//!
//! A bucket closes once event time has passed its end plus the allowed lateness. Whose event
//! time depends on who drives the clock, and that is this type's whole job, kept apart from the
//! SKU map so that the rule is read in one place:
//!
//! - **offline tools** (export, evaluate) read one partition per source: the newest event time
//!   applied, the *watermark*, closes buckets;
//! - **a live engine** reads several partitions at different speeds: ingest keeps a *frontier*,
//!   the smallest event time of the partitions still being read (`ingest::alignment`), and
//!   buckets close by it, never by the watermark alone, or a partition read slowly would find
//!   its buckets closed. Until ingest has set a frontier nothing is closed;
//! - **the end of a finite replay** closes everything held (`flush`).
//!
//! Every field is an atomic: ingest writes, the scorer reads on its own thread, and a reading is
//! one load, never a lock.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::bucket::{BucketIndex, BucketSpec};
use crate::vocab::EventTime;

/// When buckets close: watermark, frontier and the two modes that change the rule.
#[derive(Debug)]
pub struct EventClock {
    spec: BucketSpec,
    lateness_ms: i64,
    /// Largest event time applied so far (its millis), or `i64::MIN`.
    watermark_ms: AtomicI64,
    /// Event-time frontier set by ingest (its millis), never decreasing; `i64::MIN` until set.
    frontier_ms: AtomicI64,
    /// Set when ingest manages the frontier: until it sets one, nothing is closed.
    frontier_managed: AtomicBool,
    /// When set, every bucket held counts as closed (end of a finite replay).
    flushed: AtomicBool,
}

impl EventClock {
    /// A clock before any event, closing buckets of `spec` once `lateness_ms` past their end.
    pub fn new(spec: BucketSpec, lateness_ms: i64) -> Self {
        Self {
            spec,
            lateness_ms,
            watermark_ms: AtomicI64::new(i64::MIN),
            frontier_ms: AtomicI64::new(i64::MIN),
            frontier_managed: AtomicBool::new(false),
            flushed: AtomicBool::new(false),
        }
    }

    /// Largest event time applied, if any.
    pub fn watermark(&self) -> Option<EventTime> {
        let wm = self.watermark_ms.load(Ordering::Acquire);
        (wm != i64::MIN).then_some(EventTime::from_millis(wm))
    }

    /// Raises the watermark to `ts` (no-op when it is already past it).
    pub fn advance_watermark(&self, ts: EventTime) {
        self.watermark_ms.fetch_max(ts.millis(), Ordering::AcqRel);
    }

    /// Index of the newest closed bucket: bucket `b` is closed once the frontier (or, when no
    /// one manages it, the watermark) has passed `end(b) + allowed_lateness`. After
    /// [`EventClock::flush`], the newest bucket held counts as closed too.
    pub fn closed_index(&self) -> Option<BucketIndex> {
        let wm = self.watermark()?;
        if self.flushed.load(Ordering::Acquire) {
            return Some(self.spec.index_of(wm));
        }
        let at = if let Some(frontier) = self.frontier() {
            frontier.min(wm)
        } else if self.frontier_managed.load(Ordering::Acquire) {
            return None;
        } else {
            wm
        };
        Some(self.closed_for(at))
    }

    /// Newest bucket closed for a reader whose largest event time is `wm`.
    pub fn closed_for(&self, wm: EventTime) -> BucketIndex {
        self.spec.index_of(wm.minus_ms(self.lateness_ms)) - 1
    }

    /// From now on buckets close by the frontier ingest sets, not by the newest event time.
    pub fn manage_frontier(&self) {
        self.frontier_managed.store(true, Ordering::Release);
    }

    /// Raises the frontier; ingest keeps it at the smallest event time of the input partitions
    /// that still have messages to read, so a bucket closes only once every such partition has
    /// passed it.
    pub fn raise_frontier(&self, to: EventTime) {
        self.frontier_ms.fetch_max(to.millis(), Ordering::AcqRel);
    }

    /// The frontier, when ingest has set one.
    pub fn frontier(&self) -> Option<EventTime> {
        let f = self.frontier_ms.load(Ordering::Acquire);
        (f != i64::MIN).then_some(EventTime::from_millis(f))
    }

    /// Closes every bucket up to the newest event (a finite replay has ended).
    pub fn flush(&self) {
        self.flushed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::DAY_MS;

    const HOUR: i64 = 3_600_000;

    fn clock() -> EventClock {
        EventClock::new(BucketSpec::new(DAY_MS), HOUR)
    }

    fn at(ms: i64) -> EventTime {
        EventTime::from_millis(ms)
    }

    #[test]
    fn the_watermark_closes_a_bucket_once_past_its_lateness() {
        let c = clock();
        assert_eq!(c.closed_index(), None, "no event yet");
        c.advance_watermark(at(DAY_MS + HOUR - 1));
        assert_eq!(
            c.closed_index(),
            Some(-1),
            "day 0 is still open to late events"
        );
        c.advance_watermark(at(DAY_MS + HOUR));
        assert_eq!(c.closed_index(), Some(0));
        c.advance_watermark(at(5));
        assert_eq!(c.closed_index(), Some(0), "the watermark never goes back");
    }

    #[test]
    fn a_managed_clock_closes_by_the_frontier_only() {
        let c = clock();
        c.manage_frontier();
        c.advance_watermark(at(3 * DAY_MS + HOUR));
        assert_eq!(c.closed_index(), None, "no frontier set yet");
        c.raise_frontier(at(DAY_MS + HOUR));
        assert_eq!(
            c.closed_index(),
            Some(0),
            "the slower partition holds day 1 open"
        );
        c.raise_frontier(at(0));
        assert_eq!(c.frontier(), Some(at(DAY_MS + HOUR)), "never lowered");
        c.raise_frontier(at(9 * DAY_MS));
        assert_eq!(
            c.closed_index(),
            Some(2),
            "not past the newest event applied"
        );
    }

    #[test]
    fn a_flush_closes_the_newest_bucket_held() {
        let c = clock();
        c.manage_frontier();
        c.advance_watermark(at(2 * DAY_MS + 5));
        c.flush();
        assert_eq!(c.closed_index(), Some(2));
    }
}
