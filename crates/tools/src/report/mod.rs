//! `trendcast report`: a trend report for people, as one self-contained HTML file (inline SVG,
//! nothing fetched at view time) and the same tables as CSV.
//!
//! A report is made from what the engine publishes, never from a second forecasting path: it
//! reads the topics ([`collect`]), either of a running engine or of the embedded broker that
//! `trendcast report --events LOG` replays a log through with the full engine (the demo's path).
//! So what a merchandiser reads is what subscribers received.
//!
//! [`tables`] turns the inputs into the report's tables: rising and falling products (the latest
//! calls, with the last eight weeks of actuals and the forecast fan), category trends (sums over
//! SKUs, with the definition of `docs/TRENDS.md`), new products (text-based forecasts and their
//! nearest neighbours), restock alerts, and a calibration panel ([`calibration`]: how the calls
//! and intervals made at past weekly origins turned out). [`html`] and [`csv_out`] render them.

pub mod calibration;
pub mod collect;
pub mod csv_out;
pub mod html;
mod svg;
pub mod tables;

use std::collections::{BTreeMap, HashMap};

use trendcast_engine::catalog::CatalogEntry;
use trendcast_engine::publish::{Direction, TrendUpdate};
use trendcast_engine::signals::new_product::NewProductForecast;
use trendcast_engine::signals::RestockSignal;
use trendcast_engine::vocab::EventTime;
use trendcast_engine::window::BucketSpec;

pub use tables::{build, Report, ReportOptions};

/// A product's title and category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductText {
    /// Title (or description).
    pub title: String,
    /// Category ("" when none).
    pub category: String,
}

impl ProductText {
    /// The text of a catalog entry.
    pub fn from_entry(entry: &CatalogEntry) -> Self {
        let title = if entry.title.trim().is_empty() {
            entry.description.clone()
        } else {
            entry.title.clone()
        };
        ProductText {
            title,
            category: entry.category.clone(),
        }
    }
}

/// What the calibration panel keeps of one published update.
#[derive(Debug, Clone, PartialEq)]
pub struct PastCall {
    /// Start of the first forecast bucket (the update's `as_of`), epoch ms.
    pub as_of_ms: i64,
    /// The call.
    pub direction: Direction,
    /// Its probability of a rise.
    pub p_up: f64,
    /// Expected units per horizon step.
    pub expected: Vec<f64>,
    /// q0.1 per step (NaN where the model has none).
    pub low: Vec<f32>,
    /// q0.9 per step (NaN where the model has none).
    pub high: Vec<f32>,
}

/// Everything a report is made from.
#[derive(Debug, Clone)]
pub struct ReportInputs {
    /// The engine's bucket (actuals are summed per bucket).
    pub bucket: BucketSpec,
    /// Units sold per SKU and bucket index (returns included, as the engine counts them).
    pub units: HashMap<String, BTreeMap<i64, f64>>,
    /// Earliest and latest sale, epoch ms.
    pub span_ms: Option<(i64, i64)>,
    /// Sales events read.
    pub sales_events: u64,
    /// The newest trend update per SKU (highest `seq`).
    pub latest: HashMap<String, TrendUpdate>,
    /// Every update per SKU, reduced to what the calibration panel needs.
    pub history: HashMap<String, Vec<PastCall>>,
    /// The newest restock signal per SKU.
    pub restock: HashMap<String, RestockSignal>,
    /// The newest new-product forecast per SKU.
    pub new_products: HashMap<String, NewProductForecast>,
    /// Product text per SKU (catalog topic, or the log's descriptions).
    pub products: HashMap<String, ProductText>,
    /// Messages that did not decode (any topic).
    pub unreadable: u64,
    /// Optional topics that could not be read, with the reason.
    pub not_read: Vec<String>,
}

impl ReportInputs {
    /// Empty inputs for a bucket width.
    pub fn new(bucket: BucketSpec) -> Self {
        ReportInputs {
            bucket,
            units: HashMap::new(),
            span_ms: None,
            sales_events: 0,
            latest: HashMap::new(),
            history: HashMap::new(),
            restock: HashMap::new(),
            new_products: HashMap::new(),
            products: HashMap::new(),
            unreadable: 0,
            not_read: Vec::new(),
        }
    }

    /// Counts one sale.
    pub fn add_sale(&mut self, sku: &str, ts_ms: i64, qty: f64) {
        let bucket = self.bucket.index_of(EventTime::from_millis(ts_ms));
        *self
            .units
            .entry(sku.to_string())
            .or_default()
            .entry(bucket)
            .or_default() += qty;
        self.sales_events += 1;
        self.span_ms = Some(match self.span_ms {
            None => (ts_ms, ts_ms),
            Some((lo, hi)) => (lo.min(ts_ms), hi.max(ts_ms)),
        });
    }

    /// Start of the newest forecast's first bucket (epoch ms): where the engine's event time
    /// stood when it last published.
    pub fn newest_as_of_ms(&self) -> Option<i64> {
        self.history.values().flatten().map(|c| c.as_of_ms).max()
    }

    /// Takes one trend update: into the history, and as the latest when its `seq` is newer.
    pub fn add_update(&mut self, update: TrendUpdate) {
        match PastCall::of(&update) {
            Some(call) => self
                .history
                .entry(update.sku.clone())
                .or_default()
                .push(call),
            None => self.unreadable += 1,
        }
        match self.latest.get(&update.sku) {
            Some(held) if held.seq >= update.seq => {}
            _ => {
                self.latest.insert(update.sku.clone(), update);
            }
        }
    }
}

/// Expected units per horizon step: the `mean` output, else Swanson's 0.3·q0.1 + 0.4·q0.5 +
/// 0.3·q0.9 (docs/TRENDS.md: never the median alone).
pub fn expected_per_step(update: &TrendUpdate) -> Vec<f64> {
    update
        .horizon
        .iter()
        .map(|h| {
            let q = |level: &str| f64::from(h.quantiles.get(level).copied().unwrap_or(0.0));
            h.mean
                .map(f64::from)
                .unwrap_or_else(|| 0.3 * q("0.1") + 0.4 * q("0.5") + 0.3 * q("0.9"))
                .max(0.0)
        })
        .collect()
}
