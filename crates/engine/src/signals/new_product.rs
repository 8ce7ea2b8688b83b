//! New-product forecasts: from product text before a SKU sells, blended into the SKU's own
//! model's forecast while its history is short (`schemas/new_product_forecast.schema.json`).
//!
//! - A catalog entry for a SKU with no trend update yet gets a *text* forecast (model
//!   `cold-start-text@1`): the launch library's forecast for days 0 … H−1 since launch, from the
//!   SKU's text embedding (see [`crate::catalog::library`]).
//! - While a SKU's history is shorter than `blend_days`, each of its trend updates also yields a
//!   *blend* (model `cold-start-blend@1`): per day and quantile level,
//!   `w · own + (1 − w) · text`, with `w = days of history / blend_days` and the text forecast
//!   taken at the matching days since launch (quantile averaging). The launch is the first
//!   bucket before the first trend update this component saw for the SKU.
//!
//! Only daily buckets are blended (the library's curves are daily).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vocab::EventTime;
use crate::window::rfc3339;

use crate::catalog::library::TextForecast;
use crate::publish::{HorizonStep, TrendUpdate};

use crate::vocab::DAY_MS;
/// Quantile labels of the published steps.
const LABELS: [&str; 3] = ["0.1", "0.5", "0.9"];

/// A nearest product behind a text forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    /// Its SKU.
    pub sku: String,
    /// Cosine similarity of the texts.
    pub similarity: f32,
}

/// A new-product forecast message, keyed by SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewProductForecast {
    /// The SKU.
    pub sku: String,
    /// Start of the first forecast day, RFC 3339.
    pub as_of: String,
    /// `cold-start-text@1` or `cold-start-blend@1`.
    pub model: String,
    /// Days of sales history the SKU has (0 before its first sale).
    pub days_of_history: u32,
    /// Weight of the SKU's own model in the blend (0 for a text forecast).
    pub own_weight: f64,
    /// One entry per day.
    pub horizon: Vec<HorizonStep>,
    /// The closest products in the launch library.
    pub neighbours: Vec<Neighbour>,
    /// Per-SKU increasing sequence number of these messages.
    pub seq: u64,
}

fn steps(as_of_ms: i64, quantiles: &[[f64; 3]]) -> Vec<HorizonStep> {
    quantiles
        .iter()
        .enumerate()
        .map(|(i, q)| HorizonStep {
            start: rfc3339(EventTime::from_millis(as_of_ms + i as i64 * DAY_MS)),
            end: rfc3339(EventTime::from_millis(as_of_ms + (i as i64 + 1) * DAY_MS)),
            quantiles: LABELS
                .iter()
                .zip(q)
                .map(|(l, v)| (l.to_string(), v.max(0.0) as f32))
                .collect::<BTreeMap<_, _>>(),
            mean: None,
        })
        .collect()
}

fn neighbours(text: &TextForecast) -> Vec<Neighbour> {
    text.neighbours
        .iter()
        .map(|(sku, similarity)| Neighbour {
            sku: sku.clone(),
            similarity: (similarity * 1e4).round() / 1e4,
        })
        .collect()
}

/// The text forecast of a SKU that has not sold yet, starting at `as_of_ms`.
pub fn text_only(sku: &str, as_of_ms: i64, text: &TextForecast, seq: u64) -> NewProductForecast {
    let q: Vec<[f64; 3]> = text.days.iter().map(|(_, q)| *q).collect();
    NewProductForecast {
        sku: sku.to_string(),
        as_of: rfc3339(EventTime::from_millis(as_of_ms)),
        model: "cold-start-text@1".into(),
        days_of_history: 0,
        own_weight: 0.0,
        horizon: steps(as_of_ms, &q),
        neighbours: neighbours(text),
        seq,
    }
}

/// The blend of `update` (daily buckets, `history_days` days of history) with `text` (the
/// library's forecast for the same days since launch); `None` when the update is not daily or
/// lacks a 0.1/0.5/0.9 quantile.
pub fn blend(
    update: &TrendUpdate,
    as_of_ms: i64,
    history_days: u32,
    blend_days: f64,
    text: &TextForecast,
    seq: u64,
) -> Option<NewProductForecast> {
    let w = (f64::from(history_days) / blend_days).clamp(0.0, 1.0);
    let mut q = Vec::with_capacity(update.horizon.len());
    for (step, (_, t)) in update.horizon.iter().zip(&text.days) {
        let width = chrono::DateTime::parse_from_rfc3339(&step.end).ok()?
            - chrono::DateTime::parse_from_rfc3339(&step.start).ok()?;
        if width.num_milliseconds() != DAY_MS {
            return None;
        }
        let mut row = [0.0; 3];
        for (i, label) in LABELS.iter().enumerate() {
            let own = f64::from(*step.quantiles.get(*label)?);
            row[i] = w * own + (1.0 - w) * t[i];
        }
        q.push(row);
    }
    Some(NewProductForecast {
        sku: update.sku.clone(),
        as_of: rfc3339(EventTime::from_millis(as_of_ms)),
        model: "cold-start-blend@1".into(),
        days_of_history: history_days,
        own_weight: (w * 1e4).round() / 1e4,
        horizon: steps(as_of_ms, &q),
        neighbours: neighbours(text),
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Direction, Trend};

    #[test]
    fn blends_quantiles_by_history() {
        let t0 = 1_322_697_600_000;
        let text = TextForecast {
            days: vec![(4.0, [1.0, 4.0, 8.0]); 2],
            neighbours: vec![("n".into(), 0.91234)],
        };
        let update = TrendUpdate {
            sku: "A".into(),
            as_of: rfc3339(EventTime::from_millis(t0)),
            model: "m@1".into(),
            seq: 9,
            horizon: steps(t0, &[[2.0, 10.0, 20.0]; 2]),
            total: None,
            lead_time_total: None,
            trend: Trend {
                direction: Direction::Rising,
                strength: 0.5,
                p_up: 0.6,
            },
        };
        // 7 of 28 days: w = 0.25
        let b = blend(&update, t0, 7, 28.0, &text, 3).unwrap();
        assert_eq!(b.own_weight, 0.25);
        let q = &b.horizon[1].quantiles;
        assert_eq!((q["0.1"], q["0.5"], q["0.9"]), (1.25, 5.5, 11.0));
        assert_eq!(b.neighbours[0].similarity, 0.9123);
        let only = text_only("B", t0, &text, 1);
        assert_eq!((only.days_of_history, only.horizon.len()), (0, 2));
        assert_eq!(only.horizon[0].quantiles["0.9"], 8.0);
        // hourly buckets are not blended
        let mut hourly = update.clone();
        hourly.horizon[0].end = rfc3339(EventTime::from_millis(t0 + 3_600_000));
        assert!(blend(&hourly, t0, 7, 28.0, &text, 3).is_none());
    }
}
