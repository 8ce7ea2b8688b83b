//! Signal state per input partition, and how messages change it.
//!
//! A partition's state is every SKU's latest inventory snapshot, latest demand forecast,
//! ranking entry and restock edge-trigger, plus the next offset to read on each input topic.
//! Its checkpoints hold both (`super::table`), so a restart resumes exactly where the state
//! stops: messages below those offsets are skipped when the group's committed offsets lag
//! behind (a commit that failed after the checkpoint was written). The one-file layout used
//! before state tables is still read once, to carry a partition over ([`load_legacy`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::forecast::{DemandForecast, ForecastError};
use super::hot::HotEntry;
use super::inventory::InventoryLevel;
use super::restock::{recommend, RestockPolicy, RestockSignal, Trigger};
use crate::publish::TrendUpdate;

/// Which input topic a message came from (index into the offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalInput {
    /// The engine's trend updates.
    Updates = 0,
    /// Inventory snapshots.
    Inventory = 1,
    /// Catalog entries (product text).
    Catalog = 2,
}

/// A SKU's product text, embedded once per distinct text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextState {
    /// FNV-1a hash of the embedded text: the same text is never embedded again.
    pub hash: u64,
    /// Category from the catalog.
    pub category: String,
    /// The normalised embedding.
    pub embedding: Vec<f32>,
}

/// FNV-1a, 64 bit: a stable hash (unlike `std`'s, the same across builds) of product text.
pub fn text_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Everything kept for one SKU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkuSignals {
    /// Latest inventory snapshot.
    pub inventory: Option<InventoryLevel>,
    /// Latest demand forecast (kept only when restock signals are on).
    pub forecast: Option<DemandForecast>,
    /// Latest trend update's ranking entry.
    pub hot: Option<HotEntry>,
    /// Restock edge-trigger.
    pub trigger: Trigger,
    /// Product text and its embedding (with a catalog topic).
    pub text: Option<TextState>,
    /// `as_of` of the first trend update seen (the launch is the bucket before it).
    pub first_as_of_ms: Option<i64>,
    /// New-product forecasts published for this SKU.
    pub new_product_seq: u64,
}

/// One partition's signal state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionSignals {
    /// Next offset to read per input (`-1` = none read yet).
    pub next: [i64; 3],
    /// Per-SKU state.
    pub skus: HashMap<String, SkuSignals>,
    /// Newest trend-update `as_of` seen in this partition (event time of text forecasts).
    pub newest_as_of_ms: Option<i64>,
}

impl Default for PartitionSignals {
    fn default() -> Self {
        Self {
            next: [-1, -1, -1],
            skus: HashMap::new(),
            newest_as_of_ms: None,
        }
    }
}

/// What applying one message did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    /// The message was a duplicate or older than what is held: nothing changed.
    pub stale: bool,
    /// The ranking entry changed.
    pub ranking_changed: bool,
    /// A restock signal to publish.
    pub signal: Option<RestockSignal>,
}

impl PartitionSignals {
    /// Whether the message at `offset` of `input` is already reflected in this state.
    pub fn seen(&self, input: SignalInput, offset: i64) -> bool {
        offset < self.next[input as usize]
    }

    /// Records that the message at `offset` of `input` was applied (or rejected).
    pub fn advance(&mut self, input: SignalInput, offset: i64) {
        let next = &mut self.next[input as usize];
        *next = (*next).max(offset + 1);
    }

    /// Applies a trend update. With `policy` (restock on) the forecast is kept and the SKU's
    /// restock state re-evaluated.
    pub fn on_update(
        &mut self,
        update: &TrendUpdate,
        policy: Option<&RestockPolicy>,
    ) -> Result<Applied, ForecastError> {
        let sku = self.skus.entry(update.sku.clone()).or_default();
        if sku.hot.as_ref().is_some_and(|h| h.seq >= update.seq) {
            return Ok(Applied {
                stale: true,
                ..Applied::default()
            });
        }
        let forecast = match policy {
            Some(_) => Some(DemandForecast::from_update(update)?),
            None => None,
        };
        let entry = HotEntry::from_update(update);
        if let Some(e) = &entry {
            sku.first_as_of_ms.get_or_insert(e.as_of_ms);
            self.newest_as_of_ms = Some(self.newest_as_of_ms.unwrap_or(e.as_of_ms).max(e.as_of_ms));
        }
        let ranking_changed = entry != sku.hot;
        sku.hot = entry;
        sku.forecast = forecast;
        let signal = policy.and_then(|p| evaluate(&update.sku, sku, p));
        Ok(Applied {
            stale: false,
            ranking_changed,
            signal,
        })
    }

    /// Applies an inventory snapshot (an older snapshot than the one held changes nothing).
    pub fn on_inventory(
        &mut self,
        sku_name: &str,
        level: InventoryLevel,
        policy: &RestockPolicy,
    ) -> Applied {
        let sku = self.skus.entry(sku_name.to_string()).or_default();
        if sku
            .inventory
            .as_ref()
            .is_some_and(|i| i.ts_ms > level.ts_ms)
        {
            return Applied {
                stale: true,
                ..Applied::default()
            };
        }
        sku.inventory = Some(level);
        Applied {
            signal: evaluate(sku_name, sku, policy),
            ..Applied::default()
        }
    }
}

/// Re-evaluates a SKU holding both a snapshot and a forecast.
fn evaluate(name: &str, sku: &mut SkuSignals, policy: &RestockPolicy) -> Option<RestockSignal> {
    let (Some(inventory), Some(forecast)) = (&sku.inventory, &sku.forecast) else {
        return None;
    };
    let rec = recommend(inventory, forecast, policy);
    let decision = sku.trigger.decide(&rec, policy.material_change)?;
    Some(RestockSignal::new(
        name,
        &rec,
        inventory,
        forecast,
        decision,
        sku.trigger.seq,
    ))
}

/// A signal state file of the layout before state tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading failed.
    #[error("signal state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a signal state file of a known version, or is damaged.
    #[error("signal state {path} is damaged or of an unknown version: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Version 3 of the one-file-per-partition layout, written before signal state moved into a
/// state table (`crate::state`); read once, when a partition has no table log yet.
const MAGIC: &[u8; 4] = b"TCS\x03";
/// Version 2 files (before trend calls in the ranking) cannot be read.
const MAGIC_V2: &[u8; 4] = b"TCS\x02";

/// The file of `partition` in `dir` in the layout before state tables.
pub fn legacy_file_of(dir: &Path, partition: u16) -> PathBuf {
    dir.join(format!("partition-{partition}.bin"))
}

/// Reads the state of `partition` from a file of the layout before state tables; `Ok(None)`
/// when there is none.
pub fn load_legacy(dir: &Path, partition: u16) -> Result<Option<PartitionSignals>, StateFileError> {
    let path = legacy_file_of(dir, partition);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateFileError::Io { path, source }),
    };
    let damaged = |reason: String| StateFileError::Damaged {
        path: path.clone(),
        reason,
    };
    if bytes.starts_with(MAGIC_V2) {
        return Err(damaged(format!(
            "written by a trendcast before version 3 of the signal state; delete {} to start this \
             partition's signals empty (rankings refill from new trend updates; restock triggers \
             re-arm, so one reorder per SKU below its point may repeat)",
            path.display()
        )));
    }
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| damaged("no TCS header".into()))?;
    let (state, used): (PartitionSignals, usize) =
        bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(|e| damaged(e.to_string()))?;
    if used != body.len() {
        return Err(damaged(format!("{} trailing bytes", body.len() - used)));
    }
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Direction, HorizonStep, Trend};

    fn update(seq: u64, median: f32) -> TrendUpdate {
        TrendUpdate {
            sku: "A".into(),
            as_of: "2011-12-01T00:00:00Z".into(),
            model: "m@1".into(),
            seq,
            horizon: vec![HorizonStep {
                start: "2011-12-01T00:00:00Z".into(),
                end: "2011-12-02T00:00:00Z".into(),
                quantiles: [("0.1", 0.0), ("0.5", median), ("0.9", 2.0 * median)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                mean: None,
            }],
            total: None,
            lead_time_total: None,
            trend: Trend {
                direction: Direction::Rising,
                strength: 0.5,
                p_up: 0.7,
            },
        }
    }

    fn stock(ts_ms: i64, on_hand: f64) -> InventoryLevel {
        InventoryLevel {
            ts_ms,
            on_hand,
            on_order: 0.0,
            lead_time_days: Some(1.0),
            service_level: Some(0.5),
        }
    }

    #[test]
    fn duplicates_and_older_messages_change_nothing() {
        let policy = RestockPolicy::default();
        let mut p = PartitionSignals::default();
        let first = p.on_update(&update(2, 10.0), Some(&policy)).unwrap();
        assert!(!first.stale && first.ranking_changed && first.signal.is_none());
        let before = p.clone();
        assert!(p.on_update(&update(2, 99.0), Some(&policy)).unwrap().stale);
        assert!(p.on_update(&update(1, 99.0), Some(&policy)).unwrap().stale);
        assert_eq!(p, before);
        // mean over one day: 0.3·0 + 0.4·10 + 0.3·20 = 10; 3 on hand → reorder
        let t = 1_322_697_600_000;
        let s = p.on_inventory("A", stock(t, 3.0), &policy).signal.unwrap();
        // z = 0: ROP = 10 over the 1-day lead time; S = 10 + 7 tail days of 10 = 80; 80 − 3 = 77
        assert_eq!((s.seq, s.reorder_point, s.order_qty), (1, 10.0, 77.0));
        assert!(p.on_inventory("A", stock(t - 1, 500.0), &policy).stale);
        assert_eq!(p.skus["A"].inventory.as_ref().unwrap().on_hand, 3.0);
    }

    #[test]
    fn legacy_state_files_are_read_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartitionSignals::default();
        p.on_update(&update(1, 4.0), None).unwrap();
        p.advance(SignalInput::Updates, 41);
        let body = bincode::serde::encode_to_vec(&p, bincode::config::standard()).unwrap();
        std::fs::write(
            legacy_file_of(dir.path(), 3),
            [MAGIC.as_slice(), &body].concat(),
        )
        .unwrap();
        let back = load_legacy(dir.path(), 3).unwrap().unwrap();
        assert_eq!(back, p);
        assert!(back.seen(SignalInput::Updates, 41));
        assert!(!back.seen(SignalInput::Inventory, 0));
        assert!(load_legacy(dir.path(), 4).unwrap().is_none());
        std::fs::write(legacy_file_of(dir.path(), 5), b"TCS\x01\xff\xff").unwrap();
        assert!(matches!(
            load_legacy(dir.path(), 5),
            Err(StateFileError::Damaged { .. })
        ));
    }
}
