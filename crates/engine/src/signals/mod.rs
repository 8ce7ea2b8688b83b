//! Signals: restock recommendations and the hot-products ranking, derived from trend updates.
//!
//! Data path position: ingest → window → scoring → publish → **signals**.
//!
//! The signals component is a second consumer group (`{group_id}-signals`) reading the engine's
//! own trend-update topic and, optionally, an inventory topic. Reading the published updates
//! rather than sitting inside the scorer keeps the scorer's hot path unchanged, makes the
//! signals a function of what subscribers see, and lets the component scale and restart on its
//! own. With a catalog topic it also embeds product text (once per distinct text, kept in its
//! state) and publishes new-product forecasts ([`new_product`]). The input topics are joined per SKU, so they must be co-partitioned: same partition count
//! and the same key partitioner (trendcast's producer uses `murmur2_random`, the Java client's
//! default). State and the input offsets it reflects are saved together per partition in a
//! state table ([`table`], the same implementation as window state); offsets are committed only
//! after the table has taken the state.

pub mod forecast;
pub mod hot;
pub mod inventory;
pub mod new_product;
pub mod processor;
pub mod records;
pub mod restock;
pub mod state;
pub mod table;

use std::path::PathBuf;
use std::time::Duration;

pub use hot::{HotProducts, HotSettings};
pub use processor::{Signals, SignalsError};
pub use restock::{RestockPolicy, RestockSignal};

impl SignalsSettings {
    /// Folder of the signal state table's local logs under the checkpoint folder (one per
    /// consumer group, as the engine's own); `None` without one: state is then rebuilt from the
    /// start of the input topics on every start and offsets are never committed.
    pub fn state_dir(&self, checkpoint_dir: Option<&std::path::Path>) -> Option<PathBuf> {
        checkpoint_dir.map(|d| d.join(crate::checkpoint::checkpointer::folder_name(&self.group_id)))
    }
}

/// Signals settings (from `[signals]`, resolved).
#[derive(Debug, Clone)]
pub struct SignalsSettings {
    /// Consumer group of the component.
    pub group_id: String,
    /// Changelog topic of the signal state (handoff to another host); `None` = local files only.
    pub changelog_topic: Option<String>,
    /// Topic of trend updates read (the engine's output topic).
    pub updates_topic: String,
    /// Inventory snapshots; `None` = no restock signals.
    pub inventory_topic: Option<String>,
    /// Where restock signals go.
    pub restock_topic: String,
    /// Where rankings go; `None` = no ranking.
    pub hot_topic: Option<String>,
    /// Catalog entries (product text); `None` = no new-product forecasts.
    pub catalog_topic: Option<String>,
    /// Where new-product forecasts go.
    pub new_product_topic: String,
    /// Folder of the converted text model (with a catalog topic).
    pub text_model: Option<PathBuf>,
    /// Launch library written by `trendcast cold-start --write-library` (with a catalog topic).
    pub launch_library: Option<PathBuf>,
    /// Days of history over which a SKU's own forecast takes over from the text forecast.
    pub blend_days: f64,
    /// ONNX Runtime library (from `[scoring]`).
    pub onnxruntime_library: Option<PathBuf>,
    /// Days forecast for a product that has not sold yet.
    pub horizon_days: usize,
    /// Restock policy defaults.
    pub policy: RestockPolicy,
    /// Ranking settings.
    pub hot: HotSettings,
    /// How often a changed ranking is published.
    pub hot_interval: Duration,
    /// How often state is saved and offsets committed.
    pub checkpoint_interval: Duration,
    /// Longest accepted SKU in an inventory snapshot, bytes.
    pub max_sku_bytes: usize,
    /// Earliest accepted snapshot time, epoch ms.
    pub min_ts_ms: i64,
    /// How far past the wall clock a snapshot time may lie, ms.
    pub max_future_ms: i64,
}
