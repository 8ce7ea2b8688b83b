//! Where signal state is kept: a state table ([`crate::state`]) with a local log under the
//! checkpoint folder and, optionally, a changelog topic — the same implementation as window
//! state, so a restart and a takeover work the same way for both.
//!
//! Each checkpoint of a partition writes the SKUs changed since the last one, then a cut, to the
//! changelog (and waits for the broker), then to the local log; every
//! [`COMPACT_EVERY`] checkpoints, and whenever the local log may not hold everything (after a
//! restore from elsewhere, or a failed write), the log is rewritten as one snapshot instead.
//! A partition's changed SKUs are forgotten only once both stores have them.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use super::records::{checkpoint_records, fold, progress, SignalRecord};
use super::state::{legacy_file_of, load_legacy, PartitionSignals, StateFileError};
use crate::kafka::KafkaSettings;
use crate::publish::Publisher;
use crate::state::{ChangelogTopic, LogDamage, PartitionLog, StateSource, StorageError};

/// Every this many checkpoints a partition's local log is rewritten as one snapshot.
pub const COMPACT_EVERY: u32 = 20;

/// Signal state that could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Storage could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The local log holds a record that does not decode: going on without the rest would
    /// restart restock triggers and rankings silently.
    #[error("signal state log damaged: {0}")]
    Damaged(LogDamage),
    /// A file of the layout before state tables could not be read.
    #[error(transparent)]
    Legacy(#[from] StateFileError),
}

/// What a partition still owes its stores.
#[derive(Debug, Default)]
struct Dirty {
    /// SKUs changed since both stores last took them.
    skus: HashSet<String>,
    /// Local checkpoints appended since the last snapshot.
    since_full: u32,
    /// The local log may lack something: the next local write is a snapshot.
    needs_full: bool,
}

/// The signals' state table.
pub struct SignalTable {
    log: Option<PartitionLog>,
    changelog: Option<ChangelogTopic>,
    kafka: KafkaSettings,
    dirty: BTreeMap<u16, Dirty>,
}

impl SignalTable {
    /// The table in `dir` (created) and on `changelog`; either may be absent.
    pub fn new(
        dir: Option<PathBuf>,
        changelog: Option<ChangelogTopic>,
        kafka: KafkaSettings,
    ) -> Result<Self, TableError> {
        let log = dir.as_deref().map(PartitionLog::open).transpose()?;
        Ok(Self {
            log,
            changelog,
            kafka,
            dirty: BTreeMap::new(),
        })
    }

    /// True when state is kept anywhere (else nothing is saved or committed).
    pub fn enabled(&self) -> bool {
        self.log.is_some() || self.changelog.is_some()
    }

    /// Remembers that `sku` of `partition` changed.
    pub fn mark(&mut self, partition: u16, sku: String) {
        if self.enabled() {
            self.dirty.entry(partition).or_default().skus.insert(sku);
        }
    }

    /// Forgets a partition this instance no longer owns.
    pub fn forget(&mut self, partition: u16) {
        self.dirty.remove(&partition);
    }

    /// The further along of the local log and the changelog (empty when neither holds the
    /// partition), and where it came from.
    pub fn restore(
        &mut self,
        partition: u16,
        timeout: Duration,
    ) -> Result<(PartitionSignals, StateSource), TableError> {
        let local = self.read_local(partition)?;
        let logged = match &self.changelog {
            Some(c) => {
                let (records, bad) =
                    c.read::<SignalRecord>(&self.kafka, partition, &(), timeout)?;
                if bad > 0 {
                    tracing::warn!(
                        partition,
                        bad,
                        "signals changelog records could not be decoded"
                    );
                }
                fold(records)
            }
            None => None,
        };
        let logged_progress = logged.as_ref().map(progress);
        let (state, from) = match (local, logged) {
            (Some(l), Some(c)) if progress(&c) > progress(&l) => (c, StateSource::Changelog),
            (Some(l), _) => (l, StateSource::Local),
            (None, Some(c)) => (c, StateSource::Changelog),
            (None, None) => (PartitionSignals::default(), StateSource::None),
        };
        let dirty = self.dirty.entry(partition).or_default();
        // the local log is rewritten whole unless it is what was restored
        dirty.needs_full = from != StateSource::Local || dirty.needs_full;
        dirty.since_full = 0;
        if self.changelog.is_some() && logged_progress < Some(progress(&state)) {
            // a local state ahead of the changelog (written before it was configured, or the
            // changelog lost): hand the changelog every SKU at the next checkpoint
            dirty.skus = state.skus.keys().cloned().collect();
        }
        Ok((state, from))
    }

    /// The local log's state of `partition`; a file of the earlier layout when there is no
    /// log (its SKUs then go to a snapshot at the next checkpoint).
    fn read_local(&mut self, partition: u16) -> Result<Option<PartitionSignals>, TableError> {
        let Some(log) = &self.log else {
            return Ok(None);
        };
        let (records, damage) = log.read::<SignalRecord>(partition, &())?;
        match damage {
            Some(LogDamage::TornTail { .. }) => {
                tracing::warn!(partition, "signal state log ends in a torn frame (a crash mid-write): its complete records are used")
            }
            Some(d @ LogDamage::Undecodable { .. }) => return Err(TableError::Damaged(d)),
            None => {}
        }
        if let Some(state) = fold(records) {
            return Ok(Some(state));
        }
        let legacy = load_legacy(log.dir(), partition)?;
        if legacy.is_some() {
            self.dirty.entry(partition).or_default().needs_full = true;
        }
        Ok(legacy)
    }

    /// Saves a checkpoint of `states`: each partition's changed SKUs and a cut go to the
    /// changelog (then the broker is waited for, at most `patience`), then to the local log.
    /// Returns the partitions saved everywhere, whose offsets may now be committed; nothing is
    /// saved when the changelog is not. Failures are logged and retried at the next checkpoint.
    pub fn save(
        &mut self,
        publisher: &Publisher,
        states: &[(u16, &PartitionSignals)],
        patience: Duration,
    ) -> Vec<u16> {
        let none = HashSet::new();
        // built once: the changelog and an appending local log take the same records
        let deltas: Vec<Vec<SignalRecord>> = states
            .iter()
            .map(|(p, state)| {
                let skus = self.dirty.get(p).map_or(&none, |d| &d.skus);
                checkpoint_records(state, skus)
            })
            .collect();
        if let Some(changelog) = &self.changelog {
            for ((p, _), records) in states.iter().zip(&deltas) {
                if let Err(e) = changelog.write(publisher, *p, records) {
                    tracing::warn!(partition = p, error = %e, "signals changelog not written (next checkpoint retries)");
                    return Vec::new();
                }
            }
            if let Err(e) = publisher.flush(patience) {
                tracing::warn!(error = %e, "signals checkpoint skipped: the changelog was not acknowledged in time");
                return Vec::new();
            }
        }
        let mut saved = Vec::new();
        for ((p, state), delta) in states.iter().zip(deltas) {
            match self.write_local(*p, state, delta) {
                Ok(()) => saved.push(*p),
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "signal state not saved (next checkpoint retries)")
                }
            }
        }
        saved
    }

    /// Writes `partition`'s checkpoint to the local log (`delta`: its changed SKUs and a cut,
    /// or a snapshot when due), then forgets its changed SKUs: the changelog took them first.
    fn write_local(
        &mut self,
        partition: u16,
        state: &PartitionSignals,
        delta: Vec<SignalRecord>,
    ) -> Result<(), StorageError> {
        let dirty = self.dirty.entry(partition).or_default();
        if let Some(log) = &self.log {
            let full = dirty.needs_full || dirty.since_full + 1 >= COMPACT_EVERY;
            let result = if full {
                let whole = checkpoint_records(state, state.skus.keys());
                log.write(partition, &whole, true)
            } else {
                log.write(partition, &delta, false)
            };
            if let Err(e) = result {
                dirty.needs_full = true;
                return Err(e);
            }
            if full {
                dirty.since_full = 0;
                dirty.needs_full = false;
                remove_legacy(log, partition);
            } else {
                dirty.since_full += 1;
            }
        }
        dirty.skus.clear();
        Ok(())
    }
}

/// Deletes the earlier layout's file of `partition` once a snapshot of the log holds its state.
fn remove_legacy(log: &PartitionLog, partition: u16) {
    let path = legacy_file_of(log.dir(), partition);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), error = %e, "old signal state file not removed (it is read only while there is no log)")
        }
        _ => {}
    }
}
