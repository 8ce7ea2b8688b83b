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
use crate::ingest::EventBody;

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
    /// Largest event time applied so far (ms), or `i64::MIN`.
    watermark_ms: AtomicI64,
    /// When set, every bucket counts as closed (end of a finite replay).
    flushed: std::sync::atomic::AtomicBool,
    evicted_idle: AtomicU64,
    evicted_capacity: AtomicU64,
    /// Recent bucket closes: (closed index, producer create time of the event that closed it).
    close_triggers: Mutex<VecDeque<(BucketIndex, i64)>>,
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
            flushed: std::sync::atomic::AtomicBool::new(false),
            evicted_idle: AtomicU64::new(0),
            evicted_capacity: AtomicU64::new(0),
            close_triggers: Mutex::new(VecDeque::with_capacity(CLOSE_TRIGGERS_KEPT)),
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
    pub fn watermark_ms(&self) -> Option<i64> {
        let wm = self.watermark_ms.load(Ordering::Acquire);
        (wm != i64::MIN).then_some(wm)
    }

    /// Index of the newest closed bucket: bucket `b` is closed once the watermark has passed
    /// `end(b) + allowed_lateness`. After [`WindowStore::flush`], the newest bucket held counts
    /// as closed too.
    pub fn closed_index(&self) -> Option<BucketIndex> {
        let wm = self.watermark_ms()?;
        let spec = self.spec();
        if self.flushed.load(Ordering::Acquire) {
            return Some(spec.index_of(wm));
        }
        Some(spec.index_of(wm - self.settings.lateness_ms) - 1)
    }

    /// Closes every bucket up to the newest event (used when a finite replay has ended).
    pub fn flush(&self) {
        self.flushed.store(true, Ordering::Release);
    }

    /// Remembers that the event created (by its producer) at `created_ms` closed buckets up to
    /// `closed`; trend updates for that close carry it so their latency can be measured.
    pub fn record_close(&self, closed: BucketIndex, created_ms: i64) {
        if let Ok(mut t) = self.close_triggers.lock() {
            if t.len() == CLOSE_TRIGGERS_KEPT {
                t.pop_front();
            }
            t.push_back((closed, created_ms));
        }
    }

    /// Producer create time of the event that closed bucket `closed` (or the newest close before it).
    pub fn close_trigger(&self, closed: BucketIndex) -> Option<i64> {
        let t = self.close_triggers.lock().ok()?;
        t.iter()
            .rev()
            .find(|(c, _)| *c <= closed)
            .map(|(_, ms)| *ms)
    }

    /// Applies one validated event of `sku` at event time `ts_ms`.
    pub fn apply(&self, sku: &str, ts_ms: i64, body: &EventBody) -> StoreOutcome {
        let bucket = self.spec().index_of(ts_ms);
        self.watermark_ms.fetch_max(ts_ms, Ordering::AcqRel);
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
                let mut window = SkuWindow::new(self.capacity);
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

    /// For the scheduler: decides whether `sku` is to be scored at closed index `closed` and, if
    /// so, copies its last `window_len` closed buckets (features in `features` order) into `out`.
    /// Returns the decision and, when the SKU still has unscored open buckets, the bucket from
    /// which it should be queued again.
    pub fn prepare(
        &self,
        sku: &str,
        closed: BucketIndex,
        now_ms: i64,
        min_interval_ms: i64,
        features: &[Feature],
        out: &mut [f32],
    ) -> (ScoreDecision, Option<BucketIndex>) {
        let Some(mut window) = self.map.get_mut(sku) else {
            return (ScoreDecision::Clean, None);
        };
        let decision = window.decide(closed, now_ms, min_interval_ms);
        if let ScoreDecision::Score { .. } = decision {
            window.write_window(closed, self.settings.buckets, features, out);
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

    /// Drops SKUs whose window can no longer change a forecast. Returns how many went.
    pub fn evict_idle(&self) -> usize {
        let Some(closed) = self.closed_index() else {
            return 0;
        };
        let len = self.settings.buckets;
        let before = self.map.len();
        self.map.retain(|_, w| !w.is_idle(closed, len));
        let gone = before.saturating_sub(self.map.len());
        self.evicted_idle.fetch_add(gone as u64, Ordering::Relaxed);
        gone
    }

    /// Brings the store under 95% of `max_skus`: idle SKUs first, then the least recently
    /// active ones (oldest head bucket).
    fn evict_for_capacity(&self) {
        self.evict_idle();
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
        self.map.retain(|_, w| {
            if budget > 0 && w.head().unwrap_or(i64::MIN) <= cutoff {
                budget -= 1;
                false
            } else {
                true
            }
        });
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
