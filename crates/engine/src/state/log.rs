//! The local log of a state table: one append-only file per partition, for a fast restart on
//! the same host.
//!
//! Frames are a little-endian `u32` length and the encoded record. Each checkpoint appends its
//! records and fsyncs; every so often (the owner says when) the file is replaced (write, fsync,
//! rename) by one full snapshot. A crash can leave a torn last frame: reading stops there and
//! says so ([`LogDamage::TornTail`]), and since no cut follows it, the owner trusts nothing of
//! that checkpoint beyond what its records say of themselves. A whole frame that does not
//! decode is damage of another kind ([`LogDamage::Undecodable`]); the owner decides whether it
//! may go on without the rest.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{storage, StorageError, TableRecord};

/// Per-partition log files under one directory (`<dir>/p<N>.log`).
#[derive(Debug, Clone)]
pub struct PartitionLog {
    dir: PathBuf,
}

/// Why reading a log stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogDamage {
    /// The last frame is incomplete: a crash in the middle of an append.
    #[error("{path}: torn last frame (ignored)")]
    TornTail {
        /// The file.
        path: PathBuf,
    },
    /// A complete frame is not a record of this table.
    #[error("{path}: record {index} does not decode: {reason}")]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// Its position among the file's records (0 = first).
        index: usize,
        /// The decoder's reason.
        reason: String,
    },
}

impl PartitionLog {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(storage(format!("creating {}", dir.display())))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder of the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `partition`.
    pub fn path(&self, partition: u16) -> PathBuf {
        self.dir.join(format!("p{partition}.log"))
    }

    /// Partitions with a log file.
    pub fn partitions(&self) -> Result<Vec<u16>, StorageError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(storage(format!("listing {}", self.dir.display())))?;
        let mut out: Vec<u16> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix('p')?.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Appends `records` to the partition's log and fsyncs; with `replace`, the file is
    /// replaced by exactly `records` instead.
    pub fn write<R: TableRecord>(
        &self,
        partition: u16,
        records: &[R],
        replace: bool,
    ) -> Result<(), StorageError> {
        let path = self.path(partition);
        let target = if replace {
            path.with_extension("log.tmp")
        } else {
            path.clone()
        };
        let what = format!("writing {}", target.display());
        let file = OpenOptions::new()
            .create(true)
            .append(!replace)
            .write(true)
            .truncate(replace)
            .open(&target)
            .map_err(storage(what.clone()))?;
        let mut out = BufWriter::new(file);
        for r in records {
            let bytes = r.encode();
            out.write_all(&(bytes.len() as u32).to_le_bytes())
                .and_then(|_| out.write_all(&bytes))
                .map_err(storage(what.clone()))?;
        }
        let file = out
            .into_inner()
            .map_err(|e| storage(what.clone())(e.into_error()))?;
        file.sync_data().map_err(storage(what.clone()))?;
        if replace {
            std::fs::rename(&target, &path)
                .map_err(storage(format!("renaming to {}", path.display())))?;
        }
        Ok(())
    }

    /// Reads the partition's records in order (none when there is no file). Reading stops at a
    /// torn or undecodable frame, which is reported with the records before it.
    pub fn read<R: TableRecord>(
        &self,
        partition: u16,
        context: &R::Context,
    ) -> Result<(Vec<R>, Option<LogDamage>), StorageError> {
        let path = self.path(partition);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(storage(format!("reading {}", path.display())))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
            Err(e) => return Err(storage(format!("opening {}", path.display()))(e)),
        }
        let mut records = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let torn = || Some(LogDamage::TornTail { path: path.clone() });
            let Some(len) = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            else {
                return Ok((records, torn()));
            };
            let Some(frame) = rest.get(4..4 + len as usize) else {
                return Ok((records, torn()));
            };
            match R::decode(frame, context) {
                Ok(r) => records.push(r),
                Err(e) => {
                    let damage = LogDamage::Undecodable {
                        path: path.clone(),
                        index: records.len(),
                        reason: e.to_string(),
                    };
                    return Ok((records, Some(damage)));
                }
            }
            rest = &rest[4 + len as usize..];
        }
        Ok((records, None))
    }
}

#[cfg(test)]
mod tests {
    //! The restart tests of every state table: each kind of record survives an append, a
    //! replacement and a torn tail the same way.

    use std::fmt::Debug;

    use super::*;
    use crate::checkpoint::{PartitionCut, Record};
    use crate::signals::records::SignalRecord;
    use crate::signals::state::SkuSignals;
    use crate::vocab::{EventTime, PerSource};

    fn window_cut(checkpoint: u64) -> Record {
        Record::Cut(PartitionCut {
            checkpoint,
            partition: 0,
            next_offsets: [checkpoint as i64, 0].into(),
            watermarks: PerSource::both(EventTime::from_millis(0)),
        })
    }

    fn signal_record(n: u64) -> SignalRecord {
        if n % 2 == 0 {
            SignalRecord::Cut {
                next: [n as i64, -1, 7],
                newest_as_of_ms: Some(n as i64 * 1_000),
            }
        } else {
            SignalRecord::Sku {
                sku: format!("SKU-{n}"),
                state: Box::new(SkuSignals::default()),
            }
        }
    }

    fn survives_restarts<R: TableRecord + PartialEq + Debug>(
        make: impl Fn(u64) -> R,
        context: &R::Context,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path()).expect("open");
        log.write(0, &[make(1)], false).expect("write");
        log.write(0, &[make(2)], false).expect("append");
        let read = |p| log.read::<R>(p, context).expect("read");
        assert_eq!(read(0), (vec![make(1), make(2)], None));
        log.write(0, &[make(3)], true).expect("replace");
        assert_eq!(read(0), (vec![make(3)], None));
        // a crash mid-append: half a frame at the end
        let mut f = OpenOptions::new()
            .append(true)
            .open(log.path(0))
            .expect("open file");
        f.write_all(&[9, 0, 0, 0, b'T']).expect("torn write");
        let torn = LogDamage::TornTail { path: log.path(0) };
        assert_eq!(read(0), (vec![make(3)], Some(torn)));
        // a whole frame of garbage is damage, not a torn tail
        log.write(1, &[make(4)], false).expect("write");
        let mut f = OpenOptions::new()
            .append(true)
            .open(log.path(1))
            .expect("open file");
        f.write_all(&[2, 0, 0, 0, b'X', b'Y'])
            .expect("garbage frame");
        let (records, damage) = read(1);
        assert_eq!(records, vec![make(4)]);
        assert!(
            matches!(damage, Some(LogDamage::Undecodable { index: 1, .. })),
            "{damage:?}"
        );
        assert_eq!(log.partitions().expect("list"), vec![0, 1]);
        assert_eq!(read(5), (Vec::new(), None));
    }

    #[test]
    fn window_records_survive_appends_replacements_and_torn_tails() {
        survives_restarts(window_cut, &4);
    }

    #[test]
    fn signal_records_survive_appends_replacements_and_torn_tails() {
        survives_restarts(signal_record, &());
    }
}
