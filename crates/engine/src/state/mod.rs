//! Keyed per-partition state tables: the one way the engine keeps state that must survive a
//! crash, a restart or a move of a partition to another host.
//!
//! Position in the data path: beside it, below [`crate::checkpoint`] (window state) and
//! [`crate::signals`] (restock triggers, rankings, embeddings), which both keep their state here.
//!
//! A table holds, per input partition, one record per key (a SKU) and cut records that say up to
//! which input offsets the keys' records reflect. It lives in two places:
//! - a local log ([`PartitionLog`]): one append-only file per partition, fsynced on every
//!   checkpoint and rewritten as one snapshot every so often, for a fast restart on the same host;
//! - a changelog topic ([`ChangelogTopic`]): table partition `p` on topic partition `p`, keyed by
//!   the record's key, best compacted, for a takeover by another host.
//!
//! Reading either gives the records in the order written; the owner folds them (the newest
//! record of a key wins, the newest cut gives the offsets) because what a record after the last
//! cut means is the owner's to say: a window record carries its own cut, a signal record is
//! idempotent under replay. Why one implementation: framing, fsync-and-rename, torn tails,
//! reading a changelog partition to its end on a broker that reports short high watermarks —
//! these were written twice before and must behave the same for every kind of state.

pub mod changelog;
pub mod log;

pub use changelog::{read_to_end, ChangelogTopic};
pub use log::{LogDamage, PartitionLog};

/// One record of a state table: what it is keyed by, and its bytes.
pub trait TableRecord: Sized {
    /// What decoding needs besides the bytes (a window's ring capacity; `()` for none).
    type Context: ?Sized;
    /// Why bytes are not a record of this table.
    type DecodeError: std::fmt::Display;

    /// The key on the changelog topic: the SKU, or a reserved key for cuts (never a valid
    /// SKU, which is non-blank text without control characters).
    fn key(&self) -> &[u8];
    /// The record's bytes, with a header naming the format and its version.
    fn encode(&self) -> Vec<u8>;
    /// A record from bytes written by [`TableRecord::encode`] of this or an earlier version.
    fn decode(bytes: &[u8], context: &Self::Context) -> Result<Self, Self::DecodeError>;
}

/// Reading or writing state storage (files, the changelog topic) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state storage {what}: {message}")]
pub struct StorageError {
    /// What was being done.
    pub what: String,
    /// The underlying error.
    pub message: String,
}

/// Maps any error met while doing `what` to a [`StorageError`].
pub fn storage<E: std::fmt::Display>(what: String) -> impl Fn(E) -> StorageError {
    move |e| StorageError {
        what: what.clone(),
        message: e.to_string(),
    }
}

/// Where a partition's restored state came from (window state and signal state alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    /// Nothing was found: the partition starts empty.
    None,
    /// This host's checkpoint files.
    Local,
    /// The changelog topic (state handed over from another host).
    Changelog,
}

impl StateSource {
    /// The name logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            StateSource::None => "none",
            StateSource::Local => "local",
            StateSource::Changelog => "changelog",
        }
    }
}

impl std::fmt::Display for StateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
