//! All SKU windows: a sharded concurrent map, with the clock that closes their buckets.
//!
//! Ingest threads write through [`WindowStore::apply`]; the scorer reads through
//! [`WindowStore::prepare`]. Each call locks one shard of the `dashmap` for a few hundred
//! nanoseconds, so writers and the scorer rarely meet. The store owns the map and the
//! decisions taken on it (admit, score, evict, restore, release); what happens around those
//! lives beside it: when buckets close (`clock`), which event closed them (`closes`) and who
//! must hear of an eviction (`evictions`).

use std::sync::Arc;

use dashmap::DashMap;

use super::bucket::{BucketIndex, BucketSpec};
use super::clock::EventClock;
use super::closes::CloseTriggers;
use super::evictions::{EvictionLog, EvictionReason};
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

/// Sharded per-SKU window state, with the clock that closes its buckets.
#[derive(Debug)]
pub struct WindowStore {
    map: DashMap<Arc<str>, SkuWindow>,
    settings: WindowSettings,
    capacity: usize,
    clock: EventClock,
    closes: CloseTriggers,
    evictions: EvictionLog,
}

impl WindowStore {
    /// An empty store.
    pub fn new(settings: WindowSettings) -> Self {
        let map = if settings.shards > 0 {
            DashMap::with_shard_amount(settings.shards)
        } else {
            DashMap::new()
        };
        let capacity = settings.ring_capacity();
        let clock = EventClock::new(settings.bucket, settings.lateness_ms);
        Self {
            map,
            settings,
            capacity,
            clock,
            closes: CloseTriggers::default(),
            evictions: EvictionLog::default(),
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

    /// The event-time clock: which buckets have closed.
    pub fn clock(&self) -> &EventClock {
        &self.clock
    }

    /// Which event closed each bucket (for the latency header).
    pub fn closes(&self) -> &CloseTriggers {
        &self.closes
    }

    /// Evictions not yet taken by the checkpointer or telemetry.
    pub fn evictions(&self) -> &EvictionLog {
        &self.evictions
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
        self.clock.advance_watermark(ts);
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

    /// The input partition of `sku`, when the store holds it.
    pub fn partition_of(&self, sku: &str) -> Option<u16> {
        self.map.get(sku).map(|w| w.partition())
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

    /// Drops SKUs whose window can no longer change a forecast, judged against the largest event
    /// time of their own input partition per source (`partition_wm(source, partition)`), so the
    /// decision never depends on how fast other partitions are read. Returns how many went (they
    /// are noted in [`WindowStore::evictions`] for the checkpointer and telemetry).
    pub fn evict_idle_by(
        &self,
        partition_wm: impl Fn(crate::vocab::Source, u16) -> Option<EventTime>,
    ) -> usize {
        let len = self.settings.buckets;
        let mut gone = Vec::new();
        self.map.retain(|k, w| {
            let p = w.partition();
            let idle = w.is_idle(len, |s| {
                partition_wm(s, p).map(|wm| self.clock.closed_for(wm))
            });
            if idle {
                gone.push((k.clone(), p));
            }
            !idle
        });
        self.evictions.note(EvictionReason::Idle, &gone);
        gone.len()
    }

    /// Drops SKUs idle against the engine-wide watermark (offline tools, where every source is
    /// one partition). Returns how many went.
    pub fn evict_idle(&self) -> usize {
        let Some(wm) = self.clock.watermark() else {
            return 0;
        };
        self.evict_idle_by(|_, _| Some(wm))
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
            self.clock.advance_watermark(wm);
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
        self.evictions.note(EvictionReason::Capacity, &gone);
    }
}
