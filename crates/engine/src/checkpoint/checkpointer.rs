//! The checkpointer: per-partition progress, writing checkpoints, restoring on assignment.
//!
//! It is driven by the ingest thread only (between messages, or inside its rebalance callbacks),
//! which is what makes each checkpoint a consistent cut.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{CheckpointError, PartitionCut, Record, WindowRecord};
use super::marker::{Completion, CutMark, Marker, Passage};
use super::restore::{fold, Restored};
use super::{CheckpointSettings, StateSource};
use crate::kafka::KafkaSettings;
use crate::publish::Publisher;
use crate::scoring::calibration::{CalibrationState, CalibrationTable};
use crate::scoring::{send_marker, FlushPoint, ScorerMsg, ScoringWork};
use crate::state::{ChangelogTopic, PartitionLog};
use crate::vocab::{EventTime, PerSource, Source};
use crate::window::Admission;

/// How long a checkpoint waits for the scorer and the broker.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a periodic checkpoint waits for the scorer, and then for the broker, before it is
/// skipped (and tried again at the next interval). Ingest polls while the marker is out, but not
/// while the producer is flushed and the records written, so this stays far below
/// `max.poll.interval.ms` even while the broker is unreachable.
pub const PERIODIC_PATIENCE: Duration = Duration::from_secs(5);

/// How long a checkpoint at revocation or shutdown waits for the scorer and the broker.
pub const FINAL_PATIENCE: Duration = FLUSH_TIMEOUT;

/// What the pipeline behind ingest still has to do before a checkpoint can be written: a
/// checkpoint waits (ingest reading nothing) until the scorer has scored every closed window and
/// the broker has acknowledged every update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind {
    /// What the scorer still has to do.
    pub scoring: ScoringWork,
    /// Messages waiting for the broker's acknowledgement.
    pub in_flight: usize,
}

impl Behind {
    /// Windows to score (backlog and throttled together) at or under which a due checkpoint
    /// starts at once: 16 batches of 256, tens of milliseconds of scoring.
    pub const QUIET_BACKLOG: usize = 4_096;
    /// Unacknowledged messages at or under which a due checkpoint starts at once.
    pub const QUIET_IN_FLIGHT: usize = 20_000;

    /// Little enough that a checkpoint would wait only briefly.
    pub fn is_quiet(&self) -> bool {
        let scoring = self.scoring;
        !scoring.close_uncounted
            && scoring.ready.saturating_add(scoring.throttled) <= Self::QUIET_BACKLOG
            && self.in_flight <= Self::QUIET_IN_FLIGHT
    }
}

/// What the ingest loop does about the periodic checkpoint on this turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointCall {
    /// Not due, or due and waiting for a quiet moment while ingest reads on.
    NotYet,
    /// Overdue: ingest stops reading (as under backpressure) so that the scorer and the
    /// broker catch up and the checkpoint can start.
    HoldInput,
    /// Start the checkpoint now.
    Now,
}

/// How long input is held for an overdue checkpoint before it starts anyway (and, if the
/// pipeline still has not drained in [`PERIODIC_PATIENCE`], is skipped as before).
const MAX_INPUT_HOLD: Duration = FLUSH_TIMEOUT;

/// What to do about the periodic checkpoint, `elapsed` after the last one.
///
/// Why it waits for a quiet moment: the checkpoint's barrier stops ingest until the scorer has
/// drained. With a million SKUs a daily close leaves about 545,000 windows to score (3–4 s), and
/// a checkpoint that fell due then held ingest for all of it, or gave up after
/// [`PERIODIC_PATIENCE`] with nothing saved, so ingest and scorer took turns instead of
/// working side by side (`docs/PERFORMANCE.md`). Started once the backlog has drained, the
/// barrier costs milliseconds.
///
/// A pipeline that never goes quiet on its own (the scorer the bottleneck, ingest refilling its
/// backlog) is made quiet: one interval late, input is held as under backpressure, so the
/// scorer drains while ingest keeps polling (group session, rebalances), and the checkpoint
/// starts once the backlog is small, instead of timing out mid-drain; the pause mostly overlaps
/// scoring that had to be done anyway. Only a pipeline that cannot drain at all (the broker
/// unreachable) falls back, after [`MAX_INPUT_HOLD`], to a barrier that may be skipped.
fn checkpoint_call(elapsed: Duration, interval: Duration, behind: Behind) -> CheckpointCall {
    let overdue_at = interval.saturating_mul(2);
    if elapsed < interval || (elapsed < overdue_at && !behind.is_quiet()) {
        CheckpointCall::NotYet
    } else if behind.is_quiet() || elapsed >= overdue_at.saturating_add(MAX_INPUT_HOLD) {
        CheckpointCall::Now
    } else {
        CheckpointCall::HoldInput
    }
}

/// Time from one periodic checkpoint's start to the next: `interval`, or `cost_ratio` times
/// the last checkpoint's duration when that is longer (`checkpoint.cost_ratio`, 10 by default;
/// 0 keeps the interval fixed).
///
/// Why: a checkpoint stops ingest while it writes every window changed since the last one, and
/// with a million SKUs nearly every window changes within a simulated day, so each checkpoint
/// writes about as much as a full snapshot (seconds), however often it comes. Every 5 s, that
/// cost the 1M-SKU load run about a quarter of its rate (`docs/PERFORMANCE.md`). Stretching the
/// interval with the cost bounds the share; the price is more input to read again after a crash
/// (never a lost or doubled event: the offsets committed are always those of the state saved).
/// Small state keeps `checkpoint.interval`: its checkpoints take milliseconds.
fn stretched_interval(interval: Duration, cost_ratio: u32, last_took: Duration) -> Duration {
    interval.max(last_took.saturating_mul(cost_ratio))
}

/// Where one owned partition stands.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Next offset per source (sales, clicks): one past the last message handled; -1 = none.
    pub next: PerSource<i64>,
    /// Messages below these offsets are already in the restored state and are skipped.
    pub skip_below: PerSource<i64>,
    /// Number of the last checkpoint written.
    pub checkpoint: u64,
    /// Checkpoints since the local log was last rewritten whole.
    pub since_full: u32,
    /// The local log must be rewritten whole at the next checkpoint (state came from elsewhere).
    pub needs_full: bool,
}

/// What a restore did, for logs and tests.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Partition restored.
    pub partition: u16,
    /// Where the state came from.
    pub from: StateSource,
    /// SKUs restored.
    pub skus: usize,
    /// Offsets resumed from (sales, clicks).
    pub next: PerSource<i64>,
    /// Time taken.
    pub took: Duration,
}

/// Checkpoint storage plus the progress of every owned partition.
pub struct Checkpointer {
    settings: CheckpointSettings,
    local: Option<PartitionLog>,
    changelog: Option<ChangelogTopic>,
    kafka: KafkaSettings,
    capacity: usize,
    owned: HashMap<u16, Progress>,
    /// SKUs restored ahead of their partition's cut: their events below these offsets are applied.
    skip_sku: HashMap<String, PerSource<i64>>,
    /// When the last checkpoint started.
    last: Instant,
    /// How long the last checkpoint that wrote took (ingest reading nothing meanwhile).
    last_took: Duration,
    /// The owned partitions' online interval widths, saved with their windows.
    calibration: CalibrationTable,
}

/// A file-system-safe folder name for a consumer group.
pub fn folder_name(group_id: &str) -> String {
    group_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Failures that stop ingest (storage that cannot even be opened).
pub type Result<T> = std::result::Result<T, CheckpointError>;

impl Checkpointer {
    /// Opens checkpoint storage; `capacity` is the ring size restored windows must have.
    pub fn new(
        settings: CheckpointSettings,
        kafka: KafkaSettings,
        capacity: usize,
    ) -> Result<Self> {
        // one folder per consumer group: state belongs to the group that consumed it
        let local = match &settings.dir {
            Some(d) => Some(PartitionLog::open(&d.join(folder_name(&kafka.group_id)))?),
            None => None,
        };
        let changelog = settings.changelog_topic.as_deref().map(ChangelogTopic::new);
        Ok(Self {
            settings,
            local,
            changelog,
            kafka,
            capacity,
            owned: HashMap::new(),
            skip_sku: HashMap::new(),
            last: Instant::now(),
            last_took: Duration::ZERO,
            calibration: CalibrationTable::default(),
        })
    }

    /// Saves and restores `table`'s states with the partitions' windows (the scorer's table).
    pub fn with_calibration(mut self, table: CalibrationTable) -> Self {
        self.calibration = table;
        self
    }

    /// Partitions currently owned.
    pub fn owned(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.owned.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Partitions currently owned, in no particular order (no allocation).
    pub fn owned_iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.owned.keys().copied()
    }

    /// True when `partition` has been restored and is being consumed.
    pub fn owns(&self, partition: u16) -> bool {
        self.owned.contains_key(&partition)
    }

    /// Next offsets (sales, clicks) of an owned partition; -1 when unknown.
    pub fn next_offsets(&self, partition: u16) -> PerSource<i64> {
        self.owned
            .get(&partition)
            .map_or(PerSource::both(-1), |p| p.next)
    }

    /// What to do about the periodic checkpoint now ([`checkpoint_call`]). `behind` is asked
    /// only once the interval has passed: ingest calls this on every turn of its loop.
    pub fn due(&self, behind: impl FnOnce() -> Behind) -> CheckpointCall {
        let elapsed = self.last.elapsed();
        let interval = self.interval();
        if elapsed < interval {
            return CheckpointCall::NotYet;
        }
        checkpoint_call(elapsed, interval, behind())
    }

    /// Time from one periodic checkpoint's start to the next ([`stretched_interval`]).
    pub fn interval(&self) -> Duration {
        stretched_interval(
            self.settings.interval,
            self.settings.cost_ratio,
            self.last_took,
        )
    }

    /// Decides what to do with a message at `offset` of `source`'s `partition`: false when it is
    /// already part of the restored state. Records the partition's progress either way.
    pub fn admit_offset(&mut self, source: Source, partition: u16, offset: i64) -> bool {
        let Some(p) = self.owned.get_mut(&partition) else {
            return true;
        };
        p.next[source] = p.next[source].max(offset + 1);
        offset >= p.skip_below[source]
    }

    /// False when `sku`'s restored window already holds this message (written after the cut).
    pub fn sku_needs(&self, sku: &str, source: Source, offset: i64) -> bool {
        if self.skip_sku.is_empty() {
            return true;
        }
        self.skip_sku
            .get(sku)
            .is_none_or(|cut| offset >= cut[source])
    }

    /// The newest state of `partition` and where it came from: the local log when it covers the
    /// committed offsets (or there is no changelog), else the changelog, else none.
    fn read_state(
        &self,
        partition: u16,
        committed: PerSource<i64>,
    ) -> Result<(StateSource, Restored)> {
        let covers = |r: &Restored| {
            r.cut.is_some()
                && r.next_offsets()
                    .iter()
                    .zip(committed.iter())
                    .all(|(n, c)| n >= c)
        };
        let mut from = StateSource::None;
        let mut restored = Restored::default();
        if let Some(local) = &self.local {
            let (records, problem) = local.read(partition, &self.capacity)?;
            if let Some(p) = problem {
                tracing::warn!(partition, error = %p, "local checkpoint log ends early");
            }
            let r = fold(partition, records);
            if covers(&r) || (self.changelog.is_none() && r.cut.is_some()) {
                restored = r;
                from = StateSource::Local;
            }
        }
        if from == StateSource::None {
            if let Some(changelog) = &self.changelog {
                let (records, bad) =
                    changelog.read(&self.kafka, partition, &self.capacity, FLUSH_TIMEOUT)?;
                if bad > 0 {
                    tracing::warn!(partition, bad, "changelog records could not be decoded");
                }
                let r = fold(partition, records);
                if r.cut.is_some() || !r.windows.is_empty() {
                    restored = r;
                    from = StateSource::Changelog;
                }
            }
        }
        Ok((from, restored))
    }

    /// Restores `partition` (local log when it is at least as new as the committed offsets,
    /// else the changelog) into the store, admission and scorer; returns what it did.
    pub fn restore(
        &mut self,
        partition: u16,
        committed: PerSource<i64>,
        admission: &mut Admission,
        scorer: &Sender<ScorerMsg>,
    ) -> Result<RestoreReport> {
        let started = Instant::now();
        let (from, restored) = self.read_state(partition, committed)?;
        if from == StateSource::None && committed.iter().any(|c| *c > 0) {
            tracing::warn!(
                partition,
                ?committed,
                "no checkpoint found for a partition with committed offsets: state of earlier events is not restored"
            );
        }
        // resume from the cut; without one, from where the group left off
        let next = match &restored.cut {
            Some(c) => c.next_offsets,
            None => committed,
        };
        let (watermarks, checkpoint) = restored
            .cut
            .as_ref()
            .map_or((PerSource::both(EventTime::MIN), 0), |c| {
                (c.watermarks, c.checkpoint)
            });
        for s in Source::ALL {
            admission.set_watermark(s, i32::from(partition), watermarks[s]);
        }
        for (sku, cut) in restored.ahead_of_cut() {
            self.skip_sku.insert(sku, cut);
        }
        if let Some(state) = restored.calibration.clone() {
            self.calibration.insert(partition, state);
        }
        let skus = restored.windows.len();
        let windows: Vec<_> = restored
            .windows
            .into_iter()
            .map(|(sku, (w, _))| (sku, w))
            .collect();
        let wm = watermarks
            .iter()
            .copied()
            .max()
            .filter(|w| *w != EventTime::MIN);
        for (sku, from_bucket) in admission.store().restore(windows, wm) {
            scorer
                .send(ScorerMsg::Dirty(sku, from_bucket))
                .map_err(|_| CheckpointError::ScorerGone)?;
        }
        self.owned.insert(
            partition,
            Progress {
                next,
                skip_below: next,
                checkpoint,
                since_full: 0,
                needs_full: from != StateSource::Local,
            },
        );
        Ok(RestoreReport {
            partition,
            from,
            skus,
            next,
            took: started.elapsed(),
        })
    }

    /// Writes partition `p`'s checkpoint to the local log and the changelog: what changed since
    /// the last one, or everything when the local log is due for compaction or a write failed.
    /// Returns its cut (the offsets to commit) when every store took it.
    fn checkpoint_partition(
        &mut self,
        p: u16,
        removed: Vec<Arc<str>>,
        admission: &Admission,
        publisher: &Publisher,
    ) -> Option<PerSource<i64>> {
        let compact_every = self.settings.compact_every;
        let has_local = self.local.is_some();
        let prog = self.owned.get_mut(&p)?;
        prog.checkpoint += 1;
        let full = prog.needs_full || (has_local && prog.since_full + 1 >= compact_every);
        let cut = prog.next;
        let calibration = self.calibration.get(p);
        let (delta, whole) = partition_records(
            admission,
            PartitionCheckpoint {
                p,
                n: prog.checkpoint,
                cut,
                full,
            },
            removed,
            calibration,
        );
        let mut ok = true;
        if let Some(local) = &self.local {
            let result = if full {
                local.write(p, &whole, true)
            } else {
                local.write(p, &delta, false)
            };
            if let Err(e) = result {
                tracing::error!(partition = p, error = %e, "local checkpoint failed");
                ok = false;
            }
        }
        if let Some(changelog) = &self.changelog {
            // after a failed write or a restore from elsewhere, save everything again
            let records = if prog.needs_full { &whole } else { &delta };
            if let Err(e) = changelog.write(publisher, p, records) {
                tracing::error!(partition = p, error = %e, "changelog checkpoint failed");
                ok = false;
            }
        }
        if !ok {
            // the changes drained above were not saved everywhere: save all next time
            prog.needs_full = true;
        } else if full {
            prog.since_full = 0;
            prog.needs_full = false;
        } else {
            prog.since_full += 1;
        }
        ok.then_some(cut)
    }

    /// Writes a checkpoint of `partitions` (all owned when empty), waiting in place, and returns
    /// the offsets to commit: `(partition, next offsets)`. Nothing is returned for a partition
    /// whose checkpoint could not be written, so its offsets are not committed. For checkpoints
    /// that cannot wait for later turns of the ingest loop (revocation, shutdown): the same
    /// marker and completion as the periodic one ([`super::marker`]), within `patience`.
    pub fn checkpoint(
        &mut self,
        partitions: &[u16],
        admission: &Admission,
        scorer: &Sender<ScorerMsg>,
        publisher: &Publisher,
        patience: Duration,
    ) -> Vec<(u16, PerSource<i64>)> {
        let Some(mut marker) = self.mark(partitions, admission, scorer, patience) else {
            return Vec::new();
        };
        loop {
            if marker.wait(marker.patience_left()) != Passage::Passed {
                tracing::warn!("checkpoint skipped: the scorer did not drain in time");
                return Vec::new();
            }
            match self.complete(marker, admission, scorer, publisher) {
                Completion::Written(cuts) => return cuts,
                Completion::Again(next) => marker = next,
            }
        }
    }

    /// Begins a checkpoint of `partitions` (all owned when empty): sends its marker through the
    /// scorer and notes where ingest stands. `None` when there is nothing to checkpoint or the
    /// scorer is gone. The caller waits for the marker ([`Marker::wait`]), holding its input,
    /// then calls [`Checkpointer::complete`]; the whole checkpoint gives up after `patience`.
    pub fn mark(
        &mut self,
        partitions: &[u16],
        admission: &Admission,
        scorer: &Sender<ScorerMsg>,
        patience: Duration,
    ) -> Option<Marker> {
        let started = Instant::now();
        self.last = started;
        let parts: Vec<u16> = if partitions.is_empty() {
            self.owned()
        } else {
            partitions
                .iter()
                .copied()
                .filter(|p| self.owned.contains_key(p))
                .collect()
        };
        if parts.is_empty() {
            return None;
        }
        self.send(parts, started, started + patience, admission, scorer)
    }

    /// Sends a marker for a checkpoint begun at `started`.
    fn send(
        &self,
        parts: Vec<u16>,
        started: Instant,
        deadline: Instant,
        admission: &Admission,
        scorer: &Sender<ScorerMsg>,
    ) -> Option<Marker> {
        // everything the state calls scored must be on the broker before the state is saved
        let Some(answer) = send_marker(scorer, true, FlushPoint::Published) else {
            tracing::warn!("checkpoint skipped: the scorer is gone");
            return None;
        };
        let at = self.cut_mark(admission);
        Some(Marker::new(answer, parts, started, deadline, at))
    }

    /// Where ingest stands: owned partitions' next offsets and the last closed bucket.
    fn cut_mark(&self, admission: &Admission) -> CutMark {
        let mut next: Vec<(u16, PerSource<i64>)> =
            self.owned.iter().map(|(p, prog)| (*p, prog.next)).collect();
        next.sort_unstable_by_key(|(p, _)| *p);
        CutMark {
            next,
            closed: admission.store().clock().closed_index(),
        }
    }

    /// Finishes a checkpoint whose marker has passed the scorer: waits for the broker to
    /// acknowledge every update, writes the records of each partition still owned and returns
    /// the offsets to commit. When ingest's state moved after the marker left, sends a new one
    /// instead ([`Completion::Again`]), or gives up once out of patience.
    pub fn complete(
        &mut self,
        marker: Marker,
        admission: &Admission,
        scorer: &Sender<ScorerMsg>,
        publisher: &Publisher,
    ) -> Completion {
        let skipped = Completion::Written(Vec::new());
        if self.cut_mark(admission) != marker.at {
            if marker.patience_left().is_zero() {
                tracing::warn!("checkpoint skipped: input moved on while it waited");
                return skipped;
            }
            let parts = marker.partitions;
            return match self.send(parts, marker.started, marker.deadline, admission, scorer) {
                Some(again) => Completion::Again(again),
                None => skipped,
            };
        }
        // each wait gets the checkpoint's whole patience, as when the barrier was a call: a
        // marker that came back late must not leave the flush no time at all
        let patience = marker.deadline.saturating_duration_since(marker.started);
        if let Err(e) = publisher.flush(patience) {
            tracing::warn!(error = %e, "checkpoint skipped: updates not acknowledged");
            return skipped;
        }
        let parts: Vec<u16> = marker
            .partitions
            .into_iter()
            .filter(|p| self.owned.contains_key(p))
            .collect();
        if !self.settings.enabled() {
            return Completion::Written(parts.iter().map(|p| (*p, self.owned[p].next)).collect());
        }
        let written = self.write(&parts, admission, publisher, patience);
        self.note_duration(marker.started.elapsed(), written.len());
        Completion::Written(written)
    }

    /// Writes the records of `parts` to the local log and the changelog, and waits (up to
    /// `patience`) for the changelog's acknowledgement; returns the cuts of the partitions
    /// every store took.
    fn write(
        &mut self,
        parts: &[u16],
        admission: &Admission,
        publisher: &Publisher,
        patience: Duration,
    ) -> Vec<(u16, PerSource<i64>)> {
        let store = admission.store();
        let mut removed: HashMap<u16, Vec<Arc<str>>> = HashMap::new();
        for (sku, p) in store.evictions().take_removed(parts) {
            removed.entry(p).or_default().push(sku);
        }
        let mut written = Vec::new();
        for &p in parts {
            let gone = removed.remove(&p).unwrap_or_default();
            if let Some(cut) = self.checkpoint_partition(p, gone, admission, publisher) {
                written.push((p, cut));
            }
        }
        if self.changelog.is_some() {
            if let Err(e) = publisher.flush(patience) {
                tracing::error!(error = %e, "changelog not acknowledged: offsets not committed");
                for (p, _) in &written {
                    if let Some(prog) = self.owned.get_mut(p) {
                        prog.needs_full = true;
                    }
                }
                return Vec::new();
            }
        }
        written
    }

    /// Remembers how long a checkpoint that wrote `partitions` partitions took: the next
    /// interval stretches with it. A checkpoint skipped for a pipeline that would not drain (a
    /// broker away) wrote nothing and says nothing of what writing costs; its retry must not be
    /// put off by its wait.
    fn note_duration(&mut self, took: Duration, partitions: usize) {
        if partitions > 0 {
            self.last_took = took;
        }
        tracing::debug!(
            partitions,
            took_ms = took.as_millis() as u64,
            next_in_ms = self.interval().as_millis() as u64,
            "checkpoint written"
        );
    }

    /// Forgets `partitions` (revoked): their progress and the SKUs skip list entries stay valid
    /// only for an owner.
    pub fn release(&mut self, partitions: &[u16]) {
        for p in partitions {
            self.owned.remove(p);
        }
        self.calibration.release(partitions);
        if self.owned.is_empty() {
            self.skip_sku.clear();
        }
    }
}

/// Which checkpoint of which partition [`partition_records`] writes.
#[derive(Debug, Clone, Copy)]
struct PartitionCheckpoint {
    p: u16,
    n: u64,
    cut: PerSource<i64>,
    full: bool,
}

/// The records of partition `p`'s checkpoint `n`: `(delta, whole)`. The delta holds the removals
/// (first: a SKU evicted and then seen again is written after its removal), the windows changed
/// since the last checkpoint, the partition's online interval widths and the cut; `whole` (only when
/// `full`) every window, the widths and the cut.
/// Drains the store's unsaved marks of `p`.
fn partition_records(
    admission: &Admission,
    at: PartitionCheckpoint,
    removed: Vec<Arc<str>>,
    calibration: Option<CalibrationState>,
) -> (Vec<Record>, Vec<Record>) {
    let PartitionCheckpoint { p, n, cut, full } = at;
    let mut delta: Vec<Record> = removed
        .into_iter()
        .map(|sku| Record::Removed {
            checkpoint: n,
            partition: p,
            sku: sku.to_string(),
        })
        .collect();
    let mut whole = Vec::new();
    admission.store().drain_unsaved(&[p], full, |sku, w| {
        let record = Record::Window(WindowRecord {
            checkpoint: n,
            partition: p,
            cut,
            sku: sku.to_string(),
            window: w.clone(),
        });
        if full {
            whole.push(record.clone());
        }
        if w.unsaved() {
            delta.push(record);
        }
    });
    if let Some(state) = calibration {
        let record = Record::Calibration {
            checkpoint: n,
            partition: p,
            state,
        };
        delta.push(record.clone());
        whole.push(record);
    }
    let end = Record::Cut(PartitionCut {
        checkpoint: n,
        partition: p,
        next_offsets: cut,
        watermarks: PerSource::from_fn(|s| {
            admission
                .watermark(s, i32::from(p))
                .unwrap_or(EventTime::MIN)
        }),
    });
    delta.push(end.clone());
    whole.push(end);
    (delta, whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckpointCall::{HoldInput, NotYet, Now};

    const INTERVAL: Duration = Duration::from_secs(5);

    fn behind(ready: usize, in_flight: usize) -> Behind {
        Behind {
            scoring: ScoringWork {
                ready,
                ..ScoringWork::default()
            },
            in_flight,
        }
    }

    fn with_scoring(scoring: ScoringWork) -> Behind {
        Behind {
            scoring,
            in_flight: 0,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_checkpoint_waits_for_its_interval_even_when_quiet() {
        assert_eq!(checkpoint_call(secs(4), INTERVAL, behind(0, 0)), NotYet);
        assert_eq!(checkpoint_call(INTERVAL, INTERVAL, behind(0, 0)), Now);
    }

    #[test]
    fn a_due_checkpoint_waits_while_the_scorer_or_the_broker_is_behind() {
        let at = secs(6);
        assert_eq!(checkpoint_call(at, INTERVAL, behind(545_000, 0)), NotYet);
        assert_eq!(checkpoint_call(at, INTERVAL, behind(0, 400_000)), NotYet);
        let edge = behind(Behind::QUIET_BACKLOG, Behind::QUIET_IN_FLIGHT);
        assert_eq!(checkpoint_call(at, INTERVAL, edge), Now);
        let over = behind(Behind::QUIET_BACKLOG + 1, 0);
        assert_eq!(checkpoint_call(at, INTERVAL, over), NotYet);
    }

    #[test]
    fn windows_the_throttle_holds_back_count_as_behind() {
        // a checkpoint scores them all first: 500,000 of them are seconds of scoring
        let throttled = with_scoring(ScoringWork {
            throttled: 500_000,
            ..ScoringWork::default()
        });
        assert_eq!(checkpoint_call(secs(6), INTERVAL, throttled), NotYet);
        assert_eq!(checkpoint_call(secs(10), INTERVAL, throttled), HoldInput);
        let half_each = with_scoring(ScoringWork {
            ready: Behind::QUIET_BACKLOG / 2,
            throttled: Behind::QUIET_BACKLOG / 2 + 1,
            close_uncounted: false,
        });
        assert_eq!(checkpoint_call(secs(6), INTERVAL, half_each), NotYet);
    }

    #[test]
    fn a_close_the_scorer_has_not_counted_yet_is_not_quiet() {
        // the backlog read is from before the close: a million windows may be on their way
        let uncounted = with_scoring(ScoringWork {
            close_uncounted: true,
            ..ScoringWork::default()
        });
        assert_eq!(checkpoint_call(secs(6), INTERVAL, uncounted), NotYet);
        assert_eq!(checkpoint_call(secs(11), INTERVAL, uncounted), HoldInput);
    }

    #[test]
    fn an_overdue_checkpoint_holds_input_until_the_pipeline_is_quiet() {
        let busy = behind(545_000, 400_000);
        let just_before = Duration::from_millis(9_999);
        assert_eq!(checkpoint_call(just_before, INTERVAL, busy), NotYet);
        assert_eq!(checkpoint_call(secs(10), INTERVAL, busy), HoldInput);
        assert_eq!(checkpoint_call(secs(30), INTERVAL, busy), HoldInput);
        assert_eq!(checkpoint_call(secs(30), INTERVAL, behind(10, 10)), Now);
    }

    #[test]
    fn a_slow_checkpoint_stretches_the_interval_to_keep_its_share() {
        let stretch = |took| stretched_interval(INTERVAL, 10, took);
        assert_eq!(stretch(Duration::ZERO), INTERVAL);
        assert_eq!(stretch(Duration::from_millis(40)), INTERVAL, "small state");
        assert_eq!(stretch(Duration::from_millis(2_500)), secs(25), "1M SKUs");
        assert_eq!(stretch(Duration::MAX), Duration::MAX);
        let fixed = stretched_interval(INTERVAL, 0, Duration::from_millis(2_500));
        assert_eq!(fixed, INTERVAL, "cost_ratio = 0");
    }

    #[test]
    fn input_is_not_held_for_ever_when_the_pipeline_cannot_drain() {
        let stuck = behind(0, 400_000);
        let limit = secs(10) + MAX_INPUT_HOLD;
        assert_eq!(checkpoint_call(limit - secs(1), INTERVAL, stuck), HoldInput);
        assert_eq!(checkpoint_call(limit, INTERVAL, stuck), Now);
    }

    /// A checkpointer writing to a local log under `dir`, with partition 0 owned (no state).
    fn owning_partition_0(dir: &std::path::Path) -> (Checkpointer, Admission, Publisher) {
        let settings = CheckpointSettings {
            dir: Some(dir.to_path_buf()),
            changelog_topic: None,
            interval: INTERVAL,
            cost_ratio: 0,
            compact_every: 10,
        };
        let kafka = KafkaSettings {
            // never reached: nothing is produced, and a flush with nothing in flight returns
            brokers: "127.0.0.1:1".into(),
            group_id: "g".into(),
            group_instance_id: None,
            sales_topic: "sales".into(),
            clicks_topic: "clicks".into(),
            output_topic: "out".into(),
            dead_letter_topic: "dlq".into(),
            properties: Default::default(),
        };
        let store = Arc::new(crate::window::WindowStore::new(
            crate::window::WindowSettings {
                bucket: crate::window::BucketSpec::new(86_400_000),
                buckets: 28,
                lateness_ms: 0,
                max_skus: 100,
                shards: 0,
            },
        ));
        let mut admission = Admission::new(store);
        let stats = Arc::new(crate::telemetry::EngineStats::new());
        let publisher = Publisher::new(&kafka, stats).expect("producer");
        let mut checkpoints = Checkpointer::new(settings, kafka, 31).expect("checkpointer");
        let (tx, _rx) = std::sync::mpsc::channel();
        checkpoints
            .restore(0, PerSource::both(0), &mut admission, &tx)
            .expect("restore");
        (checkpoints, admission, publisher)
    }

    /// Answers the next marker the scorer channel holds, as the scorer does once it reaches it.
    fn answer_marker(rx: &std::sync::mpsc::Receiver<ScorerMsg>) {
        match rx.try_recv() {
            Ok(ScorerMsg::Flush { ack, until, .. }) => {
                assert_eq!(until, FlushPoint::Published);
                ack.send(()).expect("answered");
            }
            _ => panic!("no marker sent"),
        }
    }

    #[test]
    fn a_checkpoint_writes_the_cut_its_marker_left_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut checkpoints, admission, publisher) = owning_partition_0(dir.path());
        let (scorer, rx) = std::sync::mpsc::channel();
        checkpoints.admit_offset(Source::Sales, 0, 9);
        let marker = checkpoints
            .mark(&[], &admission, &scorer, secs(5))
            .expect("a marker");
        assert_eq!(marker.wait(Duration::ZERO), Passage::Waiting);
        answer_marker(&rx);
        assert_eq!(marker.wait(Duration::ZERO), Passage::Passed);
        match checkpoints.complete(marker, &admission, &scorer, &publisher) {
            Completion::Written(cuts) => assert_eq!(cuts, vec![(0, PerSource::new(10, 0))]),
            Completion::Again(_) => panic!("nothing moved, yet a new marker went out"),
        }
    }

    #[test]
    fn input_applied_after_the_marker_sends_a_new_one_instead_of_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut checkpoints, admission, publisher) = owning_partition_0(dir.path());
        let (scorer, rx) = std::sync::mpsc::channel();
        let marker = checkpoints
            .mark(&[], &admission, &scorer, secs(5))
            .expect("a marker");
        // a message applied while the marker was out: the scorer has not seen its changes
        checkpoints.admit_offset(Source::Sales, 0, 41);
        answer_marker(&rx);
        let again = match checkpoints.complete(marker, &admission, &scorer, &publisher) {
            Completion::Again(again) => again,
            Completion::Written(cuts) => panic!("wrote {cuts:?} ahead of the scorer"),
        };
        answer_marker(&rx);
        match checkpoints.complete(again, &admission, &scorer, &publisher) {
            Completion::Written(cuts) => assert_eq!(cuts, vec![(0, PerSource::new(42, 0))]),
            Completion::Again(_) => panic!("nothing moved the second time"),
        }
    }

    #[test]
    fn a_checkpoint_waiting_in_place_is_skipped_when_the_scorer_does_not_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut checkpoints, admission, publisher) = owning_partition_0(dir.path());
        let (scorer, _rx) = std::sync::mpsc::channel();
        let short = Duration::from_millis(20);
        let cuts = checkpoints.checkpoint(&[], &admission, &scorer, &publisher, short);
        assert!(cuts.is_empty(), "nothing is committed without the scorer");
    }
}
