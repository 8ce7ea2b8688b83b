//! Writing a checkpoint that ingest has taken: the second half of the barrier, run by the marker
//! the checkpoint sends through the scorer ([`crate::scoring::ScorerMsg::Marker`]).
//!
//! Ingest takes the snapshot between two messages (a consistent cut: the records of the SKUs
//! changed since the last checkpoint, and the next offsets) and goes on reading. The marker
//! follows the windows ingest handed the scorer before it; once the scorer has handed every
//! update it copied before the marker to the producer, the marker's action runs this, on the
//! scorer's thread: flush the producer (every update the snapshot counts as made is on the
//! broker), write the records to the local log and the changelog, flush again (the changelog is
//! on the broker), and send ingest the offsets it may now commit. A window the snapshot holds as
//! not yet scored is scored again after a restore, so nothing the scorer does after the marker
//! can make the snapshot wrong.

use std::sync::mpsc::Sender;
use std::time::Duration;

use super::format::Record;
use crate::publish::Publisher;
use crate::state::{ChangelogTopic, PartitionLog};
use crate::vocab::PerSource;

/// One partition's part of a checkpoint.
#[derive(Debug)]
pub struct PartitionWrite {
    /// The input partition.
    pub partition: u16,
    /// Next offsets the records reflect: what to commit once they are written.
    pub cut: PerSource<i64>,
    /// For the local log: the records, and whether they replace the file.
    pub local: Option<(Vec<Record>, bool)>,
    /// For the changelog.
    pub changelog: Option<Vec<Record>>,
}

/// What writing a checkpoint did, for ingest.
#[derive(Debug, Default)]
pub struct Written {
    /// Partitions every store took, with the offsets to commit.
    pub cuts: Vec<(u16, PerSource<i64>)>,
    /// Partitions whose local log was rewritten whole.
    pub full: Vec<u16>,
    /// Partitions not saved everywhere: their next checkpoint saves everything again.
    pub failed: Vec<u16>,
}

/// Where checkpoints go.
#[derive(Clone)]
pub struct Stores {
    /// This host's log, if any.
    pub local: Option<PartitionLog>,
    /// The changelog topic, if any.
    pub changelog: Option<ChangelogTopic>,
    /// The engine's producer (updates, dead letters and changelog records).
    pub publisher: Publisher,
}

impl Stores {
    /// Writes `parts` (see the module docs) and sends what happened to `done`; waits at most
    /// `patience` for each flush of the producer.
    pub fn write(&self, parts: Vec<PartitionWrite>, patience: Duration, done: &Sender<Written>) {
        let mut written = Written::default();
        if let Err(e) = self.publisher.flush(patience) {
            tracing::warn!(error = %e, "checkpoint not saved: updates not acknowledged (the next one saves everything)");
            written.failed = parts.iter().map(|p| p.partition).collect();
        } else {
            for part in parts {
                self.write_partition(part, &mut written);
            }
            self.flush_changelog(patience, &mut written);
        }
        // ingest gave up waiting only when it is shutting down anyway
        if done.send(written).is_err() {
            tracing::debug!("checkpoint written after ingest stopped waiting for it");
        }
    }

    fn write_partition(&self, part: PartitionWrite, written: &mut Written) {
        let p = part.partition;
        let mut ok = true;
        if let (Some(local), Some((records, replace))) = (&self.local, &part.local) {
            if let Err(e) = local.write(p, records, *replace) {
                tracing::error!(partition = p, error = %e, "local checkpoint failed");
                ok = false;
            }
        }
        if let (Some(changelog), Some(records)) = (&self.changelog, &part.changelog) {
            if let Err(e) = changelog.write(&self.publisher, p, records) {
                tracing::error!(partition = p, error = %e, "changelog checkpoint failed");
                ok = false;
            }
        }
        if !ok {
            written.failed.push(p);
            return;
        }
        if part.local.as_ref().is_some_and(|(_, replace)| *replace) {
            written.full.push(p);
        }
        written.cuts.push((p, part.cut));
    }

    /// Waits until the broker has every changelog record; if it does not, nothing is committed.
    fn flush_changelog(&self, patience: Duration, written: &mut Written) {
        if self.changelog.is_none() || written.cuts.is_empty() {
            return;
        }
        if let Err(e) = self.publisher.flush(patience) {
            tracing::error!(error = %e, "changelog not acknowledged: offsets not committed");
            written.full.clear();
            written
                .failed
                .extend(written.cuts.drain(..).map(|(p, _)| p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::PartitionCut;
    use crate::kafka::KafkaSettings;
    use crate::telemetry::EngineStats;
    use crate::vocab::EventTime;

    /// A producer with nothing to send: its flush returns at once, no broker needed.
    fn idle_publisher() -> Publisher {
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
        Publisher::new(&kafka, std::sync::Arc::new(EngineStats::new())).expect("producer")
    }

    fn cut(partition: u16, checkpoint: u64) -> Record {
        Record::Cut(PartitionCut {
            checkpoint,
            partition,
            next_offsets: [checkpoint as i64, 0].into(),
            watermarks: PerSource::both(EventTime::from_millis(0)),
        })
    }

    fn write(partition: u16, checkpoint: u64, replace: bool) -> PartitionWrite {
        PartitionWrite {
            partition,
            cut: [checkpoint as i64, 0].into(),
            local: Some((vec![cut(partition, checkpoint)], replace)),
            changelog: None,
        }
    }

    #[test]
    fn each_partition_is_written_and_answered_with_its_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path()).expect("log");
        let stores = Stores {
            local: Some(log.clone()),
            changelog: None,
            publisher: idle_publisher(),
        };
        let (done, answer) = std::sync::mpsc::channel();
        stores.write(
            vec![write(0, 1, false), write(1, 1, true)],
            Duration::from_secs(5),
            &done,
        );
        let written = answer.recv().expect("answered");
        assert_eq!(written.cuts, vec![(0, [1, 0].into()), (1, [1, 0].into())]);
        assert_eq!(written.full, vec![1]);
        assert!(written.failed.is_empty());
        stores.write(vec![write(0, 2, false)], Duration::from_secs(5), &done);
        assert_eq!(
            answer.recv().expect("answered").cuts,
            vec![(0, [2, 0].into())]
        );
        let (records, damage) = log.read::<Record>(0, &4).expect("read");
        assert_eq!((records, damage), (vec![cut(0, 1), cut(0, 2)], None));
    }

    #[test]
    fn a_partition_whose_log_cannot_be_written_is_answered_as_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path()).expect("log");
        // a directory where partition 3's file should be
        std::fs::create_dir_all(log.path(3)).expect("blocking directory");
        let stores = Stores {
            local: Some(log),
            changelog: None,
            publisher: idle_publisher(),
        };
        let (done, answer) = std::sync::mpsc::channel();
        stores.write(
            vec![write(3, 1, false), write(4, 1, false)],
            Duration::from_secs(5),
            &done,
        );
        let written = answer.recv().expect("answered");
        assert_eq!(written.failed, vec![3]);
        assert_eq!(written.cuts, vec![(4, [1, 0].into())]);
    }
}
