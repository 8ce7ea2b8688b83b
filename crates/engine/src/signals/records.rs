//! The records of the signals' state table: a SKU's whole signal state, or a cut with the next
//! input offsets. The same records go to the local log and to the changelog topic
//! ([`crate::state`]), so a partition moving to another host keeps its restock triggers,
//! rankings, embeddings and input offsets.
//!
//! Folding a partition's records in log order gives its state: the newest record of a SKU wins,
//! the newest cut gives the offsets. SKU records written after the last cut (a checkpoint torn
//! by a crash) are kept: signal state is idempotent under replay (snapshots are levels, updates
//! deduplicated by `seq`, texts by hash), so input replayed from the cut changes them no further.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::state::{PartitionSignals, SkuSignals};
use crate::state::TableRecord;

/// Key of cut records (not a valid SKU: SKUs are non-empty text without control characters).
const CUT_KEY: &[u8] = b"\x00cut";
/// Header of every record: "TSC" and the format version.
const MAGIC: &[u8; 4] = b"TSC\x01";

/// One changelog record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SignalRecord {
    /// A SKU's whole signal state.
    Sku {
        /// The SKU.
        sku: String,
        /// Its state (boxed: far larger than a cut).
        state: Box<SkuSignals>,
    },
    /// The end of one checkpoint of a partition.
    Cut {
        /// Next offset per input (as [`PartitionSignals::next`]).
        next: [i64; 3],
        /// Newest trend-update `as_of` seen in the partition.
        newest_as_of_ms: Option<i64>,
    },
}

fn encode(record: &SignalRecord) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    // plain structs into a Vec cannot fail; an empty body would fail decoding loudly
    if let Ok(body) = bincode::serde::encode_to_vec(record, bincode::config::standard()) {
        out.extend_from_slice(&body);
    }
    out
}

fn decode(bytes: &[u8]) -> Result<SignalRecord, String> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| format!("{} bytes without the TSC version 1 header", bytes.len()))?;
    let (record, used) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| e.to_string())?;
    if used != body.len() {
        return Err(format!("{} trailing bytes", body.len() - used));
    }
    Ok(record)
}

impl TableRecord for SignalRecord {
    type Context = ();
    type DecodeError = String;

    fn key(&self) -> &[u8] {
        match self {
            SignalRecord::Sku { sku, .. } => sku.as_bytes(),
            SignalRecord::Cut { .. } => CUT_KEY,
        }
    }

    fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    fn decode(bytes: &[u8], _: &()) -> Result<Self, String> {
        decode(bytes)
    }
}

/// The records of a checkpoint of `state`: the SKUs in `skus` (those it holds), then its cut.
pub fn checkpoint_records<'a>(
    state: &PartitionSignals,
    skus: impl IntoIterator<Item = &'a String>,
) -> Vec<SignalRecord> {
    let mut records: Vec<SignalRecord> = skus
        .into_iter()
        .filter_map(|sku| {
            let sku_state = state.skus.get(sku)?;
            Some(SignalRecord::Sku {
                sku: sku.clone(),
                state: Box::new(sku_state.clone()),
            })
        })
        .collect();
    records.push(SignalRecord::Cut {
        next: state.next,
        newest_as_of_ms: state.newest_as_of_ms,
    });
    records
}

/// Folds records in log order (see the module docs); `None` when there are none.
pub fn fold(records: impl IntoIterator<Item = SignalRecord>) -> Option<PartitionSignals> {
    let mut skus = HashMap::new();
    let mut cut = None;
    let mut any = false;
    for record in records {
        any = true;
        match record {
            SignalRecord::Sku { sku, state } => {
                skus.insert(sku, *state);
            }
            SignalRecord::Cut {
                next,
                newest_as_of_ms,
            } => cut = Some((next, newest_as_of_ms)),
        }
    }
    if !any {
        return None;
    }
    let mut state = PartitionSignals {
        skus,
        ..PartitionSignals::default()
    };
    if let Some((next, newest)) = cut {
        state.next = next;
        state.newest_as_of_ms = newest;
    }
    Some(state)
}

/// Input offsets a state has read past, summed: which of two copies of a partition's state is
/// further along.
pub fn progress(state: &PartitionSignals) -> i64 {
    state.next.iter().map(|n| (*n).max(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(seq: u64) -> Box<SkuSignals> {
        Box::new(SkuSignals {
            new_product_seq: seq,
            ..SkuSignals::default()
        })
    }

    #[test]
    fn records_round_trip_and_damage_is_refused() {
        let r = SignalRecord::Sku {
            sku: "A".into(),
            state: sku(3),
        };
        assert_eq!(decode(&encode(&r)), Ok(r));
        let cut = SignalRecord::Cut {
            next: [5, -1, 2],
            newest_as_of_ms: Some(7),
        };
        let bytes = encode(&cut);
        assert_eq!(decode(&bytes), Ok(cut));
        assert!(decode(&bytes[..3]).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
    }

    #[test]
    fn a_checkpoint_is_the_named_skus_it_holds_then_the_cut() {
        let mut state = PartitionSignals::default();
        state.skus.insert("A".into(), *sku(4));
        state.next = [9, 8, 7];
        let names = ["A".to_string(), "gone".to_string()];
        let records = checkpoint_records(&state, &names);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0].key(), b"A");
        assert_eq!(records[1].key(), CUT_KEY);
        assert_eq!(fold(records).expect("state").skus, state.skus);
    }

    #[test]
    fn newest_sku_record_and_cut_win() {
        let records = vec![
            SignalRecord::Sku {
                sku: "A".into(),
                state: sku(1),
            },
            SignalRecord::Cut {
                next: [10, -1, -1],
                newest_as_of_ms: Some(1),
            },
            SignalRecord::Sku {
                sku: "A".into(),
                state: sku(2),
            },
            SignalRecord::Sku {
                sku: "B".into(),
                state: sku(1),
            },
            SignalRecord::Cut {
                next: [20, 3, -1],
                newest_as_of_ms: Some(2),
            },
            // torn checkpoint: a SKU record after the last cut is kept (replay is idempotent)
            SignalRecord::Sku {
                sku: "C".into(),
                state: sku(1),
            },
        ];
        let state = fold(records).expect("state");
        assert_eq!(state.next, [20, 3, -1]);
        assert_eq!(state.newest_as_of_ms, Some(2));
        assert_eq!(state.skus["A"].new_product_seq, 2);
        assert_eq!(state.skus.len(), 3);
        assert_eq!(progress(&state), 23);
        assert_eq!(fold(Vec::new()), None);
    }
}
