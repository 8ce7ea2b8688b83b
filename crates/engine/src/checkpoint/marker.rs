//! A checkpoint in flight: its marker travels through the scorer, and the ingest loop finishes
//! the checkpoint when the marker comes back.
//!
//! Why a marker and not a wait: a checkpoint may save only state whose updates are with the
//! broker, so the scorer must first score every closed window queued before it. Sent as a
//! message behind that work, the marker comes back when the scorer reaches it; meanwhile the
//! ingest loop goes on turning, holding its input as under backpressure, so it keeps polling the
//! consumer (the group session, rebalances, the stop flag) instead of sitting in a blocking
//! call. Then the rest of the barrier runs once, in [`Checkpointer::complete`]: flush the
//! producer, write the records, hand back the offsets to commit.
//!
//! The state written must be the state at the marker. [`CutMark`] notes where ingest stood when
//! the marker left; if anything moved meanwhile (a message the consumer's main queue delivered
//! while input was held, a partition assigned and restored), the scorer has not caught up with
//! it, so a new marker is sent instead of writing, within the same patience.
//!
//! Checkpoints at a revocation or at shutdown cannot wait for later turns of a loop: they use
//! the same marker and the same completion, waiting in place ([`Checkpointer::checkpoint`]).
//!
//! [`Checkpointer::complete`]: super::Checkpointer::complete
//! [`Checkpointer::checkpoint`]: super::Checkpointer::checkpoint

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::vocab::PerSource;
use crate::window::BucketIndex;

/// Where ingest stood: each owned partition's next offsets, and the last closed bucket. Two
/// equal marks mean no message was applied and no bucket closed in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutMark {
    /// `(partition, next offsets)`, by partition.
    pub next: Vec<(u16, PerSource<i64>)>,
    /// The last closed bucket, if any.
    pub closed: Option<BucketIndex>,
}

/// How far a marker has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// Still behind scoring work.
    Waiting,
    /// The scorer reached it: everything queued before it is with the producer.
    Passed,
    /// Out of patience, or the scorer is gone: the checkpoint is skipped.
    Lost,
}

/// A checkpoint begun: the marker sent, the partitions it covers and where ingest stood.
#[derive(Debug)]
pub struct Marker {
    answer: Receiver<()>,
    /// The partitions to checkpoint.
    pub(super) partitions: Vec<u16>,
    /// When the checkpoint began (its first marker).
    pub(super) started: Instant,
    /// When it gives up.
    pub(super) deadline: Instant,
    /// Where ingest stood when this marker left.
    pub(super) at: CutMark,
}

impl Marker {
    pub(super) fn new(
        answer: Receiver<()>,
        partitions: Vec<u16>,
        started: Instant,
        deadline: Instant,
        at: CutMark,
    ) -> Self {
        Self {
            answer,
            partitions,
            started,
            deadline,
            at,
        }
    }

    /// Waits at most `timeout` (and never past the deadline) for the scorer to reach the marker.
    pub fn wait(&self, timeout: Duration) -> Passage {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.answer.recv_timeout(timeout.min(left)) {
            Ok(()) => Passage::Passed,
            Err(RecvTimeoutError::Timeout) if Instant::now() < self.deadline => Passage::Waiting,
            Err(_) => Passage::Lost,
        }
    }

    /// Time left before the checkpoint gives up.
    pub fn patience_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// When the checkpoint began.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// What [`Checkpointer::complete`](super::Checkpointer::complete) did with a marker that passed.
#[derive(Debug)]
pub enum Completion {
    /// Written: the offsets to commit, `(partition, next offsets)`; empty when nothing could be
    /// written.
    Written(Vec<(u16, PerSource<i64>)>),
    /// Ingest's state moved after the marker left: a new marker is on its way.
    Again(Marker),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn mark() -> CutMark {
        CutMark {
            next: vec![(0, PerSource::both(5))],
            closed: None,
        }
    }

    #[test]
    fn a_marker_passes_when_the_scorer_answers() {
        let (tx, rx) = sync_channel(1);
        let now = Instant::now();
        let m = Marker::new(rx, vec![0], now, now + Duration::from_secs(5), mark());
        assert_eq!(m.wait(Duration::ZERO), Passage::Waiting);
        tx.send(()).unwrap();
        assert_eq!(m.wait(Duration::ZERO), Passage::Passed);
    }

    #[test]
    fn a_marker_is_lost_past_its_deadline_or_without_a_scorer() {
        let (tx, rx) = sync_channel::<()>(1);
        let now = Instant::now();
        let late = Marker::new(rx, vec![0], now, now, mark());
        assert_eq!(late.wait(Duration::from_millis(1)), Passage::Lost);
        drop(tx);
        let (tx, rx) = sync_channel::<()>(1);
        drop(tx);
        let orphan = Marker::new(rx, vec![0], now, now + Duration::from_secs(5), mark());
        assert_eq!(orphan.wait(Duration::from_millis(1)), Passage::Lost);
    }
}
