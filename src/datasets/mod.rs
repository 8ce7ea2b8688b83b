//! Public event logs converted to trendcast's input events (for the demo, tests and replays).
//!
//! Each converter documents its cleaning rules; the output is the engine's own wire format
//! (`schemas/sales_event.schema.json`), so everything downstream is the same code as production.

pub mod online_retail;

use serde::{Deserialize, Serialize};

/// A sales event in wire form (one JSON message on the sales topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleRecord {
    /// SKU (also the message key).
    pub sku: String,
    /// Event time, epoch milliseconds.
    pub ts: i64,
    /// Units; negative = return or cancellation.
    pub qty: f64,
    /// Unit price, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<f64>,
    /// Order id, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

/// A click event in wire form (one JSON message on the clicks topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClickRecord {
    /// SKU (also the message key).
    pub sku: String,
    /// Event time, epoch milliseconds.
    pub ts: i64,
    /// "view", "add_to_cart" or "wishlist".
    pub kind: String,
    /// Session id, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Errors reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// File path.
        path: String,
        /// IO error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV row could not be read.
    #[error("{path}: CSV error: {source}")]
    Csv {
        /// File path.
        path: String,
        /// CSV error.
        #[source]
        source: csv::Error,
    },
}
