//! Checkpoints: window state and the input offsets it reflects, so a crash, a restart or a
//! rebalance neither loses nor double-counts an event.
//!
//! Position in the data path: beside ingest → window. The ingest thread is the only writer of
//! window contents, so a checkpoint taken between two messages is a consistent cut: every SKU of
//! a partition reflects exactly the messages below the partition's next offsets.
//!
//! A checkpoint of partition `p`:
//! 1. asks the scorer to score everything closed (throttle ignored) and waits for the broker to
//!    acknowledge every update and dead letter, so nothing the state calls "scored" is lost;
//! 2. writes a [`Record::Window`] for each SKU changed since the last checkpoint (a
//!    [`Record::Removed`] for each evicted one), then a [`Record::Cut`] with the next offsets and
//!    lateness watermarks, to a local append-only log (fsynced) and to the changelog topic
//!    (partition `p`, keyed by SKU), and waits for both;
//! 3. only then commits the consumer-group offsets of the cut: committed offsets are never
//!    ahead of checkpointed state.
//!
//! Restoring folds a log: the newest record of each SKU wins; the last cut gives the offsets
//! to resume from. A SKU record written after the last cut (a checkpoint torn by a crash, or a
//! compacted changelog that kept only the newest record) carries its own cut, and ingest skips
//! that SKU's events below it: they are already applied. Records are `bincode` with a version
//! header; [`format`] keeps a decoder for every earlier version.
//!
//! Neither Kafka transactions nor log compaction are needed for correctness: without compaction
//! the changelog grows by the changed SKUs of each checkpoint and a takeover reads it whole;
//! with `cleanup.policy=compact` Kafka keeps the newest record per SKU, which bounds it.

pub mod checkpointer;
pub mod dump;
pub mod format;
pub mod marker;
pub mod restore;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::state::StateSource;
pub use checkpointer::{Checkpointer, Progress, RestoreReport};
pub use format::{CheckpointError, PartitionCut, Record, WindowRecord, FORMAT_VERSION};
pub use marker::{Completion, Marker, Passage};
pub use restore::{fold, Restored};

/// Where and how often checkpoints are written (from `[checkpoint]`).
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// Local directory of per-partition logs (`<dir>/p<N>.log`); `None` = none.
    pub dir: Option<PathBuf>,
    /// Changelog topic (same partition count as the inputs); `None` = none.
    pub changelog_topic: Option<String>,
    /// Time between periodic checkpoints, at least.
    pub interval: Duration,
    /// The interval stretches to this many times the last checkpoint's duration when that is
    /// longer, so checkpoints take at most about 1/`cost_ratio` of ingest's time; 0 keeps it
    /// fixed.
    pub cost_ratio: u32,
    /// Every this many checkpoints a partition's local log is rewritten as one full snapshot.
    pub compact_every: u32,
}

impl CheckpointSettings {
    /// True when state is checkpointed anywhere.
    pub fn enabled(&self) -> bool {
        self.dir.is_some() || self.changelog_topic.is_some()
    }
}
