//! One SKU's sliding window: a ring of buckets plus the bookkeeping that drives re-scoring.

use serde::{Deserialize, Serialize};

use super::bucket::BucketIndex;
use super::features::{apply, slots_of, BucketFeatures, Feature, FEATURE_COUNT};
use crate::vocab::{EngineMs, EventBody, PerSource, Source};

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
    /// Score now: the window ending at bucket `at` was copied out; publish with `seq`.
    Score {
        /// The window's last bucket (the update's `as_of` is its end).
        at: BucketIndex,
        /// Per-SKU sequence number: `at << 32 | events applied`, so it grows with the state and
        /// two updates with one `seq` were made from the same window (see [`SkuWindow::seq`]).
        seq: u64,
    },
    /// Scored too recently at this bucket; try again at `retry_at`.
    Defer {
        /// Engine-clock reading after which scoring is allowed.
        retry_at: EngineMs,
    },
    /// Nothing to score: no unscored change reaches a closed bucket.
    Clean,
}

/// `dirty_from` of a window with no unscored change (a sentinel keeps the struct at 64 bytes).
const CLEAN: BucketIndex = i64::MAX;

/// One SKU's window state.
///
/// Sales and clicks arrive on different topics, so each source has its own ring head: whether an
/// event still fits depends only on its own topic's order, never on how the two interleave. Both
/// sources share the ring's slots (sales fill features 0–2, clicks 3–5).
///
/// Scoring walks forward from one bucket with data to the next: a window with changes from bucket
/// `b` on is scored at `b`, then at each later bucket that holds data, up to the newest closed
/// one, so every closed bucket with data gets its own update and a bucket without data gets none,
/// however far the closes lag behind ingest (the updates do not depend on how fast the scorer
/// is). A bucket that has slid out of the ring before it was scored is skipped: its window can no
/// longer be rebuilt. It never scores a bucket older than the last one it scored (a late change
/// is folded into the next scoring instead), so `seq` only grows.
///
/// Memory: a 64-byte struct (including the ring's pointer) plus `capacity × 24` bytes of
/// buckets (f32 × 6 features) on the heap; the map entry adds the key. With the defaults
/// (28 buckets + 2 open slots) that is 64 + 720 bytes per SKU before the key; the measured
/// resident cost per SKU is in `docs/ARCHITECTURE.md` (`cargo run --release --example state_memory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuWindow {
    /// Newest bucket index held per source (sales, clicks); `i64::MIN` when none yet.
    heads: PerSource<BucketIndex>,
    /// Oldest bucket changed since the last scoring; `CLEAN` when none.
    dirty_from: BucketIndex,
    /// Bucket of the last scoring.
    scored_close: BucketIndex,
    /// Engine-clock reading of the last scoring.
    last_scored: EngineMs,
    /// Ring of buckets; bucket `b` lives at `b mod capacity`.
    ring: Box<[BucketFeatures]>,
    /// Events applied to this window so far (saturating); the low half of `seq`.
    applied: u32,
    /// Input partition the SKU's events come from (its checkpoint is that partition's).
    partition: u16,
    /// Changed since the last checkpoint.
    unsaved: bool,
}

/// Why a decoded window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowCheckError {
    /// The ring's length is not the configured capacity.
    #[error("ring holds {found} buckets, the configuration needs {expected}")]
    Capacity {
        /// Configured ring capacity.
        expected: usize,
        /// Ring length found.
        found: usize,
    },
    /// A feature value is NaN or infinite.
    #[error("a feature value is not finite")]
    NotFinite,
    /// Bookkeeping fields are out of range.
    #[error("bookkeeping out of range: {0}")]
    Bookkeeping(&'static str),
}

impl SkuWindow {
    /// An empty window of input partition `partition`, able to hold `capacity` buckets
    /// (closed window plus open slots).
    pub fn new(capacity: usize, partition: u16) -> Self {
        Self {
            heads: PerSource::both(i64::MIN),
            dirty_from: CLEAN,
            scored_close: i64::MIN,
            last_scored: EngineMs::NEVER,
            ring: vec![[0.0; FEATURE_COUNT]; capacity.max(1)].into_boxed_slice(),
            applied: 0,
            partition,
            unsaved: true,
        }
    }

    /// Checks a window that came from outside (a checkpoint) before it is used: the ring must
    /// have `capacity` slots of finite values and the bookkeeping must be in range.
    pub fn validate(&self, capacity: usize) -> Result<(), WindowCheckError> {
        if self.ring.len() != capacity {
            return Err(WindowCheckError::Capacity {
                expected: capacity,
                found: self.ring.len(),
            });
        }
        if self.ring.iter().flatten().any(|v| !v.is_finite()) {
            return Err(WindowCheckError::NotFinite);
        }
        // Bucket indices stay far from the i64 ends, so index arithmetic cannot overflow.
        const LIMIT: i64 = 1 << 40;
        let in_range = |b: i64| b == i64::MIN || (-LIMIT..LIMIT).contains(&b);
        if !self.heads.iter().all(|h| in_range(*h)) || !in_range(self.scored_close) {
            return Err(WindowCheckError::Bookkeeping("bucket index"));
        }
        if self.dirty_from != CLEAN && !(-LIMIT..LIMIT).contains(&self.dirty_from) {
            return Err(WindowCheckError::Bookkeeping("dirty bucket"));
        }
        Ok(())
    }

    /// A window from the version-1 checkpoint layout (see `checkpoint::format::v1`).
    pub fn from_v1(
        heads: PerSource<BucketIndex>,
        dirty_from: BucketIndex,
        scored_close: BucketIndex,
        last_scored: EngineMs,
        ring: Box<[BucketFeatures]>,
        partition: u16,
    ) -> Self {
        Self {
            heads,
            dirty_from,
            scored_close,
            last_scored,
            ring,
            applied: 0,
            partition,
            unsaved: true,
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
        let h = self.heads[Source::Sales].max(self.heads[Source::Clicks]);
        (h != i64::MIN).then_some(h)
    }

    /// Newest bucket index held for `source`.
    pub fn source_head(&self, source: Source) -> Option<BucketIndex> {
        let h = self.heads[source];
        (h != i64::MIN).then_some(h)
    }

    fn holds(&self, source: Source, bucket: BucketIndex) -> bool {
        let head = self.heads[source];
        head != i64::MIN && bucket <= head && bucket > head - self.capacity()
    }

    /// Oldest bucket changed since the last scoring.
    pub fn dirty_from(&self) -> Option<BucketIndex> {
        (self.dirty_from != CLEAN).then_some(self.dirty_from)
    }

    /// The input partition this SKU's events come from.
    pub fn partition(&self) -> u16 {
        self.partition
    }

    /// Events applied so far.
    pub fn applied(&self) -> u32 {
        self.applied
    }

    /// True when the window changed since it was last checkpointed.
    pub fn unsaved(&self) -> bool {
        self.unsaved
    }

    /// Marks the window as saved in a checkpoint.
    pub fn mark_saved(&mut self) {
        self.unsaved = false;
    }

    /// Readies a window read back from a checkpoint: it is saved, and the time of its last
    /// scoring is forgotten. That time is on the engine clock of the process that wrote it
    /// (milliseconds since that process started), which means nothing to this one: kept, a
    /// late change after a restart would wait until this process's clock caught up.
    pub fn mark_restored(&mut self) {
        self.unsaved = false;
        self.last_scored = EngineMs::NEVER;
    }

    /// The sequence number of an update made from this window ending at bucket `at`.
    pub fn seq(&self, at: BucketIndex) -> u64 {
        ((at.max(0) as u64) << 32) | u64::from(self.applied)
    }

    /// Adds one event in bucket `bucket`, sliding its source's part of the ring forward when the
    /// bucket is newer than any that source has filled.
    pub fn apply(&mut self, bucket: BucketIndex, body: &EventBody) -> Applied {
        let source = body.source();
        let head = self.heads[source];
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
            self.heads[source] = bucket;
        } else if bucket <= head - self.capacity() {
            return Applied::Expired;
        }
        let slot = self.slot(bucket);
        apply(&mut self.ring[slot], body);
        self.applied = self.applied.saturating_add(1);
        self.unsaved = true;
        let newly_dirty = bucket < self.dirty_from;
        if newly_dirty {
            self.dirty_from = bucket;
        }
        Applied::Updated { newly_dirty }
    }

    /// Features of bucket `bucket`; a source's features are zero outside its part of the ring.
    pub fn bucket(&self, bucket: BucketIndex) -> BucketFeatures {
        let mut out = [0.0; FEATURE_COUNT];
        for source in Source::ALL {
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

    /// True when nothing in the window can matter again: there is no unscored change and each
    /// source's newest bucket is older than the `len` buckets ending at `closed(source)`, the
    /// newest closed bucket of the SKU's own input partition of that source.
    pub fn is_idle(&self, len: usize, closed: impl Fn(Source) -> Option<BucketIndex>) -> bool {
        self.dirty_from == CLEAN
            && Source::ALL
                .into_iter()
                .all(|s| match (self.source_head(s), closed(s)) {
                    (None, _) => true,
                    (Some(h), Some(c)) => h <= c - len as i64,
                    (Some(_), None) => false,
                })
    }

    /// Decides whether to score now, given the closed-bucket index `closed`, the engine clock's
    /// reading `now` and the shortest interval between two scorings of one bucket. `force` ignores
    /// that interval (used before a checkpoint). On `Score` the dirty mark moves past the scored
    /// bucket.
    pub fn decide(
        &mut self,
        closed: BucketIndex,
        now: EngineMs,
        min_interval_ms: i64,
        force: bool,
    ) -> ScoreDecision {
        let Some(from) = self.dirty_from() else {
            return ScoreDecision::Clean;
        };
        if from > closed {
            return ScoreDecision::Clean;
        }
        let mut at = from.max(self.scored_close);
        if at == self.scored_close {
            match self.next_with_data(at).filter(|next| *next <= closed) {
                // a late change to an older bucket rides along with the next bucket's scoring
                Some(next) => at = next,
                None => {
                    let retry_at = self.last_scored.after(min_interval_ms);
                    if !force && now < retry_at {
                        return ScoreDecision::Defer {
                            retry_at: retry_at.max(now.after(1)),
                        };
                    }
                }
            }
        } else if !self.held(at) {
            // ingest ran so far ahead of the closes that the bucket slid out of the ring
            self.dirty_from = self.next_with_data(at).unwrap_or(CLEAN);
            return self.decide(closed, now, min_interval_ms, force);
        }
        self.scored_close = at;
        self.last_scored = now;
        // Changes to later buckets stay pending: the next scoring is at the next bucket with data.
        self.dirty_from = self.next_with_data(at).unwrap_or(CLEAN);
        ScoreDecision::Score {
            at,
            seq: self.seq(at),
        }
    }

    /// True when the ring still holds bucket `bucket` for some source.
    fn held(&self, bucket: BucketIndex) -> bool {
        Source::ALL.into_iter().any(|s| self.holds(s, bucket))
    }

    /// The first bucket after `after` that the ring holds with a non-zero feature. A bucket
    /// whose events leave every feature at zero (only zero-quantity sales) reads the same as an
    /// empty one and counts as no data.
    fn next_with_data(&self, after: BucketIndex) -> Option<BucketIndex> {
        let head = self.head()?;
        let oldest = head - self.capacity() + 1;
        (after.saturating_add(1).max(oldest)..=head)
            .find(|b| self.bucket(*b).iter().any(|v| *v != 0.0))
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
        let mut w = SkuWindow::new(3, 0);
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
    fn decide_scores_each_bucket_with_data_and_seq_only_grows() {
        let mut w = SkuWindow::new(6, 0);
        w.apply(5, &sale(1.0));
        assert_eq!(
            w.decide(4, EngineMs::from_millis(0), 1000, false),
            ScoreDecision::Clean,
            "bucket 5 still open"
        );
        let ScoreDecision::Score { at: 5, seq: s1 } =
            w.decide(5, EngineMs::from_millis(0), 1000, false)
        else {
            panic!("bucket 5 closed: must score at 5")
        };
        w.apply(5, &sale(1.0));
        assert_eq!(
            w.decide(5, EngineMs::from_millis(10), 1000, false),
            ScoreDecision::Defer {
                retry_at: EngineMs::from_millis(1000)
            }
        );
        assert!(
            matches!(
                w.decide(5, EngineMs::from_millis(10), 1000, true),
                ScoreDecision::Score { at: 5, .. }
            ),
            "force ignores the interval"
        );
        w.apply(6, &sale(1.0));
        w.apply(8, &sale(1.0));
        // closes jumped to 8: one scoring per bucket with data, 6 and 8 (7 has none)
        let mut ats = Vec::new();
        let mut last = s1;
        while let ScoreDecision::Score { at, seq } =
            w.decide(8, EngineMs::from_millis(2000), 1000, false)
        {
            assert!(seq > last, "seq grows");
            last = seq;
            ats.push(at);
        }
        assert_eq!(ats, vec![6, 8]);
        // a late change to bucket 6 is folded into a rescoring at 8, never back at 6
        w.apply(6, &sale(1.0));
        let ScoreDecision::Score { at, seq } =
            w.decide(8, EngineMs::from_millis(5000), 1000, false)
        else {
            panic!("late change must be scored")
        };
        assert_eq!(at, 8);
        assert!(seq > last);
        assert_eq!(
            w.decide(8, EngineMs::from_millis(9000), 1000, false),
            ScoreDecision::Clean
        );
    }

    #[test]
    fn a_restored_window_rescoring_waits_on_this_process_clock_only() {
        let mut w = SkuWindow::new(6, 0);
        w.apply(5, &sale(1.0));
        // scored 500 s into the process that checkpointed it
        assert!(matches!(
            w.decide(5, EngineMs::from_millis(500_000), 1000, false),
            ScoreDecision::Score { at: 5, .. }
        ));
        let mut restored = w.clone();
        restored.mark_restored();
        assert!(!restored.unsaved());
        // a late change 10 ms into the new process
        w.apply(5, &sale(1.0));
        restored.apply(5, &sale(1.0));
        assert!(
            matches!(
                w.decide(5, EngineMs::from_millis(10), 1000, false),
                ScoreDecision::Defer { .. }
            ),
            "the old clock defers it by some 500 s"
        );
        assert!(matches!(
            restored.decide(5, EngineMs::from_millis(10), 1000, false),
            ScoreDecision::Score { at: 5, .. }
        ));
    }

    #[test]
    fn decide_skips_buckets_that_slid_out_before_the_close() {
        // ingest ran far ahead of the closes: buckets 1 and 2 left the 6-slot ring unscored
        let mut w = SkuWindow::new(6, 0);
        for b in [1, 2, 17, 20] {
            w.apply(b, &sale(1.0));
        }
        let mut ats = Vec::new();
        while let ScoreDecision::Score { at, .. } =
            w.decide(30, EngineMs::from_millis(0), 1000, false)
        {
            ats.push(at);
        }
        assert_eq!(
            ats,
            vec![17, 20],
            "the ring holds 15..=20: 1 and 2 are gone"
        );
        assert_eq!(w.dirty_from(), None);
        // a later bucket with data still open stays pending
        w.apply(22, &sale(1.0));
        w.apply(25, &sale(1.0));
        assert!(matches!(
            w.decide(22, EngineMs::from_millis(5000), 1000, false),
            ScoreDecision::Score { at: 22, .. }
        ));
        assert_eq!(
            w.decide(22, EngineMs::from_millis(5000), 1000, false),
            ScoreDecision::Clean
        );
        assert_eq!(w.dirty_from(), Some(25), "next bucket with data");
    }

    #[test]
    fn validate_refuses_broken_windows() {
        let mut w = SkuWindow::new(4, 0);
        w.apply(3, &sale(1.0));
        assert!(w.validate(4).is_ok());
        assert!(matches!(
            w.validate(5),
            Err(WindowCheckError::Capacity { .. })
        ));
        let mut bad = w.clone();
        bad.ring[0][0] = f32::NAN;
        assert_eq!(bad.validate(4), Err(WindowCheckError::NotFinite));
        let mut bad = w.clone();
        bad.heads[Source::Sales] = i64::MAX - 1;
        assert!(bad.validate(4).is_err());
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
