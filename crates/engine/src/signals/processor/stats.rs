//! The component's counters (bounded labels only: never a SKU).

use crate::telemetry::stats::{
    ReadableCounter, HOT_RANKINGS, NEW_PRODUCT_FORECASTS, RESTOCK_SIGNALS, SIGNAL_INPUTS,
    SIGNAL_MISROUTED, SIGNAL_REJECTS, TEXT_EMBEDDINGS,
};

/// Counters of the component (bounded labels only).
#[derive(Debug)]
pub struct SignalStats {
    /// Trend updates read.
    pub updates: ReadableCounter,
    /// Inventory snapshots read.
    pub inventory: ReadableCounter,
    /// Messages rejected to the dead-letter topic.
    pub rejected: ReadableCounter,
    /// Reorder signals enqueued.
    pub reorders: ReadableCounter,
    /// Clear signals enqueued.
    pub clears: ReadableCounter,
    /// Rankings enqueued.
    pub rankings: ReadableCounter,
    /// Catalog entries read.
    pub catalog: ReadableCounter,
    /// Texts embedded.
    pub embeddings: ReadableCounter,
    /// Catalog entries whose text was already embedded.
    pub embeddings_reused: ReadableCounter,
    /// New-product forecasts enqueued.
    pub new_products: ReadableCounter,
    /// Messages for SKUs whose state partition another instance owns (skipped).
    pub misrouted: ReadableCounter,
}

impl SignalStats {
    pub(crate) fn new() -> Self {
        Self {
            updates: ReadableCounter::new(metrics::counter!(SIGNAL_INPUTS, "input" => "updates")),
            inventory: ReadableCounter::new(
                metrics::counter!(SIGNAL_INPUTS, "input" => "inventory"),
            ),
            rejected: ReadableCounter::new(metrics::counter!(SIGNAL_REJECTS)),
            reorders: ReadableCounter::new(
                metrics::counter!(RESTOCK_SIGNALS, "action" => "reorder"),
            ),
            clears: ReadableCounter::new(metrics::counter!(RESTOCK_SIGNALS, "action" => "clear")),
            rankings: ReadableCounter::new(metrics::counter!(HOT_RANKINGS)),
            catalog: ReadableCounter::new(metrics::counter!(SIGNAL_INPUTS, "input" => "catalog")),
            embeddings: ReadableCounter::new(
                metrics::counter!(TEXT_EMBEDDINGS, "outcome" => "computed"),
            ),
            embeddings_reused: ReadableCounter::new(
                metrics::counter!(TEXT_EMBEDDINGS, "outcome" => "reused"),
            ),
            new_products: ReadableCounter::new(metrics::counter!(NEW_PRODUCT_FORECASTS)),
            misrouted: ReadableCounter::new(metrics::counter!(SIGNAL_MISROUTED)),
        }
    }
}
