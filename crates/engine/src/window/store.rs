//! All SKU windows: a sharded concurrent map plus the engine's event-time watermark.
//!
//! Ingest threads write through [`WindowStore::apply`]; the scorer reads through
//! [`WindowStore::prepare`]. Each call locks one shard of the `dashmap` for a few hundred
//! nanoseconds, so writers and the scorer rarely meet.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use super::bucket::{BucketIndex, BucketSpec};
use super::features::Feature;
use super::sku_window::{Applied, ScoreDecision, SkuWindow};
use super::WindowSettings;
use crate::vocab::{EngineMs, EventBody, EventTime};

/// Outcome of offering one event to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Applied. `notify` holds the SKU (the map's own shared key, no new allocation) and the
    /// bucket from which it awaits scoring, when the scheduler must (re-)queue it.
    Applied {
        /// `Some((sku, bucket))` when the scheduler has to be told.
        notify: Option<(Arc<str>, BucketIndex)>,
    },
    /// Its bucket has already left the SKU's ring.
    Expired,
    /// A new SKU arrived while the store is full and nothing could be evicted.
    Full,
}

/// Why SKUs were evicted (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionReason {
    /// The whole window lies before the closed window: all zeros from now on.
    Idle,
    /// The store reached `max_skus`; the least recently active SKUs went.
    Capacity,
}

impl EvictionReason {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionReason::Idle => "idle",
            EvictionReason::Capacity => "capacity",
        }
    }
}

/// Sharded per-SKU window state and the event-time watermark.
#[derive(Debug)]
pub struct WindowStore {
    map: DashMap<Arc<str>, SkuWindow>,
    settings: WindowSettings,
    capacity: usize,
    /// Largest event time applied so far (its millis), or `i64::MIN`.
    watermark_ms: AtomicI64,
    /// Event-time frontier set by ingest: the smallest event time of the input partitions still
    /// being read (its millis), never decreasing; `i64::MIN` until set (then the watermark is
    /// used).
    frontier_ms: AtomicI64,
    /// Set when ingest manages the frontier: until it sets one, nothing is closed.
    frontier_managed: std::sync::atomic::AtomicBool,
    /// When set, every bucket counts as closed (end of a finite replay).
    flushed: std::sync::atomic::AtomicBool,
    evicted_idle: AtomicU64,
    evicted_capacity: AtomicU64,
    /// Recent bucket closes, oldest first: (newest bucket closed, producer create time of the
    /// event that closed it; none for a close no event brought about).
    close_triggers: Mutex<VecDeque<(BucketIndex, Option<i64>)>>,
    /// SKUs evicted since the checkpointer last asked, with their partition.
    removed: Mutex<Vec<(Arc<str>, u16)>>,
    /// Whether evictions are remembered for a checkpointer.
    tracking_removed: std::sync::atomic::AtomicBool,
}

/// Closes remembered for latency measurement.
const CLOSE_TRIGGERS_KEPT: usize = 256;

impl WindowStore {
    /// An empty store.
    pub fn new(settings: WindowSettings) -> Self {
        let map = if settings.shards > 0 {
            DashMap::with_shard_amount(settings.shards)
        } else {
            DashMap::new()
        };
        let capacity = settings.ring_capacity();
        Self {
            map,
            settings,
            capacity,
            watermark_ms: AtomicI64::new(i64::MIN),
            frontier_ms: AtomicI64::new(i64::MIN),
            frontier_managed: std::sync::atomic::AtomicBool::new(false),
            flushed: std::sync::atomic::AtomicBool::new(false),
            evicted_idle: AtomicU64::new(0),
            evicted_capacity: AtomicU64::new(0),
            close_triggers: Mutex::new(VecDeque::with_capacity(CLOSE_TRIGGERS_KEPT)),
            removed: Mutex::new(Vec::new()),
            tracking_removed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The settings this store was built with.
    pub fn settings(&self) -> &WindowSettings {
        &self.settings
    }

    /// Bucket geometry.
    pub fn spec(&self) -> BucketSpec {
        self.settings.bucket
    }

    /// Number of SKUs held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no SKU is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Largest event time applied, if any.
    pub fn watermark(&self) -> Option<EventTime> {
        let wm = self.watermark_ms.load(Ordering::Acquire);
        (wm != i64::MIN).then_some(EventTime::from_millis(wm))
    }

    /// Index of the newest closed bucket: bucket `b` is closed once the watermark has passed
    /// `end(b) + allowed_lateness`. After [`WindowStore::flush`], the newest bucket held counts
    /// as closed too.
    pub fn closed_index(&self) -> Option<BucketIndex> {
        let wm = self.watermark()?;
        let spec = self.spec();
        if self.flushed.load(Ordering::Acquire) {
            return Some(spec.index_of(wm));
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

    /// From now on buckets close by the frontier ingest sets, not by the newest event time.
    pub fn manage_frontier(&self) {
        self.frontier_managed.store(true, Ordering::Release);
    }

    /// Raises the event-time frontier (see [`WindowStore::closed_index`]); ingest keeps it at the
    /// smallest event time of the input partitions that still have messages to read, so a bucket
    /// closes only once every such partition has passed it.
    pub fn raise_frontier(&self, to: EventTime) {
        self.frontier_ms.fetch_max(to.millis(), Ordering::AcqRel);
    }

    /// The frontier, when ingest has set one.
    pub fn frontier(&self) -> Option<EventTime> {
        let f = self.frontier_ms.load(Ordering::Acquire);
        (f != i64::MIN).then_some(EventTime::from_millis(f))
    }

    /// Closes every bucket up to the newest event (used when a finite replay has ended).
    pub fn flush(&self) {
        self.flushed.store(true, Ordering::Release);
    }

    /// Remembers that the event created (by its producer) at `created_ms` closed every bucket
    /// after the previous close up to `closed`; trend updates for those buckets carry it so their
    /// latency can be measured. `None` records a close no event brought about.
    pub fn record_close(&self, closed: BucketIndex, created_ms: Option<i64>) {
        if let Ok(mut t) = self.close_triggers.lock() {
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
    pub fn close_trigger(&self, bucket: BucketIndex) -> Option<i64> {
        let t = self.close_triggers.lock().ok()?;
        let i = t.iter().position(|(c, _)| *c >= bucket)?;
        if i == 0 && t.len() == CLOSE_TRIGGERS_KEPT {
            return None; // the close that reached it may have been dropped
        }
        t[i].1
    }

    /// Raises the event-time watermark to `ts` (no-op when it is already past it).
    pub fn advance_watermark(&self, ts: EventTime) {
        self.watermark_ms.fetch_max(ts.millis(), Ordering::AcqRel);
    }

    /// Applies one validated event of `sku`, read from input partition `partition`, at event
    /// time `ts`.
    pub fn apply(
        &self,
        sku: &str,
        partition: u16,
        ts: EventTime,
        body: &EventBody,
    ) -> StoreOutcome {
        let bucket = self.spec().index_of(ts);
        self.advance_watermark(ts);
        let (key, applied) = match self.map.get_mut(sku) {
            Some(mut window) => {
                let applied = window.apply(bucket, body);
                let key = matches!(applied, Applied::Updated { newly_dirty: true })
                    .then(|| window.key().clone());
                (key, applied)
            }
            None => {
                if self.map.len() >= self.settings.max_skus {
                    self.evict_for_capacity();
                    if self.map.len() >= self.settings.max_skus {
                        return StoreOutcome::Full;
                    }
                }
                let mut window = SkuWindow::new(self.capacity, partition);
                let applied = window.apply(bucket, body);
                let key: Arc<str> = Arc::from(sku);
                self.map.insert(key.clone(), window);
                (Some(key), applied)
            }
        };
        match (applied, key) {
            (Applied::Expired, _) => StoreOutcome::Expired,
            (Applied::Updated { newly_dirty: true }, Some(key)) => StoreOutcome::Applied {
                notify: Some((key, bucket)),
            },
            (Applied::Updated { .. }, _) => StoreOutcome::Applied { notify: None },
        }
    }

    /// For the scheduler: decides whether `sku` is to be scored (closed index `closed`; `force`
    /// ignores the rescoring interval) and, if so, copies the `window_len` buckets ending at the
    /// scored bucket (features in `features` order) into `out`. Returns the decision and, when
    /// the SKU still has unscored buckets, the bucket from which it should be queued again.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        &self,
        sku: &str,
        closed: BucketIndex,
        now: EngineMs,
        min_interval_ms: i64,
        force: bool,
        features: &[Feature],
        out: &mut [f32],
    ) -> (ScoreDecision, Option<BucketIndex>) {
        let Some(mut window) = self.map.get_mut(sku) else {
            return (ScoreDecision::Clean, None);
        };
        let decision = window.decide(closed, now, min_interval_ms, force);
        if let ScoreDecision::Score { at, .. } = decision {
            window.write_window(at, self.settings.buckets, features, out);
        }
        (decision, window.dirty_from())
    }

    /// Copies the last `window_len` buckets ending at `last` of `sku` (features in `features`
    /// order) into `out` without changing any state. False when the SKU is not held.
    pub fn write_window(
        &self,
        sku: &str,
        last: BucketIndex,
        features: &[Feature],
        out: &mut [f32],
    ) -> bool {
        match self.map.get(sku) {
            Some(w) => {
                w.write_window(last, self.settings.buckets, features, out);
                true
            }
            None => false,
        }
    }

    /// A copy of one SKU's window.
    pub fn get(&self, sku: &str) -> Option<SkuWindow> {
        self.map.get(sku).map(|w| w.clone())
    }

    /// Every SKU and its window, sorted by SKU (for debugging dumps and equivalence tests).
    pub fn snapshot(&self) -> Vec<(Arc<str>, SkuWindow)> {
        let mut all: Vec<_> = self
            .map
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Newest closed bucket of one input partition whose largest event time is `wm`.
    pub fn closed_for(&self, wm: EventTime) -> BucketIndex {
        self.spec().index_of(wm.minus_ms(self.settings.lateness_ms)) - 1
    }

    /// Drops SKUs whose window can no longer change a forecast, judged against the largest event
    /// time of their own input partition per source (`partition_wm(source, partition)`), so the
    /// decision never depends on how fast other partitions are read. Returns the SKUs that went
    /// (a checkpoint records them as removed).
    pub fn evict_idle_by(
        &self,
        partition_wm: impl Fn(crate::vocab::Source, u16) -> Option<EventTime>,
    ) -> Vec<(Arc<str>, u16)> {
        let len = self.settings.buckets;
        let mut gone = Vec::new();
        self.map.retain(|k, w| {
            let p = w.partition();
            let idle = w.is_idle(len, |s| partition_wm(s, p).map(|wm| self.closed_for(wm)));
            if idle {
                gone.push((k.clone(), p));
            }
            !idle
        });
        self.evicted_idle
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
        self.note_removed(&gone);
        gone
    }

    fn note_removed(&self, gone: &[(Arc<str>, u16)]) {
        if !self.tracking_removed.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut r) = self.removed.lock() {
            r.extend_from_slice(gone);
        }
    }

    /// From now on, remember evicted SKUs until [`WindowStore::take_removed`] (a checkpointer
    /// records them as removed).
    pub fn track_removed(&self) {
        self.tracking_removed.store(true, Ordering::Relaxed);
    }

    /// Takes the SKUs of `partitions` evicted since the last call.
    pub fn take_removed(&self, partitions: &[u16]) -> Vec<(Arc<str>, u16)> {
        let Ok(mut r) = self.removed.lock() else {
            return Vec::new();
        };
        let (taken, kept) = r.drain(..).partition(|(_, p)| partitions.contains(p));
        *r = kept;
        taken
    }

    /// Drops SKUs idle against the engine-wide watermark (offline tools, where every source is
    /// one partition). Returns how many went.
    pub fn evict_idle(&self) -> usize {
        let Some(wm) = self.watermark() else {
            return 0;
        };
        self.evict_idle_by(|_, _| Some(wm)).len()
    }

    /// Visits every SKU of `partitions` that changed since its last checkpoint (all of them
    /// when `all`), marking each as saved.
    pub fn drain_unsaved(
        &self,
        partitions: &[u16],
        all: bool,
        mut visit: impl FnMut(&Arc<str>, &SkuWindow),
    ) {
        for mut e in self.map.iter_mut() {
            if partitions.contains(&e.value().partition()) && (all || e.value().unsaved()) {
                let (k, w) = e.pair_mut();
                visit(k, w);
                w.mark_saved();
            }
        }
    }

    /// Puts restored windows in place (replacing any held) and raises the watermark to
    /// `watermark_ms`. Returns the SKUs with unscored changes and the bucket they are dirty from.
    pub fn restore(
        &self,
        windows: Vec<(String, SkuWindow)>,
        watermark: Option<EventTime>,
    ) -> Vec<(Arc<str>, BucketIndex)> {
        if let Some(wm) = watermark {
            self.advance_watermark(wm);
        }
        let mut dirty = Vec::new();
        for (sku, mut w) in windows {
            w.mark_restored();
            let key: Arc<str> = Arc::from(sku);
            if let Some(from) = w.dirty_from() {
                dirty.push((key.clone(), from));
            }
            self.map.insert(key, w);
        }
        dirty
    }

    /// Drops every SKU of `partitions` (their partitions were revoked). Returns how many went.
    pub fn release(&self, partitions: &[u16]) -> usize {
        let before = self.map.len();
        self.map.retain(|_, w| !partitions.contains(&w.partition()));
        before.saturating_sub(self.map.len())
    }

    /// Ring slots per SKU (what a restored window must have).
    pub fn ring_capacity(&self) -> usize {
        self.capacity
    }

    /// Brings the store under 95% of `max_skus`: idle SKUs first, then the least recently
    /// active ones (oldest head bucket).
    fn evict_for_capacity(&self) {
        let target = self.settings.max_skus - self.settings.max_skus / 20 - 1;
        let len = self.map.len();
        if len <= target {
            return;
        }
        let mut heads: Vec<BucketIndex> = self
            .map
            .iter()
            .map(|e| e.value().head().unwrap_or(i64::MIN))
            .collect();
        let excess = len - target;
        heads.select_nth_unstable(excess - 1);
        let cutoff = heads[excess - 1];
        let mut budget = excess;
        let mut gone = Vec::new();
        self.map.retain(|k, w| {
            if budget > 0 && w.head().unwrap_or(i64::MIN) <= cutoff {
                budget -= 1;
                gone.push((k.clone(), w.partition()));
                false
            } else {
                true
            }
        });
        self.note_removed(&gone);
        self.evicted_capacity
            .fetch_add((excess - budget) as u64, Ordering::Relaxed);
    }

    /// SKUs evicted so far for `reason`.
    pub fn evicted(&self, reason: EvictionReason) -> u64 {
        match reason {
            EvictionReason::Idle => self.evicted_idle.load(Ordering::Relaxed),
            EvictionReason::Capacity => self.evicted_capacity.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> WindowStore {
        WindowStore::new(WindowSettings {
            bucket: BucketSpec::new(86_400_000),
            buckets: 3,
            lateness_ms: 3_600_000,
            max_skus: 10,
            shards: 0,
        })
    }

    #[test]
    fn a_bucket_takes_the_trigger_of_the_close_that_reached_it() {
        let s = store();
        s.record_close(10, Some(1_000));
        // the frontier jumped over a day without events: buckets 11 and 12 closed together
        s.record_close(12, Some(2_000));
        s.record_close(13, None);
        s.record_close(14, Some(4_000));
        assert_eq!(s.close_trigger(10), Some(1_000));
        assert_eq!(s.close_trigger(11), Some(2_000), "not the close before it");
        assert_eq!(s.close_trigger(12), Some(2_000));
        assert_eq!(s.close_trigger(13), None, "closed by no event");
        assert_eq!(s.close_trigger(14), Some(4_000));
        assert_eq!(s.close_trigger(15), None, "not closed yet");
    }

    #[test]
    fn a_close_no_longer_kept_gives_no_trigger() {
        let s = store();
        for i in 0..=CLOSE_TRIGGERS_KEPT as i64 {
            s.record_close(10 * i, Some(i));
        }
        // the close that reached bucket 1 (index 10) was dropped; index 20 is the oldest kept
        assert_eq!(s.close_trigger(1), None);
        assert_eq!(
            s.close_trigger(11),
            Some(2),
            "reached by the close kept at 20"
        );
        assert_eq!(s.close_trigger(21), Some(3));
    }
}
