//! The checkpoint record format: a version header, then `bincode`.
//!
//! Every record starts with the 4 bytes `TCK` + version. Version 3 is written: version 2 with
//! one more kind of record, the partition's online interval calibration (appended, so version 2
//! bytes decode as the same records). Version 1 (the first window layout, which had a per-close
//! revision counter in place of the count of applied events and no partition tag) is still read
//! and migrated. Decoding never trusts its input:
//! sizes are bounded, windows are validated against the configured ring capacity, and every
//! failure is an error, never a panic.

use serde::{Deserialize, Serialize};

use crate::scoring::calibration::CalibrationState;
use crate::state::{StorageError, TableRecord};
use crate::vocab::{EventTime, PerSource};
use crate::window::{BucketIndex, SkuWindow, WindowCheckError};

/// The version written.
pub const FORMAT_VERSION: u8 = 3;

const MAGIC: &[u8; 3] = b"TCK";

/// Largest record accepted (a window of 10,000 buckets is 240 KB).
const MAX_RECORD_BYTES: usize = 1 << 20;

/// One SKU's window as of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Checkpoint number (per partition, increasing).
    pub checkpoint: u64,
    /// Input partition.
    pub partition: u16,
    /// Next offsets (sales, clicks) of the checkpoint: the window reflects every message below.
    pub cut: PerSource<i64>,
    /// The SKU.
    pub sku: String,
    /// Its window.
    pub window: SkuWindow,
}

/// The end of one partition's checkpoint: what to resume from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionCut {
    /// Checkpoint number (per partition, increasing).
    pub checkpoint: u64,
    /// Input partition.
    pub partition: u16,
    /// Next offsets to consume (sales, clicks); -1 = nothing consumed yet.
    pub next_offsets: PerSource<i64>,
    /// Largest admitted event time per source of this partition (lateness state);
    /// `EventTime::MIN` when none.
    pub watermarks: PerSource<EventTime>,
}

/// One record of a checkpoint log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// A SKU's window.
    Window(WindowRecord),
    /// A SKU was evicted (its window could no longer change a forecast).
    Removed {
        /// Checkpoint number.
        checkpoint: u64,
        /// Input partition.
        partition: u16,
        /// The SKU.
        sku: String,
    },
    /// The checkpoint of a partition is complete.
    Cut(PartitionCut),
    /// The partition's online interval widths (`scoring::calibration`), as of the checkpoint.
    Calibration {
        /// Checkpoint number.
        checkpoint: u64,
        /// Input partition.
        partition: u16,
        /// The widths and what they have seen.
        state: CalibrationState,
    },
}

impl Record {
    /// The key on the changelog topic: the SKU, or a reserved key for cuts (never a valid SKU,
    /// which is non-blank text).
    pub fn key(&self) -> &[u8] {
        match self {
            Record::Window(w) => w.sku.as_bytes(),
            Record::Removed { sku, .. } => sku.as_bytes(),
            Record::Cut(_) => b"\0trendcast-cut",
            Record::Calibration { .. } => b"\0trendcast-calibration",
        }
    }

    /// The input partition the record belongs to.
    pub fn partition(&self) -> u16 {
        match self {
            Record::Window(w) => w.partition,
            Record::Removed { partition, .. } => *partition,
            Record::Cut(c) => c.partition,
            Record::Calibration { partition, .. } => *partition,
        }
    }
}

/// A record that could not be decoded or does not fit the configuration.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Too short, wrong magic, or an unknown version.
    #[error("not a trendcast checkpoint record: {0}")]
    Header(String),
    /// `bincode` refused the body.
    #[error("checkpoint record (version {version}) is malformed: {message}")]
    Body {
        /// Format version.
        version: u8,
        /// Decoder message.
        message: String,
    },
    /// A decoded window is unusable.
    #[error("checkpointed window of SKU {sku:?} refused: {source}")]
    Window {
        /// The SKU.
        sku: String,
        /// What is wrong.
        #[source]
        source: WindowCheckError,
    },
    /// Restored windows could not be handed to the scorer: it has stopped.
    #[error("the scorer has stopped: restored windows can no longer be scored")]
    ScorerGone,
    /// Reading or writing checkpoint storage failed.
    #[error("checkpoint storage {what}: {message}")]
    Io {
        /// What was being done.
        what: String,
        /// Underlying error.
        message: String,
    },
}

impl From<StorageError> for CheckpointError {
    fn from(e: StorageError) -> Self {
        CheckpointError::Io {
            what: e.what,
            message: e.message,
        }
    }
}

impl TableRecord for Record {
    /// Ring slots a restored window must have.
    type Context = usize;
    type DecodeError = CheckpointError;

    fn key(&self) -> &[u8] {
        Record::key(self)
    }

    fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    fn decode(bytes: &[u8], capacity: &usize) -> Result<Self, CheckpointError> {
        decode(bytes, *capacity)
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes `record` in the current version.
pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    // Encoding plain structs into a Vec cannot fail; an empty body would fail decoding loudly.
    if let Ok(body) = bincode::serde::encode_to_vec(record, config()) {
        out.extend_from_slice(&body);
    }
    out
}

/// Decodes a record of any supported version and validates its window against `capacity`
/// ring slots.
pub fn decode(bytes: &[u8], capacity: usize) -> Result<Record, CheckpointError> {
    if bytes.len() < 4 || &bytes[..3] != MAGIC {
        return Err(CheckpointError::Header(format!(
            "{} bytes without the TCK header",
            bytes.len()
        )));
    }
    let version = bytes[3];
    let body = &bytes[4..];
    let malformed = |e: bincode::error::DecodeError| CheckpointError::Body {
        version,
        message: e.to_string(),
    };
    let record = match version {
        2 | 3 => {
            let (r, used): (Record, usize) =
                bincode::serde::decode_from_slice(body, config()).map_err(malformed)?;
            trailing(version, used, body.len())?;
            r
        }
        1 => {
            let (r, used): (v1::Record, usize) =
                bincode::serde::decode_from_slice(body, config()).map_err(malformed)?;
            trailing(version, used, body.len())?;
            r.migrate()
        }
        v => {
            return Err(CheckpointError::Header(format!(
                "version {v} is newer than this build reads (up to {FORMAT_VERSION})"
            )))
        }
    };
    if let Record::Calibration { state, .. } = &record {
        state.check().map_err(|why| CheckpointError::Body {
            version,
            message: format!("calibration state refused: {why}"),
        })?;
    }
    if let Record::Window(w) = &record {
        w.window
            .validate(capacity)
            .map_err(|source| CheckpointError::Window {
                sku: w.sku.clone(),
                source,
            })?;
        if w.window.partition() != w.partition {
            return Err(CheckpointError::Body {
                version,
                message: "window and record disagree on the partition".into(),
            });
        }
    }
    Ok(record)
}

fn trailing(version: u8, used: usize, len: usize) -> Result<(), CheckpointError> {
    if used != len {
        return Err(CheckpointError::Body {
            version,
            message: format!("{} bytes after the record", len - used),
        });
    }
    Ok(())
}

/// Version 1: the first layout, kept so checkpoints written by it still restore.
pub mod v1 {
    use serde::{Deserialize, Serialize};

    use super::{BucketIndex, PartitionCut, SkuWindow};
    use crate::vocab::EngineMs;
    use crate::window::BucketFeatures;

    /// The version-1 window: a revision counter per close, no count of applied events, no
    /// partition tag.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct SkuWindowV1 {
        /// Newest bucket per source.
        pub heads: [BucketIndex; 2],
        /// Oldest unscored change.
        pub dirty_from: BucketIndex,
        /// Bucket of the last scoring.
        pub scored_close: BucketIndex,
        /// Scorings at `scored_close`.
        pub revision: u32,
        /// Engine-clock time of the last scoring.
        pub last_scored_ms: i64,
        /// The ring.
        pub ring: Box<[BucketFeatures]>,
    }

    /// A version-1 record.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Record {
        /// A window.
        Window {
            /// Checkpoint number.
            checkpoint: u64,
            /// Partition.
            partition: u16,
            /// Next offsets.
            cut: [i64; 2],
            /// SKU.
            sku: String,
            /// Window.
            window: SkuWindowV1,
        },
        /// An eviction.
        Removed {
            /// Checkpoint number.
            checkpoint: u64,
            /// Partition.
            partition: u16,
            /// SKU.
            sku: String,
        },
        /// A cut (unchanged in version 2).
        Cut(PartitionCut),
    }

    impl Record {
        /// The same record in the current version. Version 1 did not count applied events, so
        /// the count restarts at 0 while the scored bucket is kept: sequence numbers still grow,
        /// because a window is never scored at an older bucket than its last.
        pub fn migrate(self) -> super::Record {
            match self {
                Record::Window {
                    checkpoint,
                    partition,
                    cut,
                    sku,
                    window,
                } => super::Record::Window(super::WindowRecord {
                    checkpoint,
                    partition,
                    cut: cut.into(),
                    sku,
                    window: SkuWindow::from_v1(
                        window.heads.into(),
                        window.dirty_from,
                        window.scored_close,
                        EngineMs::from_millis(window.last_scored_ms),
                        window.ring,
                        partition,
                    ),
                }),
                Record::Removed {
                    checkpoint,
                    partition,
                    sku,
                } => super::Record::Removed {
                    checkpoint,
                    partition,
                    sku,
                },
                Record::Cut(c) => super::Record::Cut(c),
            }
        }

        /// Encodes in version 1 (for migration tests).
        pub fn encode(&self) -> Vec<u8> {
            let mut out = b"TCK\x01".to_vec();
            if let Ok(body) = bincode::serde::encode_to_vec(self, super::config()) {
                out.extend_from_slice(&body);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::EventBody;

    fn window(capacity: usize, partition: u16) -> SkuWindow {
        let mut w = SkuWindow::new(capacity, partition);
        w.apply(
            100,
            &EventBody::Sale {
                qty: 3.0,
                unit_price: Some(2.5),
            },
        );
        w
    }

    #[test]
    fn round_trips_every_record_kind() {
        let records = vec![
            Record::Window(WindowRecord {
                checkpoint: 7,
                partition: 3,
                cut: [10, 20].into(),
                sku: "85123A".into(),
                window: window(30, 3),
            }),
            Record::Removed {
                checkpoint: 7,
                partition: 3,
                sku: "old".into(),
            },
            Record::Cut(PartitionCut {
                checkpoint: 7,
                partition: 3,
                next_offsets: [10, -1].into(),
                watermarks: [EventTime::from_millis(1_000), EventTime::MIN].into(),
            }),
        ];
        for r in records {
            assert_eq!(decode(&encode(&r), 30).expect("decodes"), r);
        }
    }

    #[test]
    fn calibration_round_trips_bytes_and_refuses_damage() {
        // A fresh state holds NaN coverages ("none yet"), so records compare by their bytes.
        let fresh = Record::Calibration {
            checkpoint: 2,
            partition: 1,
            state: CalibrationState::new(14),
        };
        let bytes = encode(&fresh);
        assert_eq!(encode(&decode(&bytes, 30).expect("decodes")), bytes);
        let mut bad = CalibrationState::new(14);
        bad.tracks[3].theta[1] = f64::INFINITY;
        let damaged = encode(&Record::Calibration {
            checkpoint: 2,
            partition: 1,
            state: bad,
        });
        assert!(matches!(
            decode(&damaged, 30),
            Err(CheckpointError::Body { .. })
        ));
    }

    #[test]
    fn fuzz_crash_48e5_is_refused_or_round_trips() {
        // The input cargo-fuzz found (a calibration record with NaN coverages).
        let hex = "54434b020309030467000000000000000000000000000000000000000000000000000000\
                   000000000000000000400000000000000000000000000000000000000000000000000000\
                   850000000000000000000000000000000000000000000000000000000000ffd800000000\
                   000000000000000000000000000000000000000000000000000000000000000000000000\
                   00000000fffd0000d800ffffff020000000000000000000000000000005c000000000000\
                   00000000000000000000000000000000000000000000006500000000";
        let hex: String = hex.split_whitespace().collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        assert_eq!(bytes.len(), 208);
        if let Ok(record) = decode(&bytes, 30) {
            let again = encode(&decode(&encode(&record), 30).expect("re-encodes"));
            assert_eq!(again, encode(&record));
        }
    }

    #[test]
    fn migrates_version_1() {
        let w = window(30, 2);
        let old = v1::Record::Window {
            checkpoint: 1,
            partition: 2,
            cut: [5, 6],
            sku: "A".into(),
            window: v1::SkuWindowV1 {
                heads: [100, i64::MIN],
                dirty_from: 100,
                scored_close: i64::MIN,
                revision: 4,
                last_scored_ms: i64::MIN,
                // slot s holds the bucket b of 71..=100 with b mod 30 = s
                ring: (0..30i64)
                    .map(|s| w.bucket((71..=100).find(|b| b % 30 == s).unwrap_or(0)))
                    .collect(),
            },
        };
        let Record::Window(got) = decode(&old.encode(), 30).expect("v1 decodes") else {
            panic!("a window")
        };
        assert_eq!(got.window.bucket(100), w.bucket(100));
        assert_eq!(got.window.partition(), 2);
        assert_eq!(got.window.dirty_from(), Some(100));
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        let good = encode(&Record::Window(WindowRecord {
            checkpoint: 1,
            partition: 0,
            cut: [1, 1].into(),
            sku: "A".into(),
            window: window(30, 0),
        }));
        assert!(matches!(decode(b"", 30), Err(CheckpointError::Header(_))));
        assert!(matches!(
            decode(b"TCK\x09abc", 30),
            Err(CheckpointError::Header(_))
        ));
        assert!(matches!(
            decode(&good[..good.len() - 3], 30),
            Err(CheckpointError::Body { .. })
        ));
        assert!(matches!(
            decode(&good, 31),
            Err(CheckpointError::Window { .. })
        ));
        let mut extra = good.clone();
        extra.push(0);
        assert!(matches!(
            decode(&extra, 30),
            Err(CheckpointError::Body { .. })
        ));
    }
}
