//! The offset guard: every input message is read once, whatever batch boundaries the broker keeps.
//!
//! A consumer fetches from its position. After a pause and resume, a restart from committed
//! offsets, or a checkpoint restore, that position is usually inside one of the broker's record
//! batches. Apache Kafka answers such a fetch with the whole batch, and the client drops the
//! messages before the position. Tansu 0.6.0 does not:
//! - inside any batch but the last, it answers with the **next** batch. The rest of the current
//!   batch is skipped without an error;
//! - inside the last batch, it answers with **nothing**. The partition never moves again.
//!
//! Both were measured with two 1,000-message batches (`tests/mid_batch.rs`, docs/RELIABILITY.md).
//! The guard keeps the offset each input partition should deliver next and turns both cases
//! into a rewind:
//! - a **gap** (a message past the expected offset) is not applied. The partition is seeked
//!   back by a step that grows eightfold per try, so some seek lands at or before the batch's
//!   first offset. The broker then sends the whole batch again, and the messages already read
//!   come back as duplicates and are dropped;
//! - a **stall** gets the same rewind: nothing came for [`STALL_AFTER`] while the partition was
//!   not paused, and the broker's high watermark is not the expected offset. Past it, messages
//!   are waiting. Below it, the broker is Tansu: its high watermark is the last batch's first
//!   offset + 1 (measured: 1,001 for two 1,000-message batches), so the consumer may sit inside
//!   that batch. Once a stall rewind has brought back duplicates and then nothing, the partition
//!   is at its true end, and it is left alone until the high watermark moves.
//!
//! Apache Kafka has real gaps too: transaction markers, and records removed by retention. A gap
//! is accepted once a rewind has brought back a duplicate, since the broker has then sent that
//! stretch of the log whole. It is also accepted when the rewind already starts at offset 0, or
//! after [`MAX_TRIES`] tries. An accepted gap is counted and logged, never hidden.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::event::Source;

/// First rewind distance; each further try for the same gap goes eight times further back.
pub const FIRST_STEP: i64 = 64;
/// Rewinds tried for one gap before it is accepted (64 · 8⁴ = 262,144 messages back at most;
/// librdkafka's producer batches at most 10,000 by default).
pub const MAX_TRIES: u32 = 5;
/// How long a partition with messages waiting may deliver nothing before it is rewound.
pub const STALL_AFTER: Duration = Duration::from_secs(2);

/// What to do with a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next message: apply it.
    Apply,
    /// Past a gap the guard accepted as real (`missing` offsets): apply it.
    ApplyAfterGap {
        /// Offsets never delivered.
        missing: i64,
    },
    /// Already read (delivered again by a rewind): drop it.
    Duplicate,
    /// Past a gap: drop it and seek the partition to `to`.
    Rewind {
        /// Offset to seek to.
        to: i64,
    },
}

/// One rewind in progress.
#[derive(Debug, Clone, Copy)]
struct Rewind {
    step: i64,
    to: i64,
    tries: u32,
    /// A message before the expected offset came back since the seek.
    saw_duplicate: bool,
}

/// Where one input partition stands.
#[derive(Debug, Clone)]
struct Track {
    /// Offset that should be delivered next; `None` until known.
    expected: Option<i64>,
    rewind: Option<Rewind>,
    /// Last delivery, or when the guard started tracking or last rewound the partition.
    last_activity: Instant,
    /// The high watermark at which a stall rewind found the true end (nothing after the
    /// duplicates): no more stall rewinds until it moves or a message comes.
    quiet_at_high: Option<i64>,
}

/// Expected offsets and rewinds of every owned input partition.
#[derive(Debug, Default)]
pub struct OffsetGuard {
    tracks: HashMap<(Source, u16), Track>,
}

impl OffsetGuard {
    /// Starts tracking `partition` of `source`, expected to deliver `expected` next (`None` when
    /// the consumer starts where `auto.offset.reset` puts it).
    pub fn track(&mut self, source: Source, partition: u16, expected: Option<i64>) {
        let track = Track {
            expected: expected.filter(|o| *o >= 0),
            rewind: None,
            last_activity: Instant::now(),
            quiet_at_high: None,
        };
        self.tracks.insert((source, partition), track);
    }

    /// Stops tracking the given partitions (revoked).
    pub fn release(&mut self, partitions: &[u16]) {
        self.tracks.retain(|(_, p), _| !partitions.contains(p));
    }

    /// Judges a message at `offset`, delivered at `now`.
    pub fn check(&mut self, source: Source, partition: u16, offset: i64, now: Instant) -> Verdict {
        let Some(t) = self.tracks.get_mut(&(source, partition)) else {
            return Verdict::Apply;
        };
        t.last_activity = now;
        let Some(expected) = t.expected else {
            t.expected = Some(offset + 1);
            return Verdict::Apply;
        };
        if offset < expected {
            if let Some(r) = &mut t.rewind {
                r.saw_duplicate = true;
            }
            return Verdict::Duplicate;
        }
        t.quiet_at_high = None;
        if offset == expected {
            t.rewind = None;
            t.expected = Some(offset + 1);
            return Verdict::Apply;
        }
        let accept = t
            .rewind
            .is_some_and(|r| r.saw_duplicate || r.to == 0 || r.tries >= MAX_TRIES);
        if accept {
            t.rewind = None;
            t.expected = Some(offset + 1);
            return Verdict::ApplyAfterGap {
                missing: offset - expected,
            };
        }
        Verdict::Rewind {
            to: start_rewind(t, expected),
        }
    }

    /// Partitions that delivered nothing for [`STALL_AFTER`] although `high` (the broker's
    /// high watermark, `None` = unknown) is not their expected offset, skipping those `paused`;
    /// each gets a rewind. Returns `(source, partition, seek to)`.
    pub fn stalled(
        &mut self,
        high: impl Fn(Source, u16) -> Option<i64>,
        paused: impl Fn(Source, u16) -> bool,
    ) -> Vec<(Source, u16, i64)> {
        let mut out = Vec::new();
        for (&(source, partition), t) in &mut self.tracks {
            let Some(expected) = t.expected else { continue };
            if t.last_activity.elapsed() < STALL_AFTER || paused(source, partition) {
                continue;
            }
            let Some(h) = high(source, partition) else {
                continue;
            };
            if h == expected || t.quiet_at_high == Some(h) {
                continue;
            }
            if let Some(r) = t.rewind {
                if r.saw_duplicate || r.to == 0 || r.tries >= MAX_TRIES {
                    // the broker sent everything up to the expected offset, then nothing
                    t.rewind = None;
                    t.quiet_at_high = Some(h);
                    continue;
                }
            }
            out.push((source, partition, start_rewind(t, expected)));
        }
        out
    }

    /// Partitions idle for [`STALL_AFTER`] (candidates for [`Self::stalled`]), so the caller
    /// asks the broker about those only.
    pub fn idle(&self) -> Vec<(Source, u16)> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.expected.is_some() && t.last_activity.elapsed() >= STALL_AFTER)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Marks every partition active now, after a spell in which ingest itself read nothing
    /// (backpressure, a close barrier, a checkpoint): each gets [`STALL_AFTER`] to deliver again.
    pub fn touch_all(&mut self) {
        let now = Instant::now();
        for t in self.tracks.values_mut() {
            t.last_activity = now;
        }
    }

    /// Marks a partition active now (resumed: it gets [`STALL_AFTER`] to deliver).
    pub fn touch(&mut self, source: Source, partition: u16) {
        if let Some(t) = self.tracks.get_mut(&(source, partition)) {
            t.last_activity = Instant::now();
        }
    }
}

/// Starts or widens the rewind of `t`, whose next offset should be `expected`; returns the
/// offset to seek to.
fn start_rewind(t: &mut Track, expected: i64) -> i64 {
    let (step, tries) = match t.rewind {
        Some(r) => (r.step.saturating_mul(8), r.tries + 1),
        None => (FIRST_STEP, 1),
    };
    let to = expected.saturating_sub(step).max(0);
    t.rewind = Some(Rewind {
        step,
        to,
        tries,
        saw_duplicate: false,
    });
    t.last_activity = Instant::now();
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Source = Source::Sales;

    fn guard_at(expected: i64) -> OffsetGuard {
        let mut g = OffsetGuard::default();
        g.track(S, 0, Some(expected));
        g
    }

    #[test]
    fn in_order_messages_are_applied_and_repeats_dropped() {
        let mut g = guard_at(10);
        assert_eq!(g.check(S, 0, 10, Instant::now()), Verdict::Apply);
        assert_eq!(g.check(S, 0, 11, Instant::now()), Verdict::Apply);
        assert_eq!(g.check(S, 0, 5, Instant::now()), Verdict::Duplicate);
        assert_eq!(g.check(S, 0, 12, Instant::now()), Verdict::Apply);
    }

    #[test]
    fn an_unknown_start_is_learnt_from_the_first_message() {
        let mut g = OffsetGuard::default();
        g.track(S, 0, None);
        assert_eq!(g.check(S, 0, 700, Instant::now()), Verdict::Apply);
        assert_eq!(
            g.check(S, 0, 702, Instant::now()),
            Verdict::Rewind { to: 701 - 64 }
        );
    }

    #[test]
    fn a_skipped_batch_rewinds_further_until_a_duplicate_comes_back() {
        // batch [0, 1000): the consumer resumes at 500 and the broker sends [1000, ...)
        let mut g = guard_at(500);
        assert_eq!(
            g.check(S, 0, 1000, Instant::now()),
            Verdict::Rewind { to: 436 }
        );
        // the seek to 436 is inside the same batch: the next batch again
        assert_eq!(
            g.check(S, 0, 1000, Instant::now()),
            Verdict::Rewind { to: 0 }
        );
        // the seek to 0 brings the whole batch: duplicates, then the missing messages
        assert_eq!(g.check(S, 0, 0, Instant::now()), Verdict::Duplicate);
        assert_eq!(g.check(S, 0, 499, Instant::now()), Verdict::Duplicate);
        assert_eq!(g.check(S, 0, 500, Instant::now()), Verdict::Apply);
        assert_eq!(g.check(S, 0, 501, Instant::now()), Verdict::Apply);
    }

    #[test]
    fn a_real_gap_is_accepted_once_the_stretch_before_it_came_back_whole() {
        // a transaction marker at 500: the log really has no message there
        let mut g = guard_at(500);
        assert_eq!(
            g.check(S, 0, 501, Instant::now()),
            Verdict::Rewind { to: 436 }
        );
        assert_eq!(g.check(S, 0, 436, Instant::now()), Verdict::Duplicate);
        assert_eq!(
            g.check(S, 0, 501, Instant::now()),
            Verdict::ApplyAfterGap { missing: 1 }
        );
        assert_eq!(g.check(S, 0, 502, Instant::now()), Verdict::Apply);
    }

    #[test]
    fn a_gap_at_the_log_start_is_accepted_after_rewinding_to_zero() {
        // retention removed [0, 30): nothing before 30 can come back
        let mut g = guard_at(0);
        assert_eq!(g.check(S, 0, 30, Instant::now()), Verdict::Rewind { to: 0 });
        assert_eq!(
            g.check(S, 0, 30, Instant::now()),
            Verdict::ApplyAfterGap { missing: 30 }
        );
    }

    #[test]
    fn rewinds_are_bounded() {
        let mut g = guard_at(10_000_000);
        let mut rewinds = 0;
        loop {
            match g.check(S, 0, 20_000_000, Instant::now()) {
                Verdict::Rewind { .. } => rewinds += 1,
                Verdict::ApplyAfterGap { missing } => {
                    assert_eq!(missing, 10_000_000);
                    break;
                }
                v => panic!("unexpected {v:?}"),
            }
        }
        assert_eq!(rewinds, MAX_TRIES);
    }

    #[test]
    fn a_silent_partition_with_messages_waiting_is_rewound_unless_paused() {
        let mut g = guard_at(1500);
        idle_since_long_ago(&mut g);
        assert_eq!(g.idle(), vec![(S, 0)]);
        // caught up: nothing to do
        assert!(g.stalled(|_, _| Some(1500), |_, _| false).is_empty());
        // paused by alignment or backpressure: nothing to do
        assert!(g.stalled(|_, _| Some(2000), |_, _| true).is_empty());
        assert_eq!(
            g.stalled(|_, _| Some(2000), |_, _| false),
            vec![(S, 0, 1436)]
        );
        // just rewound: it has STALL_AFTER to deliver
        assert!(g.stalled(|_, _| Some(2000), |_, _| false).is_empty());
        assert_eq!(g.check(S, 0, 1436, Instant::now()), Verdict::Duplicate);
        assert_eq!(g.check(S, 0, 1500, Instant::now()), Verdict::Apply);
    }

    fn idle_since_long_ago(g: &mut OffsetGuard) {
        let long_ago = Instant::now() - STALL_AFTER * 2;
        for t in g.tracks.values_mut() {
            t.last_activity = long_ago;
        }
    }

    #[test]
    fn inside_tansus_last_batch_rewinds_widen_until_it_comes_back() {
        // batches [0, 1000) and [1000, 2000); Tansu reports high 1001; resumed at 1500
        let mut g = guard_at(1500);
        let tansu = |_, _| Some(1001);
        idle_since_long_ago(&mut g);
        assert_eq!(g.stalled(tansu, |_, _| false), vec![(S, 0, 1436)]);
        // inside the batch again: nothing comes; the next watch goes further back
        idle_since_long_ago(&mut g);
        assert_eq!(g.stalled(tansu, |_, _| false), vec![(S, 0, 988)]);
        // 988 is in the first batch: Tansu sends the second whole
        assert_eq!(g.check(S, 0, 1000, Instant::now()), Verdict::Duplicate);
        assert_eq!(g.check(S, 0, 1500, Instant::now()), Verdict::Apply);
    }

    #[test]
    fn at_tansus_true_end_one_rewind_confirms_it_and_the_guard_stays_quiet() {
        let mut g = guard_at(2000);
        let tansu = |_, _| Some(1001);
        idle_since_long_ago(&mut g);
        assert_eq!(g.stalled(tansu, |_, _| false), vec![(S, 0, 1936)]);
        idle_since_long_ago(&mut g);
        assert_eq!(g.stalled(tansu, |_, _| false), vec![(S, 0, 1488)]);
        idle_since_long_ago(&mut g);
        assert_eq!(g.stalled(tansu, |_, _| false), vec![(S, 0, 0)]);
        // the seek to 0 brings both batches back, then nothing
        assert_eq!(g.check(S, 0, 0, Instant::now()), Verdict::Duplicate);
        assert_eq!(g.check(S, 0, 1999, Instant::now()), Verdict::Duplicate);
        idle_since_long_ago(&mut g);
        assert!(g.stalled(tansu, |_, _| false).is_empty());
        idle_since_long_ago(&mut g);
        assert!(g.stalled(tansu, |_, _| false).is_empty());
        // a new batch moves the high watermark: watched again
        idle_since_long_ago(&mut g);
        assert_eq!(
            g.stalled(|_, _| Some(2001), |_, _| false),
            vec![(S, 0, 1936)]
        );
    }
}
