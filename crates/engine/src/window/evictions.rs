//! What the store evicted, for the two readers that must hear of it.
//!
//! The store evicts SKUs in two places: idle ones at ingest's housekeeping, and the least
//! recently active ones when a new SKU arrives at `max_skus` (inside [`super::WindowStore::apply`],
//! deep in the ingest path, where neither telemetry nor the checkpointer is at hand). Both
//! readers must still hear of every eviction:
//!
//! - the checkpointer writes a removal record per evicted SKU of its partitions, or a restart
//!   would bring the SKU back ([`EvictionLog::take_removed`]);
//! - telemetry counts evictions by reason, so an operator sees a store at its bound evicting
//!   ([`EvictionLog::take_counts`]).
//!
//! So evictions are noted here, and each reader takes what is new when it runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// SKUs evicted since telemetry last asked, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvictionCounts {
    /// Evicted as idle.
    pub idle: u64,
    /// Evicted because the store was full.
    pub capacity: u64,
}

/// Evictions not yet taken by the checkpointer or by telemetry.
#[derive(Debug, Default)]
pub struct EvictionLog {
    idle: AtomicU64,
    capacity: AtomicU64,
    /// SKUs evicted since the checkpointer last asked, with their partition.
    removed: Mutex<Vec<(Arc<str>, u16)>>,
    /// Whether evicted SKUs are remembered for a checkpointer.
    tracking_removed: AtomicBool,
}

impl EvictionLog {
    /// Notes SKUs evicted for `reason`, each with its input partition.
    pub fn note(&self, reason: EvictionReason, gone: &[(Arc<str>, u16)]) {
        let counter = match reason {
            EvictionReason::Idle => &self.idle,
            EvictionReason::Capacity => &self.capacity,
        };
        counter.fetch_add(gone.len() as u64, Ordering::Relaxed);
        if !self.tracking_removed.load(Ordering::Relaxed) {
            return;
        }
        // a poisoned lock means a thread panicked while noting: the engine is going down anyway
        if let Ok(mut r) = self.removed.lock() {
            r.extend_from_slice(gone);
        }
    }

    /// From now on, remember evicted SKUs until [`EvictionLog::take_removed`] (a checkpointer
    /// records them as removed). Offline tools never call it and keep no list.
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

    /// The evictions since the last call, by reason (one reader: telemetry).
    pub fn take_counts(&self) -> EvictionCounts {
        EvictionCounts {
            idle: self.idle.swap(0, Ordering::Relaxed),
            capacity: self.capacity.swap(0, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skus(names: &[(&str, u16)]) -> Vec<(Arc<str>, u16)> {
        names.iter().map(|(s, p)| (Arc::from(*s), *p)).collect()
    }

    #[test]
    fn counts_are_taken_once_by_reason() {
        let log = EvictionLog::default();
        log.note(EvictionReason::Idle, &skus(&[("a", 0), ("b", 1)]));
        log.note(EvictionReason::Capacity, &skus(&[("c", 0)]));
        assert_eq!(
            log.take_counts(),
            EvictionCounts {
                idle: 2,
                capacity: 1
            }
        );
        assert_eq!(log.take_counts(), EvictionCounts::default());
    }

    #[test]
    fn removals_are_kept_only_when_tracked_and_taken_per_partition() {
        let log = EvictionLog::default();
        log.note(EvictionReason::Idle, &skus(&[("early", 0)]));
        log.track_removed();
        log.note(EvictionReason::Capacity, &skus(&[("a", 0), ("b", 1)]));
        let taken = log.take_removed(&[1]);
        assert_eq!(taken, skus(&[("b", 1)]));
        assert_eq!(
            log.take_removed(&[0, 1]),
            skus(&[("a", 0)]),
            "not before tracking"
        );
        assert!(log.take_removed(&[0, 1]).is_empty());
    }
}
