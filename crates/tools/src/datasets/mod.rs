//! Public event logs converted to trendcast's input events (for the demo, tests and replays).
//!
//! Each converter documents its cleaning rules; the output is the engine's own wire format
//! (`schemas/sales_event.schema.json`), so everything downstream is the same code as production.

pub mod catalog;
pub mod event_log;
pub mod online_retail;
pub mod retailrocket;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
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

/// One event of either kind, in wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventRecord {
    /// For the sales topic.
    Sale(SaleRecord),
    /// For the clicks topic.
    Click(ClickRecord),
}

impl EventRecord {
    /// The SKU (message key).
    pub fn sku(&self) -> &str {
        match self {
            EventRecord::Sale(s) => &s.sku,
            EventRecord::Click(c) => &c.sku,
        }
    }

    /// Event time, epoch milliseconds.
    pub fn ts(&self) -> i64 {
        match self {
            EventRecord::Sale(s) => s.ts,
            EventRecord::Click(c) => c.ts,
        }
    }

    /// A copy with another SKU (used to synthesise more SKUs from real ones).
    pub fn with_sku(&self, sku: String) -> EventRecord {
        match self {
            EventRecord::Sale(s) => EventRecord::Sale(SaleRecord { sku, ..s.clone() }),
            EventRecord::Click(c) => EventRecord::Click(ClickRecord { sku, ..c.clone() }),
        }
    }
}

/// Opens a file for reading, decompressing it when its name ends in `.gz`.
pub fn open_text(path: &Path) -> Result<Box<dyn Read>, DatasetError> {
    let file = File::open(path).map_err(|source| DatasetError::Open {
        path: path.display().to_string(),
        source,
    })?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Calls `f` for every row of the CSV at `path` (gzipped or not): `Some(row)` for a row that
/// decodes as `T`, `None` for a malformed one. An I/O error ends the read with an error.
/// Returns the number of rows read.
pub fn for_each_csv_row<T: serde::de::DeserializeOwned>(
    path: &Path,
    mut f: impl FnMut(Option<T>),
) -> Result<u64, DatasetError> {
    let mut csv = csv::Reader::from_reader(open_text(path)?);
    let mut rows = 0;
    for row in csv.deserialize::<T>() {
        rows += 1;
        match row {
            Ok(r) => f(Some(r)),
            Err(e) if e.is_io_error() => {
                return Err(DatasetError::Csv {
                    path: path.display().to_string(),
                    source: e,
                })
            }
            Err(_) => f(None),
        }
    }
    Ok(rows)
}

/// Errors reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// File path.
        path: String,
        /// IO error.
        #[source]
        source: std::io::Error,
    },
    /// A line of an event log is not a valid event.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// File path.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The format of a file could not be recognised.
    #[error("{path}: {reason}")]
    Format {
        /// File path.
        path: String,
        /// What was expected.
        reason: String,
    },
    /// A CSV row could not be read.
    #[error("{path}: CSV error")]
    Csv {
        /// File path.
        path: String,
        /// CSV error.
        #[source]
        source: csv::Error,
    },
}
