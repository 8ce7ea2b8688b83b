//! The trend update message (`schemas/trend_update.schema.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Direction of the forecast relative to recent demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Forecast mean above recent level by more than the flat threshold.
    Rising,
    /// Forecast mean below recent level by more than the flat threshold.
    Falling,
    /// Within the threshold.
    Flat,
}

/// Trend summary derived from the forecast (see `docs/ARCHITECTURE.md`, "Trend").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// rising | falling | flat.
    pub direction: Direction,
    /// Relative change of the forecast median mean over the recent level.
    pub strength: f64,
    /// Probability that demand over the horizon exceeds the recent level.
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
    /// Direction, strength and probability of a rise.
    pub trend: Trend,
}
