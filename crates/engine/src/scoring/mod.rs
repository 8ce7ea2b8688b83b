//! Scoring: model manifests, ONNX Runtime sessions, batching and trend derivation.
//!
//! Data path position: ingest → window → **scoring** → publish.

pub mod calibration;
pub mod distribution;
pub mod manifest;
pub mod model;
pub mod online;
pub mod scorer;
pub mod trend;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::window::BucketIndex;

pub use manifest::{ManifestError, ModelManifest, ResolvedManifest};
pub use model::{BatchForecast, Model, ModelError};
pub use scorer::{flush_scorer, send_marker, FlushPoint, Scorer, ScorerMsg, UpdateObserver};

/// The scorer's backlog (windows ready but not yet scored), as the scorer last published it,
/// and the windows its rescore throttle holds back. Ingest reads it to decide backpressure and
/// when a checkpoint starts; it is a control signal, so it is a handle of its own rather than a
/// value read back from telemetry (the gauge is set beside it). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ScoringBacklog {
    ready: Arc<AtomicUsize>,
    throttled: Arc<AtomicUsize>,
    /// The newest close whose windows the backlog includes ([`NO_CLOSE`] before the first).
    collected_close: Arc<AtomicI64>,
}

/// `collected_close` before the scorer has seen any close.
const NO_CLOSE: i64 = i64::MIN;

impl Default for ScoringBacklog {
    fn default() -> Self {
        Self {
            ready: Arc::default(),
            throttled: Arc::default(),
            collected_close: Arc::new(AtomicI64::new(NO_CLOSE)),
        }
    }
}

impl ScoringBacklog {
    /// Publishes the backlog (by the scorer).
    pub fn set(&self, windows: usize) {
        self.ready.store(windows, Ordering::Relaxed);
    }

    /// The latest published backlog.
    pub fn get(&self) -> usize {
        self.ready.load(Ordering::Relaxed)
    }

    /// Publishes how many windows wait for their rescore throttle (by the scorer).
    pub fn set_throttled(&self, windows: usize) {
        self.throttled.store(windows, Ordering::Relaxed);
    }

    /// Windows waiting for their rescore throttle: no work for the scorer yet, but a checkpoint
    /// scores them all before it is written.
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Publishes the newest close the backlog just published includes (by the scorer, after
    /// [`ScoringBacklog::set`] and [`ScoringBacklog::set_throttled`], so that a reader who sees
    /// this close sees those counts too).
    pub fn set_collected_close(&self, close: Option<BucketIndex>) {
        let index = close.unwrap_or(NO_CLOSE);
        self.collected_close.store(index, Ordering::Release);
    }

    /// The scorer's work as last published, judged against bucket `closed`, the store's newest
    /// close. The close is read first (acquire), so the counts are at least as new as it.
    pub fn work(&self, closed: Option<BucketIndex>) -> ScoringWork {
        let collected = self.collected_close.load(Ordering::Acquire);
        ScoringWork {
            ready: self.get(),
            throttled: self.throttled(),
            close_uncounted: closed.is_some_and(|c| c > collected),
        }
    }
}

/// What the scorer still has to do, as ingest reads it before a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScoringWork {
    /// Windows ready and waiting to be scored.
    pub ready: usize,
    /// Windows held back by the rescore throttle, which a checkpoint scores before it is
    /// written.
    pub throttled: usize,
    /// A bucket has closed whose windows the published counts do not include yet: a close's
    /// windows can be most of the SKUs held, so the counts understate the work by all of them.
    pub close_uncounted: bool,
}

/// Which ONNX Runtime execution provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionProviderKind {
    /// The CPU provider (always available).
    Cpu,
    /// CUDA (needs the `cuda` cargo feature and onnxruntime-gpu); falls back to CPU.
    Cuda,
}

/// Scoring settings (from `[scoring]`).
#[derive(Debug, Clone)]
pub struct ScoringSettings {
    /// Manifest path.
    pub manifest: PathBuf,
    /// ONNX Runtime library path, if configured (else `ORT_DYLIB_PATH`).
    pub onnxruntime_library: Option<PathBuf>,
    /// Execution provider.
    pub provider: ExecutionProviderKind,
    /// Largest batch.
    pub batch_size: usize,
    /// Longest wait before a partial batch is scored.
    pub batch_delay: Duration,
    /// Shortest interval between scorings of one SKU within one closed bucket.
    pub min_rescore_interval: Duration,
    /// ONNX Runtime intra-op threads.
    pub intra_threads: usize,
    /// The online interval calibration (`[scoring.calibration]`).
    pub online: calibration::OnlineSettings,
    /// Lead time whose total each update also carries (the restock policy's, when the signals
    /// component runs).
    pub lead_time: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_counts_as_uncounted_until_the_scorer_publishes_it() {
        let backlog = ScoringBacklog::default();
        assert!(!backlog.work(None).close_uncounted);
        assert!(backlog.work(Some(3)).close_uncounted);
        backlog.set(500_000);
        backlog.set_throttled(7);
        backlog.set_collected_close(Some(3));
        let work = backlog.work(Some(3));
        assert_eq!((work.ready, work.throttled), (500_000, 7));
        assert!(!work.close_uncounted);
        assert!(backlog.work(Some(4)).close_uncounted);
    }
}
