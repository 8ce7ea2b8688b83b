//! How good the trend calls are (docs/TRENDS.md), beside the accuracy metrics.
//!
//! Every (series, origin) pair has a realised class: the horizon's mean actual units against
//! the recent level, under the same definition the engine calls with
//! (`scoring::trend::realised`). A forecaster's calls are scored by:
//!
//! - per-class precision, recall and F1 for falling, flat and rising, and their mean (macro-F1);
//! - the Brier score of `p_up` against "rising", and the climatology it must beat (the base rate
//!   of rising on the pairs of the three weekly origins before the first one, known at that
//!   origin);
//! - precision@20 of the hot-products ranking: per origin, the share of the ranking's top 20
//!   (`signals::hot::rank` over the pairs' calls) that are in that origin's top decile of
//!   realised strength (the SKUs that actually grew most), averaged over origins.

use std::collections::BTreeMap;

use serde::Serialize;

use trendcast_engine::publish::{Direction, Trend};
use trendcast_engine::signals::hot::{rank, HotEntry, HotSettings};

/// One pair's call and what happened.
#[derive(Debug, Clone)]
pub struct CallPair {
    /// Series.
    pub sku: std::sync::Arc<str>,
    /// Origin, days since the epoch.
    pub origin: i64,
    /// The realised class.
    pub realised: Direction,
    /// The realised strength (actual mean against the recent level).
    pub realised_strength: f64,
    /// The forecaster's trend call.
    pub trend: Trend,
    /// Units it expects over the horizon (sum of its mean, else of q0.5).
    pub forecast_units: f64,
    /// What the hot ranking orders candidates by: p_up for a forecaster (as the engine does),
    /// the strength for a rule (rules give no probability).
    pub rank_score: f64,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ClassScore {
    /// Share of the class's calls that were right.
    pub precision: f64,
    /// Share of the class's pairs that were called.
    pub recall: f64,
    /// Harmonic mean of the two (0 when both are 0).
    pub f1: f64,
}

/// The call metrics of one forecaster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallMetrics {
    /// Falling, flat, rising.
    pub classes: [ClassScore; 3],
    /// Mean F1 over the three classes.
    pub macro_f1: f64,
    /// Mean (p_up − [rising])², when the forecaster gives a p_up.
    pub brier: Option<f64>,
    /// Precision@20 of the hot-products ranking against the top decile of realised growth.
    pub hot_precision_at_20: f64,
}

const CLASSES: [Direction; 3] = [Direction::Falling, Direction::Flat, Direction::Rising];

/// Scores `pairs`; `with_p_up` says whether their p_up is the forecaster's own (rules have none).
pub fn score(pairs: &[CallPair], with_p_up: bool, hot: &HotSettings) -> CallMetrics {
    let classes = CLASSES.map(|class| {
        let called = pairs.iter().filter(|p| p.trend.direction == class).count();
        let actual = pairs.iter().filter(|p| p.realised == class).count();
        let hit = pairs
            .iter()
            .filter(|p| p.trend.direction == class && p.realised == class)
            .count();
        let precision = hit as f64 / called.max(1) as f64;
        let recall = hit as f64 / actual.max(1) as f64;
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        ClassScore {
            precision,
            recall,
            f1,
        }
    });
    let brier = (with_p_up && !pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|p| (p.trend.p_up - f64::from(u8::from(p.realised == Direction::Rising))).powi(2))
            .sum::<f64>()
            / pairs.len() as f64
    });
    CallMetrics {
        macro_f1: classes.iter().map(|c| c.f1).sum::<f64>() / 3.0,
        classes,
        brier,
        hot_precision_at_20: hot_precision(pairs, hot),
    }
}

/// Brier score of always saying `base_rate`, on `pairs`.
pub fn climatology_brier(pairs: &[CallPair], base_rate: f64) -> f64 {
    let n = pairs.len().max(1) as f64;
    pairs
        .iter()
        .map(|p| (base_rate - f64::from(u8::from(p.realised == Direction::Rising))).powi(2))
        .sum::<f64>()
        / n
}

/// Mean over origins of the share of the top 20 in the top decile of realised strength.
fn hot_precision(pairs: &[CallPair], hot: &HotSettings) -> f64 {
    const TOP: usize = 20;
    let mut by_origin: BTreeMap<i64, Vec<&CallPair>> = BTreeMap::new();
    for p in pairs {
        by_origin.entry(p.origin).or_default().push(p);
    }
    let settings = HotSettings {
        top: TOP,
        max_age_ms: i64::MAX,
        ..*hot
    };
    let shares: Vec<f64> = by_origin
        .values()
        .map(|group| {
            let mut strengths: Vec<f64> = group.iter().map(|p| p.realised_strength).collect();
            strengths.sort_by(f64::total_cmp);
            let cut = quantile(&strengths, 0.9);
            let entries: Vec<(&str, HotEntry)> = group
                .iter()
                .map(|p| {
                    let entry = HotEntry::of_trend(&p.trend, p.forecast_units, 0, 0);
                    // the engine ranks by p_up (HotEntry::score): give it the pair's rank score
                    let p_up = p.rank_score;
                    (&*p.sku, HotEntry { p_up, ..entry })
                })
                .collect();
            let grew: std::collections::HashSet<&str> = group
                .iter()
                .filter(|p| p.realised_strength >= cut)
                .map(|p| &*p.sku)
                .collect();
            let ranked = rank(entries.iter().map(|(s, e)| (*s, e)), &settings);
            ranked
                .iter()
                .filter(|h| grew.contains(h.sku.as_str()))
                .count() as f64
                / TOP as f64
        })
        .collect();
    if shares.is_empty() {
        0.0
    } else {
        shares.iter().sum::<f64>() / shares.len() as f64
    }
}

/// Linear-interpolated quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(sku: &str, realised: Direction, called: Direction, p_up: f64, grew: f64) -> CallPair {
        CallPair {
            sku: sku.into(),
            origin: 0,
            realised,
            realised_strength: grew,
            trend: Trend {
                direction: called,
                strength: grew,
                p_up,
            },
            forecast_units: 100.0,
            rank_score: p_up,
        }
    }

    #[test]
    fn per_class_scores_by_hand() {
        use Direction::*;
        let pairs = [
            pair("a", Rising, Rising, 0.9, 1.0),
            pair("b", Rising, Flat, 0.4, 0.5),
            pair("c", Flat, Flat, 0.2, 0.0),
            pair("d", Falling, Rising, 0.6, -0.5),
        ];
        let hot = HotSettings {
            top: 20,
            min_volume: 0.0,
            max_age_ms: 0,
        };
        let m = score(&pairs, true, &hot);
        // rising: called a, d (1 right) -> precision 0.5; actual a, b -> recall 0.5
        assert_eq!(
            m.classes[2],
            ClassScore {
                precision: 0.5,
                recall: 0.5,
                f1: 0.5
            }
        );
        // flat: called b, c (1 right); actual c -> recall 1; F1 2/3
        assert!((m.classes[1].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.classes[0].f1, 0.0, "falling never called");
        assert!((m.macro_f1 - (0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // brier: (0.1² + 0.6² + 0.2² + 0.6²) / 4
        assert!((m.brier.unwrap_or(0.0) - 0.1925).abs() < 1e-12);
        assert!((climatology_brier(&pairs, 0.5) - 0.25).abs() < 1e-12);
        // candidates: the rising calls a and d, by p_up; top decile of [-0.5, 0, 0.5, 1] is
        // >= 0.85: a alone -> 1 hit of 20
        assert!((m.hot_precision_at_20 - 0.05).abs() < 1e-12);
    }
}
