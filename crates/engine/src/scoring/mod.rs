//! Scoring: model manifests, ONNX Runtime sessions, batching and trend derivation.
//!
//! Data path position: ingest → window → **scoring** → publish.

pub mod manifest;
pub mod model;
pub mod scorer;
pub mod trend;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use manifest::{ManifestError, ModelManifest, ResolvedManifest};
pub use model::{BatchForecast, Model, ModelError};
pub use scorer::{flush_scorer, FlushPoint, Marker, Scorer, ScorerMsg, UpdateObserver};

/// The scorer's backlog (windows ready but not yet scored), as the scorer last published it.
/// Ingest reads it to decide backpressure; it is a control signal, so it is a handle of its own
/// rather than a value read back from telemetry (the gauge is set beside it). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ScoringBacklog {
    ready: Arc<AtomicUsize>,
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
}
