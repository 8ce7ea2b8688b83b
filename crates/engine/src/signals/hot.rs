//! Hot products: the SKUs heating up now, ranked from their latest trend updates.
//!
//! Each SKU keeps only its latest trend update (by the update's per-SKU `seq`: a duplicate or a
//! replayed older update changes nothing, so the ranking is stable under at-least-once
//! delivery). A SKU is a candidate when its latest call is rising (docs/TRENDS.md), it expects at
//! least `min_volume` units over the horizon (so one sale after none is not a trend), and its
//! update is no older than `max_age` behind the newest one seen (a SKU that stopped selling stops
//! getting updates and must not stay on the list). Candidates are ranked by `score = p_up` (the
//! calibrated probability of a rise), then by expected units, then by SKU, so ties never reorder.

use serde::{Deserialize, Serialize};

use crate::vocab::EventTime;
use crate::window::{rfc3339, wall_clock_rfc3339};

use crate::publish::{Direction, Trend, TrendUpdate};

/// Ranking settings (from `[signals]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotSettings {
    /// Entries per published ranking.
    pub top: usize,
    /// Smallest expected units over the horizon (sum of the median forecasts).
    pub min_volume: f64,
    /// Oldest `as_of` still ranked, behind the newest `as_of` seen, ms.
    pub max_age_ms: i64,
}

/// Default `signals.hot_top`.
pub const DEFAULT_TOP: usize = 20;
/// Default `signals.hot_min_volume`.
pub const DEFAULT_MIN_VOLUME: f64 = 5.0;
/// Default `signals.hot_max_age`, in days.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 7;

impl Default for HotSettings {
    /// `[signals]`'s defaults (`trendcast evaluate` ranks with them when signals are off).
    fn default() -> Self {
        Self {
            top: DEFAULT_TOP,
            min_volume: DEFAULT_MIN_VOLUME,
            max_age_ms: DEFAULT_MAX_AGE_DAYS * 86_400_000,
        }
    }
}

/// What the ranking keeps of a SKU's latest trend update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotEntry {
    /// Whether the update called the SKU rising.
    pub rising: bool,
    /// Relative growth of the forecast over the recent level (the update's strength).
    pub growth: f64,
    /// Probability that demand rises.
    pub p_up: f64,
    /// Expected units over the horizon: the sum of the update's means (its medians when it has
    /// no mean).
    pub forecast_units: f64,
    /// The update's `as_of`, epoch ms.
    pub as_of_ms: i64,
    /// The update's per-SKU sequence number.
    pub seq: u64,
}

impl HotEntry {
    /// Reads an update (`None` when its `as_of` is not RFC 3339).
    pub fn from_update(update: &TrendUpdate) -> Option<Self> {
        let as_of_ms = chrono::DateTime::parse_from_rfc3339(&update.as_of)
            .ok()?
            .timestamp_millis();
        let forecast_units = update
            .horizon
            .iter()
            .filter_map(|s| s.mean.or_else(|| s.quantiles.get("0.5").copied()))
            .map(|v| f64::from(v).max(0.0))
            .sum();
        Some(Self::of_trend(
            &update.trend,
            forecast_units,
            as_of_ms,
            update.seq,
        ))
    }

    /// The entry of a trend call (the evaluation ranks pairs without building updates).
    pub fn of_trend(trend: &Trend, forecast_units: f64, as_of_ms: i64, seq: u64) -> Self {
        Self {
            rising: trend.direction == Direction::Rising,
            growth: finite(trend.strength),
            p_up: finite(trend.p_up),
            forecast_units,
            as_of_ms,
            seq,
        }
    }

    /// The ranking score: the calibrated probability of a rise.
    pub fn score(&self) -> f64 {
        self.p_up
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// One row of a published ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotProduct {
    /// 1-based rank.
    pub rank: usize,
    /// The SKU.
    pub sku: String,
    /// The ranking score (`p_up`).
    pub score: f64,
    /// Relative growth of the forecast over the recent level.
    pub growth: f64,
    /// Probability of a rise.
    pub p_up: f64,
    /// Expected units over the horizon.
    pub forecast_units: f64,
    /// `as_of` of the update ranked, RFC 3339.
    pub as_of: String,
}

/// A ranking message (`schemas/hot_products.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotProducts {
    /// Wall-clock time the ranking was made, RFC 3339.
    pub generated_at: String,
    /// Newest `as_of` among the SKUs considered, RFC 3339.
    pub as_of: String,
    /// Input partitions (of the trend update topic) this ranking covers.
    pub partitions: Vec<u16>,
    /// SKUs considered (with a trend update held).
    pub skus_considered: usize,
    /// The ranking, best first.
    pub top: Vec<HotProduct>,
}

/// Ranks `entries` (SKU, entry): the best `settings.top` candidates, best first.
pub fn rank<'a>(
    entries: impl Iterator<Item = (&'a str, &'a HotEntry)> + Clone,
    settings: &HotSettings,
) -> Vec<HotProduct> {
    let newest = entries.clone().map(|(_, e)| e.as_of_ms).max().unwrap_or(0);
    let oldest = newest.saturating_sub(settings.max_age_ms);
    let mut candidates: Vec<(&str, &HotEntry)> = entries
        .filter(|(_, e)| {
            e.rising
                && e.growth >= 0.0
                && e.forecast_units >= settings.min_volume
                && e.as_of_ms >= oldest
        })
        .collect();
    let order = |a: &(&str, &HotEntry), b: &(&str, &HotEntry)| {
        b.1.score()
            .total_cmp(&a.1.score())
            .then(b.1.forecast_units.total_cmp(&a.1.forecast_units))
            .then(a.0.cmp(b.0))
    };
    if candidates.len() > settings.top && settings.top > 0 {
        candidates.select_nth_unstable_by(settings.top - 1, order);
        candidates.truncate(settings.top);
    }
    candidates.sort_unstable_by(order);
    candidates.truncate(settings.top);
    candidates
        .into_iter()
        .enumerate()
        .map(|(i, (sku, e))| HotProduct {
            rank: i + 1,
            sku: sku.to_string(),
            score: (e.score() * 1e6).round() / 1e6,
            growth: e.growth,
            p_up: e.p_up,
            forecast_units: e.forecast_units,
            as_of: rfc3339(EventTime::from_millis(e.as_of_ms)),
        })
        .collect()
}

impl HotProducts {
    /// A ranking message over `entries`.
    pub fn new<'a>(
        entries: impl Iterator<Item = (&'a str, &'a HotEntry)> + Clone,
        partitions: Vec<u16>,
        settings: &HotSettings,
    ) -> Self {
        let newest = entries.clone().map(|(_, e)| e.as_of_ms).max().unwrap_or(0);
        Self {
            generated_at: wall_clock_rfc3339(chrono::Utc::now().timestamp_millis()),
            as_of: rfc3339(EventTime::from_millis(newest)),
            partitions,
            skus_considered: entries.clone().count(),
            top: rank(entries, settings),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn entry(growth: f64, p_up: f64, units: f64, as_of_ms: i64) -> HotEntry {
        HotEntry {
            rising: growth > 0.0,
            growth,
            p_up,
            forecast_units: units,
            as_of_ms,
            seq: 1,
        }
    }

    #[test]
    fn ranks_rising_fresh_volume_by_p_up_with_stable_ties() {
        let settings = HotSettings {
            top: 3,
            min_volume: 5.0,
            max_age_ms: 7 * DAY,
        };
        let t = 100 * DAY;
        let items = [
            ("a", entry(1.0, 0.5, 10.0, t)),           // 0.5
            ("b", entry(0.2, 0.9, 10.0, t)),           // 0.9
            ("c", entry(2.0, 0.9, 4.0, t)),            // too little volume
            ("d", entry(-1.0, 0.9, 50.0, t)),          // falling
            ("e", entry(3.0, 0.9, 50.0, t - 8 * DAY)), // stale
            (
                "h",
                HotEntry {
                    rising: true,
                    ..entry(-0.4, 0.95, 50.0, t)
                },
            ), // rising, shrinking
            ("f", entry(1.0, 0.5, 10.0, t)),           // ties with a
            ("g", entry(1.0, 0.5, 12.0, t)),           // same score, more units
        ];
        let ranked = rank(items.iter().map(|(s, e)| (*s, e)), &settings);
        let skus: Vec<&str> = ranked.iter().map(|r| r.sku.as_str()).collect();
        assert_eq!(skus, ["b", "g", "a"]);
        assert_eq!(ranked[0].rank, 1);
        // the same entries in another order rank the same
        let reversed = rank(items.iter().rev().map(|(s, e)| (*s, e)), &settings);
        assert_eq!(ranked, reversed);
    }
}
