//! The trend update message (`schemas/trend_update.schema.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The trend call: demand over the horizon against the recent level (docs/TRENDS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Mean demand over the horizon above the recent level by more than the flat band.
    Rising,
    /// Mean demand over the horizon below the recent level by more than the flat band.
    Falling,
    /// Within the band.
    Flat,
}

/// The trend of one update (docs/TRENDS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The call: the model's calibrated classifier where it has one, else the class of
    /// `strength`.
    pub direction: Direction,
    /// Relative change of the expected level (the model's mean) over the recent level.
    pub strength: f64,
    /// Probability of "rising" as defined (calibrated when the model has a classifier).
    pub p_up: f64,
}

/// One future bucket's forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonStep {
    /// Bucket start, RFC 3339.
    pub start: String,
    /// Bucket end (exclusive), RFC 3339.
    pub end: String,
    /// Quantile level (as text, e.g. "0.5") → forecast units.
    pub quantiles: BTreeMap<String, f32>,
    /// Expected units (the point forecast under squared loss), when the model has a mean output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f32>,
}

/// Total units over the first `buckets` buckets of the horizon: quantiles of the sum, from the
/// update's one predictive distribution (never a sum of daily quantiles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonTotal {
    /// Buckets summed.
    pub buckets: usize,
    /// Expected total units (the sum of those buckets' means).
    pub mean: f32,
    /// Quantile level (as text) → total units.
    pub quantiles: BTreeMap<String, f32>,
}

/// A per-SKU trend update, keyed by SKU on the output topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendUpdate {
    /// The SKU.
    pub sku: String,
    /// End of the last closed bucket the forecast is based on, RFC 3339.
    pub as_of: String,
    /// `name@version` of the model.
    pub model: String,
    /// Per-SKU increasing sequence number; consumers drop updates with a seq they have seen.
    pub seq: u64,
    /// One entry per future bucket.
    pub horizon: Vec<HorizonStep>,
    /// Total units over the whole horizon (absent in updates of older engines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<HorizonTotal>,
    /// Total units over the restock lead time, when the signals component runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time_total: Option<HorizonTotal>,
    /// Direction, strength and probability of a rise.
    pub trend: Trend,
}
