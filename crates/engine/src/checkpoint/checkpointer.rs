//! The checkpointer: per-partition progress, taking checkpoints, restoring on assignment.
//!
//! It is driven by the ingest thread only (between messages, or inside its rebalance callbacks),
//! which is what makes each checkpoint a consistent cut. Taking one costs ingest only the
//! snapshot: the records go with a marker through the scorer, which writes them once every
//! update they count as made is on its way ([`super::writer`]), and ingest commits the offsets
//! when the answer comes back ([`Checkpointer::written`]). One checkpoint is in flight at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{CheckpointError, PartitionCut, Record, WindowRecord};
use super::restore::{fold, Restored};
use super::writer::{PartitionWrite, Stores, Written};
use super::{CheckpointSettings, StateSource};
use crate::kafka::KafkaSettings;
use crate::publish::Publisher;
use crate::scoring::{flush_scorer, FlushPoint, Marker, ScorerMsg};
use crate::state::{ChangelogTopic, PartitionLog};
use crate::vocab::{EventTime, PerSource, Source};
use crate::window::Admission;

/// How long a checkpoint waits for the scorer and the broker.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the scorer waits for the broker when it writes a periodic checkpoint; not saved then,
/// it is retried at the next interval (ingest reads on meanwhile).
pub const PERIODIC_PATIENCE: Duration = Duration::from_secs(5);

/// How long a checkpoint at revocation or shutdown waits for the scorer and the broker.
pub const FINAL_PATIENCE: Duration = FLUSH_TIMEOUT;

/// Partitions written by a checkpoint, with the next offsets to commit for each.
pub type Cuts = Vec<(u16, PerSource<i64>)>;

/// A checkpoint taken and not yet answered.
struct InFlight {
    answer: Receiver<Written>,
    taken: Instant,
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
    last: Instant,
    in_flight: Option<InFlight>,
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
            in_flight: None,
        })
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

    /// True when the periodic checkpoint is due: the interval has passed and none is in flight.
    pub fn due(&self) -> bool {
        self.in_flight.is_none() && self.last.elapsed() >= self.settings.interval
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

    /// Partition `p`'s part of the next checkpoint: what changed since the last one, or
    /// everything when the local log is due for compaction or a write failed.
    fn partition_write(
        &mut self,
        p: u16,
        removed: Vec<Arc<str>>,
        admission: &Admission,
    ) -> Option<PartitionWrite> {
        let compact_every = self.settings.compact_every;
        let (has_local, has_changelog) = (self.local.is_some(), self.changelog.is_some());
        let prog = self.owned.get_mut(&p)?;
        prog.checkpoint += 1;
        let full = prog.needs_full || (has_local && prog.since_full + 1 >= compact_every);
        let cut = prog.next;
        if !has_local && !has_changelog {
            // state is kept nowhere: the checkpoint only commits, once the updates are out
            return Some(PartitionWrite {
                partition: p,
                cut,
                local: None,
                changelog: None,
            });
        }
        let (delta, whole) = partition_records(admission, p, prog.checkpoint, cut, full, removed);
        // after a failed write or a restore from elsewhere, the changelog gets everything again
        let changelog = has_changelog.then(|| match prog.needs_full {
            true => whole.clone(),
            false => delta.clone(),
        });
        let records = if full { (whole, true) } else { (delta, false) };
        let local = has_local.then_some(records);
        Some(PartitionWrite {
            partition: p,
            cut,
            local,
            changelog,
        })
    }

    /// Takes a checkpoint of `partitions` (all owned when empty) and sends it through the scorer
    /// to be written (see the module docs); the answer comes from [`Checkpointer::written`].
    /// False when there is nothing to take or one is still in flight.
    pub fn take(
        &mut self,
        partitions: &[u16],
        admission: &Admission,
        scorer: &Sender<ScorerMsg>,
        publisher: &Publisher,
        patience: Duration,
    ) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        self.last = Instant::now();
        let parts = self.chosen(partitions);
        if parts.is_empty() {
            return false;
        }
        let mut removed: HashMap<u16, Vec<Arc<str>>> = HashMap::new();
        if self.settings.enabled() {
            for (sku, p) in admission.store().take_removed(&parts) {
                removed.entry(p).or_default().push(sku);
            }
        }
        let writes: Vec<PartitionWrite> = parts
            .into_iter()
            .filter_map(|p| {
                let gone = removed.remove(&p).unwrap_or_default();
                self.partition_write(p, gone, admission)
            })
            .collect();
        let stores = Stores {
            local: self.local.clone(),
            changelog: self.changelog.clone(),
            publisher: publisher.clone(),
        };
        let (done, answer) = channel();
        let marker = Marker::new(move || stores.write(writes, patience, &done));
        if scorer.send(ScorerMsg::Marker(marker)).is_err() {
            tracing::warn!("checkpoint not taken: the scorer has stopped");
            return false;
        }
        self.in_flight = Some(InFlight {
            answer,
            taken: Instant::now(),
        });
        true
    }

    /// Owned partitions among `partitions` (all owned when empty).
    fn chosen(&self, partitions: &[u16]) -> Vec<u16> {
        if partitions.is_empty() {
            return self.owned();
        }
        partitions
            .iter()
            .copied()
            .filter(|p| self.owned.contains_key(p))
            .collect()
    }

    /// The answer to the checkpoint in flight, once there is one: the offsets to commit and
    /// how long it took since it was taken. Waits at most `wait` for it.
    pub fn written(&mut self, wait: Duration) -> Option<(Cuts, Duration)> {
        let in_flight = self.in_flight.as_ref()?;
        let written = match in_flight.answer.recv_timeout(wait) {
            Ok(w) => w,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => {
                tracing::warn!("checkpoint not saved: the scorer stopped before writing it");
                Written::default()
            }
        };
        let took = in_flight.taken.elapsed();
        self.in_flight = None;
        for p in &written.failed {
            if let Some(prog) = self.owned.get_mut(p) {
                prog.needs_full = true;
            }
        }
        for (p, _) in &written.cuts {
            if let Some(prog) = self.owned.get_mut(p) {
                if written.full.contains(p) {
                    prog.since_full = 0;
                    prog.needs_full = false;
                } else {
                    prog.since_full += 1;
                }
            }
        }
        // a partition revoked while its checkpoint was in flight is another owner's now
        let mut cuts = written.cuts;
        cuts.retain(|(p, _)| self.owned.contains_key(p));
        Some((cuts, took))
    }

    /// Checkpoints `partitions` (all owned when empty) and waits for it, for a revocation or a
    /// shutdown: first the checkpoint in flight, then everything closed is scored (throttle
    /// ignored), then a checkpoint is taken and written. Returns the offsets to commit (the
    /// newest per partition); waits at most `patience` for each step.
    pub fn checkpoint(
        &mut self,
        partitions: &[u16],
        admission: &Admission,
        scorer: &Sender<ScorerMsg>,
        publisher: &Publisher,
        patience: Duration,
    ) -> Cuts {
        let mut cuts: BTreeMap<u16, PerSource<i64>> = BTreeMap::new();
        if self.in_flight.is_some() {
            match self.written(patience) {
                Some((earlier, _)) => cuts.extend(earlier),
                None => {
                    tracing::warn!("checkpoint skipped: the one in flight was not written in time");
                    return Vec::new();
                }
            }
        }
        if !flush_scorer(scorer, true, FlushPoint::Published, patience) {
            tracing::warn!("checkpoint skipped: the scorer did not drain in time");
            return cuts.into_iter().collect();
        }
        if self.take(partitions, admission, scorer, publisher, patience) {
            // the scorer's flush above has already waited once: allow the write its own time
            if let Some((now, _)) = self.written(patience.saturating_mul(3)) {
                cuts.extend(now);
            }
        }
        cuts.into_iter().collect()
    }

    /// Forgets `partitions` (revoked): their progress and the SKUs skip list entries stay valid
    /// only for an owner.
    pub fn release(&mut self, partitions: &[u16]) {
        for p in partitions {
            self.owned.remove(p);
        }
        if self.owned.is_empty() {
            self.skip_sku.clear();
        }
    }
}

/// The records of partition `p`'s checkpoint `n`: `(delta, whole)`. The delta holds the removals
/// (first: a SKU evicted and then seen again is written after its removal), the windows changed
/// since the last checkpoint and the cut; `whole` (only when `full`) every window and the cut.
/// Drains the store's unsaved marks of `p`.
fn partition_records(
    admission: &Admission,
    p: u16,
    n: u64,
    cut: PerSource<i64>,
    full: bool,
    removed: Vec<Arc<str>>,
) -> (Vec<Record>, Vec<Record>) {
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
    use crate::kafka::KafkaSettings;

    fn checkpointer(owned: &[u16]) -> Checkpointer {
        let settings = CheckpointSettings {
            dir: None,
            changelog_topic: None,
            interval: Duration::from_secs(5),
            compact_every: 20,
        };
        let kafka = KafkaSettings {
            group_instance_id: None,
            brokers: "127.0.0.1:1".into(),
            group_id: "g".into(),
            sales_topic: "s".into(),
            clicks_topic: "c".into(),
            output_topic: "o".into(),
            dead_letter_topic: "d".into(),
            properties: Default::default(),
        };
        let mut c = Checkpointer::new(settings, kafka, 4).expect("checkpointer");
        for p in owned {
            let progress = Progress {
                next: PerSource::both(10),
                skip_below: PerSource::both(0),
                checkpoint: 1,
                since_full: 3,
                needs_full: false,
            };
            c.owned.insert(*p, progress);
        }
        c
    }

    /// Puts a checkpoint in flight and returns where its answer goes.
    fn in_flight(c: &mut Checkpointer) -> Sender<Written> {
        let (done, answer) = channel();
        c.in_flight = Some(InFlight {
            answer,
            taken: Instant::now(),
        });
        done
    }

    #[test]
    fn the_answer_updates_progress_and_only_then_is_the_next_one_due() {
        let mut c = checkpointer(&[0, 1, 2]);
        c.last = Instant::now() - Duration::from_secs(6);
        let done = in_flight(&mut c);
        assert!(!c.due(), "one checkpoint in flight at a time");
        assert!(c.written(Duration::ZERO).is_none(), "no answer yet");
        let cut = PerSource::both(10);
        let written = Written {
            cuts: vec![(0, cut), (1, cut)],
            full: vec![1],
            failed: vec![2],
        };
        done.send(written).expect("send");
        let (cuts, _) = c.written(Duration::ZERO).expect("answered");
        assert_eq!(cuts, vec![(0, cut), (1, cut)]);
        assert_eq!((c.owned[&0].since_full, c.owned[&0].needs_full), (4, false));
        assert_eq!((c.owned[&1].since_full, c.owned[&1].needs_full), (0, false));
        assert!(
            c.owned[&2].needs_full,
            "a failed partition saves everything next time"
        );
        assert!(c.due());
    }

    #[test]
    fn offsets_of_a_partition_revoked_meanwhile_are_not_committed() {
        let mut c = checkpointer(&[0, 1]);
        let done = in_flight(&mut c);
        c.release(&[1]);
        let cut = PerSource::both(10);
        let written = Written {
            cuts: vec![(0, cut), (1, cut)],
            ..Written::default()
        };
        done.send(written).expect("send");
        assert_eq!(
            c.written(Duration::ZERO).expect("answered").0,
            vec![(0, cut)]
        );
    }

    #[test]
    fn a_scorer_that_stopped_answers_nothing_to_commit() {
        let mut c = checkpointer(&[0]);
        drop(in_flight(&mut c));
        assert_eq!(c.written(Duration::ZERO).expect("answered").0, Vec::new());
        assert!(c.in_flight.is_none());
    }
}
