//! One SKU's sliding window: a ring of buckets plus the bookkeeping that drives re-scoring.

use serde::{Deserialize, Serialize};

use super::bucket::BucketIndex;
use super::features::{apply, slots_of, BucketFeatures, Feature, FEATURE_COUNT};
use crate::ingest::{EventBody, Source};

/// Result of applying one event to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event updated its bucket. `newly_dirty` is true when the window had no unscored change
    /// before, or when the change reached an older bucket than any unscored change so far.
    Updated {
        /// Whether the scheduler must be told about this SKU.
        newly_dirty: bool,
    },
    /// The event's bucket has already slid out of the ring.
    Expired,
}

/// What the scheduler decided when it looked at a dirty window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreDecision {
    /// Score now: the window was copied out; publish with this sequence number.
    Score {
        /// Per-SKU increasing sequence number of the update.
        seq: u64,
    },
    /// Scored too recently at this closed bucket; try again at `retry_at_ms` (engine clock).
    Defer {
        /// Engine-clock time after which scoring is allowed.
        retry_at_ms: i64,
    },
    /// Nothing to score: no unscored change reaches a closed bucket.
    Clean,
}

/// `dirty_from` of a window with no unscored change (a sentinel keeps the struct at 64 bytes).
const CLEAN: BucketIndex = i64::MAX;

/// Width of the per-close revision counter inside `seq`.
const REVISION_BITS: u32 = 16;

/// One SKU's window state.
///
/// Sales and clicks arrive on different topics, so each source has its own ring head: whether an
/// event still fits depends only on its own topic's order, never on how the two interleave. Both
/// sources share the ring's slots (sales fill features 0–2, clicks 3–5).
///
/// Memory: a 64-byte struct (including the ring's pointer) plus `capacity × 24` bytes of
/// buckets (f32 × 6 features) on the heap; the map entry adds the key. With the defaults
/// (28 buckets + 2 open slots) that is 64 + 720 bytes per SKU before the key; the measured
/// resident cost per SKU is in `docs/ARCHITECTURE.md` (`cargo run --release --example state_memory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuWindow {
    /// Newest bucket index held per source (sales, clicks); `i64::MIN` when none yet.
    heads: [BucketIndex; 2],
    /// Oldest bucket changed since the last scoring; `CLEAN` when none.
    dirty_from: BucketIndex,
    /// Closed-bucket index at the last scoring.
    scored_close: BucketIndex,
    /// Scorings made at `scored_close` (the low bits of `seq`).
    revision: u32,
    /// Engine-clock time of the last scoring (ms).
    last_scored_ms: i64,
    /// Ring of buckets; bucket `b` lives at `b mod capacity`.
    ring: Box<[BucketFeatures]>,
}

impl SkuWindow {
    /// An empty window able to hold `capacity` buckets (closed window plus open slots).
    pub fn new(capacity: usize) -> Self {
        Self {
            heads: [i64::MIN; 2],
            dirty_from: CLEAN,
            scored_close: i64::MIN,
            revision: 0,
            last_scored_ms: i64::MIN,
            ring: vec![[0.0; FEATURE_COUNT]; capacity.max(1)].into_boxed_slice(),
        }
    }

    fn capacity(&self) -> i64 {
        self.ring.len() as i64
    }

    fn slot(&self, bucket: BucketIndex) -> usize {
        bucket.rem_euclid(self.capacity()) as usize
    }

    /// Newest bucket index held by either source, or `None` for a window nothing was applied to.
    pub fn head(&self) -> Option<BucketIndex> {
        let h = self.heads[0].max(self.heads[1]);
        (h != i64::MIN).then_some(h)
    }

    fn holds(&self, source: Source, bucket: BucketIndex) -> bool {
        let head = self.heads[source as usize];
        head != i64::MIN && bucket <= head && bucket > head - self.capacity()
    }

    /// Oldest bucket changed since the last scoring.
    pub fn dirty_from(&self) -> Option<BucketIndex> {
        (self.dirty_from != CLEAN).then_some(self.dirty_from)
    }

    /// Adds one event in bucket `bucket`, sliding its source's part of the ring forward when the
    /// bucket is newer than any that source has filled.
    pub fn apply(&mut self, bucket: BucketIndex, body: &EventBody) -> Applied {
        let source = body.source();
        let head = self.heads[source as usize];
        if head == i64::MIN || bucket > head {
            let cleared = if head == i64::MIN {
                self.capacity()
            } else {
                (bucket - head).min(self.capacity())
            };
            let columns = slots_of(source);
            for b in (bucket - cleared + 1)..=bucket {
                let slot = self.slot(b);
                self.ring[slot][columns.clone()].fill(0.0);
            }
            self.heads[source as usize] = bucket;
        } else if bucket <= head - self.capacity() {
            return Applied::Expired;
        }
        let slot = self.slot(bucket);
        apply(&mut self.ring[slot], body);
        let newly_dirty = bucket < self.dirty_from;
        if newly_dirty {
            self.dirty_from = bucket;
        }
        Applied::Updated { newly_dirty }
    }

    /// Features of bucket `bucket`; a source's features are zero outside its part of the ring.
    pub fn bucket(&self, bucket: BucketIndex) -> BucketFeatures {
        let mut out = [0.0; FEATURE_COUNT];
        for source in [Source::Sales, Source::Clicks] {
            if self.holds(source, bucket) {
                let columns = slots_of(source);
                out[columns.clone()].copy_from_slice(&self.ring[self.slot(bucket)][columns]);
            }
        }
        out
    }

    /// Writes the `len` buckets ending at `last` (oldest first), each as `features` in that
    /// order, into `out` (`len × features.len()` values).
    pub fn write_window(
        &self,
        last: BucketIndex,
        len: usize,
        features: &[Feature],
        out: &mut [f32],
    ) {
        let width = features.len();
        for (i, chunk) in out.chunks_exact_mut(width).take(len).enumerate() {
            let b = self.bucket(last - (len as i64 - 1) + i as i64);
            for (dst, f) in chunk.iter_mut().zip(features) {
                *dst = b[*f as usize];
            }
        }
    }

    /// True when nothing in the window can matter again: the newest bucket held is older than
    /// the `len` buckets ending at `closed`, and there is no unscored change.
    pub fn is_idle(&self, closed: BucketIndex, len: usize) -> bool {
        self.dirty_from == CLEAN && self.head().is_none_or(|h| h <= closed - len as i64)
    }

    /// Decides whether to score now, given the closed-bucket index `closed`, the engine clock
    /// `now_ms` and the shortest interval between two scorings within one closed bucket.
    /// On `Score` the dirty mark is cleared and the sequence number advanced.
    pub fn decide(
        &mut self,
        closed: BucketIndex,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> ScoreDecision {
        let Some(from) = self.dirty_from() else {
            return ScoreDecision::Clean;
        };
        if from > closed {
            return ScoreDecision::Clean;
        }
        if closed == self.scored_close {
            let retry_at_ms = self.last_scored_ms.saturating_add(min_interval_ms);
            if now_ms < retry_at_ms || self.revision + 1 >= (1 << REVISION_BITS) {
                return ScoreDecision::Defer {
                    retry_at_ms: retry_at_ms.max(now_ms + 1),
                };
            }
            self.revision += 1;
        } else {
            self.scored_close = closed;
            self.revision = 0;
        }
        self.last_scored_ms = now_ms;
        // Changes to still-open buckets stay pending until those buckets close.
        self.dirty_from = match self.head() {
            Some(h) if h > closed => closed + 1,
            _ => CLEAN,
        };
        ScoreDecision::Score {
            seq: ((closed.max(0) as u64) << REVISION_BITS) | u64::from(self.revision),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(qty: f64) -> EventBody {
        EventBody::Sale {
            qty,
            unit_price: Some(2.0),
        }
    }

    #[test]
    fn slides_and_clears_old_slots() {
        let mut w = SkuWindow::new(3);
        w.apply(10, &sale(1.0));
        w.apply(11, &sale(2.0));
        w.apply(14, &sale(4.0));
        assert_eq!(w.bucket(10)[0], 0.0);
        assert_eq!(w.bucket(11)[0], 0.0, "slid out of a 3-slot ring");
        assert_eq!(w.bucket(14)[0], 4.0);
        assert_eq!(w.apply(11, &sale(1.0)), Applied::Expired);
        assert_eq!(w.bucket(13)[0], 0.0);
    }

    #[test]
    fn decide_throttles_within_one_close_and_advances_seq() {
        let mut w = SkuWindow::new(4);
        w.apply(5, &sale(1.0));
        assert_eq!(
            w.decide(4, 0, 1000),
            ScoreDecision::Clean,
            "bucket 5 still open"
        );
        let ScoreDecision::Score { seq: s1 } = w.decide(5, 0, 1000) else {
            panic!("bucket 5 closed: must score")
        };
        w.apply(5, &sale(1.0));
        assert!(matches!(
            w.decide(5, 10, 1000),
            ScoreDecision::Defer { retry_at_ms: 1000 }
        ));
        let ScoreDecision::Score { seq: s2 } = w.decide(5, 1000, 1000) else {
            panic!("interval passed: must score")
        };
        w.apply(6, &sale(1.0));
        let ScoreDecision::Score { seq: s3 } = w.decide(6, 1001, 1000) else {
            panic!("new close: must score at once")
        };
        assert!(s1 < s2 && s2 < s3);
        assert_eq!(w.decide(6, 5000, 1000), ScoreDecision::Clean);
    }
}

#[cfg(test)]
mod size {
    /// `docs/ARCHITECTURE.md` quotes these sizes; keep them true.
    #[test]
    fn documented_sizes() {
        assert_eq!(std::mem::size_of::<super::SkuWindow>(), 64);
        assert_eq!(std::mem::size_of::<super::BucketFeatures>(), 24);
    }
}
