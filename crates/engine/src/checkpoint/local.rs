//! The local checkpoint log: one append-only file per partition, for a fast restart on the
//! same host.
//!
//! Frames are a little-endian `u32` length and the encoded record. Each checkpoint appends its
//! records and fsyncs; every `compact_every` checkpoints the file is replaced (write, fsync,
//! rename) by one full snapshot. A crash can leave a torn last frame: reading stops there, and
//! since no cut follows it, nothing of that checkpoint is trusted beyond its own records' cuts.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::format::{decode, encode, storage, CheckpointError, Record};

/// Per-partition checkpoint files under one directory.
#[derive(Debug, Clone)]
pub struct LocalLog {
    dir: PathBuf,
}

fn io(what: String) -> impl Fn(std::io::Error) -> CheckpointError {
    storage(what)
}

impl LocalLog {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The file of `partition`.
    pub fn path(&self, partition: u16) -> PathBuf {
        self.dir.join(format!("p{partition}.log"))
    }

    /// Partitions with a log file.
    pub fn partitions(&self) -> Result<Vec<u16>, CheckpointError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(io(format!("listing {}", self.dir.display())))?;
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
    pub fn write(
        &self,
        partition: u16,
        records: &[Record],
        replace: bool,
    ) -> Result<(), CheckpointError> {
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
            .map_err(io(what.clone()))?;
        let mut out = BufWriter::new(file);
        for r in records {
            let bytes = encode(r);
            out.write_all(&(bytes.len() as u32).to_le_bytes())
                .and_then(|_| out.write_all(&bytes))
                .map_err(io(what.clone()))?;
        }
        let file = out
            .into_inner()
            .map_err(|e| io(what.clone())(e.into_error()))?;
        file.sync_data().map_err(io(what.clone()))?;
        if replace {
            std::fs::rename(&target, &path)
                .map_err(io(format!("renaming to {}", path.display())))?;
        }
        Ok(())
    }

    /// Reads the partition's records in order (none when there is no file). Reading stops at a
    /// torn or undecodable frame, which is reported with the records before it.
    pub fn read(
        &self,
        partition: u16,
        capacity: usize,
    ) -> Result<(Vec<Record>, Option<CheckpointError>), CheckpointError> {
        let path = self.path(partition);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(io(format!("reading {}", path.display())))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
            Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
        }
        let mut records = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let torn = || CheckpointError::Io {
                what: format!("reading {}", path.display()),
                message: "torn last frame (ignored)".into(),
            };
            if rest.len() < 4 {
                return Ok((records, Some(torn())));
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if rest.len() < 4 + len {
                return Ok((records, Some(torn())));
            }
            match decode(&rest[4..4 + len], capacity) {
                Ok(r) => records.push(r),
                Err(e) => return Ok((records, Some(e))),
            }
            rest = &rest[4 + len..];
        }
        Ok((records, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::PartitionCut;
    use crate::vocab::{EventTime, PerSource};

    fn cut(checkpoint: u64) -> Record {
        Record::Cut(PartitionCut {
            checkpoint,
            partition: 0,
            next_offsets: [checkpoint as i64, 0].into(),
            watermarks: PerSource::both(EventTime::from_millis(0)),
        })
    }

    #[test]
    fn appends_replaces_and_survives_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LocalLog::open(dir.path()).expect("open");
        log.write(0, &[cut(1)], false).expect("write");
        log.write(0, &[cut(2)], false).expect("append");
        assert_eq!(log.read(0, 4).expect("read").0, vec![cut(1), cut(2)]);
        log.write(0, &[cut(3)], true).expect("replace");
        assert_eq!(log.read(0, 4).expect("read").0, vec![cut(3)]);
        // a crash mid-append: half a frame at the end
        let mut f = OpenOptions::new()
            .append(true)
            .open(log.path(0))
            .expect("open file");
        f.write_all(&[9, 0, 0, 0, b'T']).expect("torn write");
        let (records, problem) = log.read(0, 4).expect("read");
        assert_eq!(records, vec![cut(3)]);
        assert!(problem.is_some());
        assert_eq!(log.partitions().expect("list"), vec![0]);
        assert!(log.read(5, 4).expect("missing file").0.is_empty());
    }
}
