//! Forecast metrics of the evaluation protocol, over a set of (series, origin) forecasts.
//!
//! Definitions follow the M5 competition and GluonTS, and match `training/trendcast_training/
//! metrics.py` (the Python side scores its baselines with the same formulas; `tests` below pin
//! both to hand-computed cases):
//!
//! - RMSSE = sqrt(mean_h (y − ŷ)² / s²), s² = mean squared one-step naive difference of the
//!   in-sample history from the SKU's first sale; MASE the same with absolute values.
//! - WRMSSE = Σ w·RMSSE / Σ w with w = revenue in the 28 days before the origin.
//! - WQL = mean over quantile levels τ of 2·Σ ρ_τ(y, q_τ) / Σ |y| (pinball loss ρ).
//! - Coverage = share of actuals inside [q0.1, q0.9]; bias = Σ(ŷ − y) / Σ y.
//! - Trend calls are scored apart, in `calls` (docs/TRENDS.md).
//!
//! Point forecasts: each loss is scored with the point that minimises it in expectation. The
//! squared-error metrics (WRMSSE, RMSSE, RMSE) and the bias use the forecaster's mean when it
//! has one (a model's `mean_output`), else q0.5; the absolute-error metrics (MASE, MAE) use
//! q0.5, the median. For a forecaster without a mean (every baseline) both are q0.5.

use serde::Serialize;

/// Quantile levels every forecast carries, in order.
pub const LEVELS: [f64; 3] = trendcast_engine::vocab::QUANTILE_LEVELS;

/// One (series, origin) pair: its actuals, forecasts and what the scaled metrics need.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Actual units per horizon day.
    pub actual: Vec<f64>,
    /// Forecast per horizon day: quantiles 0.1, 0.5, 0.9.
    pub forecast: Vec<[f64; 3]>,
    /// Expected units per horizon day, when the forecaster has a mean output.
    pub mean: Option<Vec<f64>>,
    /// Mean squared one-step naive difference in-sample (None when zero or undefined).
    pub scale_sq: Option<f64>,
    /// Mean absolute one-step naive difference in-sample (None when zero or undefined).
    pub scale_abs: Option<f64>,
    /// Revenue in the 28 days before the origin (WRMSSE weight, at least 0).
    pub weight: f64,
}

/// The report's metrics for one forecaster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// Revenue-weighted RMSSE.
    pub wrmsse: f64,
    /// Mean RMSSE over pairs with a defined scale.
    pub rmsse: f64,
    /// Mean MASE over pairs with a defined scale.
    pub mase: f64,
    /// Mean absolute error of the median.
    pub mae: f64,
    /// Root mean squared error of the point forecast (the mean where there is one).
    pub rmse: f64,
    /// Weighted quantile loss over 0.1/0.5/0.9.
    pub wql: f64,
    /// Share of actuals inside the 80% interval.
    pub coverage80: f64,
    /// Relative bias of the point forecast (the mean where there is one).
    pub bias: f64,
    /// Pairs scored.
    pub pairs: usize,
}

/// M5 scales of an in-sample history (days from the first sale to the day before the origin):
/// (mean squared, mean absolute) one-step difference; None where zero or with under two days.
pub fn naive_scales(history: &[f64]) -> (Option<f64>, Option<f64>) {
    if history.len() < 2 {
        return (None, None);
    }
    let n = (history.len() - 1) as f64;
    let (sq, ab) = history
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold((0.0, 0.0), |(s, a), d| (s + d * d, a + d.abs()));
    let positive = |v: f64| (v > 0.0).then_some(v);
    (positive(sq / n), positive(ab / n))
}

/// Pinball loss ρ_τ(y, q) = max(τ(y − q), (τ − 1)(y − q)).
pub fn pinball(y: f64, q: f64, level: f64) -> f64 {
    let e = y - q;
    (level * e).max((level - 1.0) * e)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// (actual, point for squared loss) per horizon day: the mean where the pair has one, else q0.5.
fn mean_points(p: &Pair) -> impl Iterator<Item = (f64, f64)> + '_ {
    p.actual.iter().enumerate().map(move |(h, y)| {
        let point = match &p.mean {
            Some(m) => m.get(h).copied().unwrap_or(f64::NAN),
            None => p.forecast.get(h).map_or(f64::NAN, |q| q[1]),
        };
        (*y, point)
    })
}

/// Every metric over `pairs` (all with the same horizon).
pub fn score(pairs: &[Pair]) -> Metrics {
    let points = || {
        pairs
            .iter()
            .flat_map(|p| p.actual.iter().zip(&p.forecast).map(|(y, q)| (*y, *q)))
    };
    let all_mean_points = || pairs.iter().flat_map(mean_points);
    let mse_of = |p: &Pair| mean(mean_points(p).map(|(y, m)| (y - m).powi(2)));
    let mae_of = |p: &Pair| {
        mean(
            p.actual
                .iter()
                .zip(&p.forecast)
                .map(|(y, q)| (y - q[1]).abs()),
        )
    };
    let rmsse: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|p| p.scale_sq.map(|s| ((mse_of(p) / s).sqrt(), p.weight)))
        .collect();
    let weight: f64 = rmsse.iter().map(|(_, w)| w).sum();
    let sum_y: f64 = points().map(|(y, _)| y.abs()).sum();
    let wql = mean(LEVELS.iter().enumerate().map(|(i, level)| {
        2.0 * points().map(|(y, q)| pinball(y, q[i], *level)).sum::<f64>() / sum_y
    }));
    Metrics {
        wrmsse: rmsse.iter().map(|(r, w)| r * w).sum::<f64>() / weight,
        rmsse: mean(rmsse.iter().map(|(r, _)| *r)),
        mase: mean(
            pairs
                .iter()
                .filter_map(|p| p.scale_abs.map(|s| mae_of(p) / s)),
        ),
        mae: mean(points().map(|(y, q)| (y - q[1]).abs())),
        rmse: mean(all_mean_points().map(|(y, m)| (y - m).powi(2))).sqrt(),
        wql,
        coverage80: mean(points().map(|(y, q)| f64::from(u8::from(y >= q[0] && y <= q[2])))),
        bias: all_mean_points().map(|(y, m)| m - y).sum::<f64>()
            / points().map(|(y, _)| y).sum::<f64>(),
        pairs: pairs.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn scales_of_a_short_history() {
        // diffs 2, -1, 0: squared mean 5/3, absolute mean 1
        let (sq, ab) = naive_scales(&[1.0, 3.0, 2.0, 2.0]);
        assert!(close(sq.unwrap_or(0.0), 5.0 / 3.0));
        assert!(close(ab.unwrap_or(0.0), 1.0));
        assert_eq!(naive_scales(&[4.0, 4.0]), (None, None), "flat history");
        assert_eq!(naive_scales(&[4.0]), (None, None), "one day");
    }

    #[test]
    fn pinball_by_hand() {
        assert!(close(pinball(10.0, 8.0, 0.9), 1.8));
        assert!(close(pinball(10.0, 12.0, 0.9), 0.2));
        assert!(close(pinball(10.0, 12.0, 0.1), 1.8));
    }

    /// Two pairs, horizon 2, computed by hand.
    #[test]
    fn every_metric_on_a_hand_computed_case() {
        let a = Pair {
            actual: vec![2.0, 0.0],
            forecast: vec![[1.0, 1.0, 3.0], [0.0, 1.0, 2.0]],
            mean: None,
            scale_sq: Some(4.0),
            scale_abs: Some(2.0),
            weight: 3.0,
        };
        let b = Pair {
            actual: vec![4.0, 4.0],
            forecast: vec![[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],
            mean: None,
            scale_sq: Some(1.0),
            scale_abs: Some(1.0),
            weight: 1.0,
        };
        let m = score(&[a.clone(), b.clone()]);
        // a: errors 1, -1 → MSE 1, RMSSE sqrt(1/4) = 0.5, MASE 1/2; b: errors 2, 2 → RMSSE 2, MASE 2
        assert!(close(m.rmsse, 1.25));
        assert!(close(m.wrmsse, (3.0 * 0.5 + 2.0) / 4.0));
        assert!(close(m.mase, 1.25));
        assert!(close(m.mae, 1.5));
        assert!(close(m.rmse, (10.0_f64 / 4.0).sqrt()));
        // Σ|y| = 10. τ=0.1: a 0.1·1 + 0.9·0 = 0.1, b 2·(0.1·3) = 0.6 → 2·0.7/10 = 0.14
        // τ=0.5: 0.5·(1 + 1 + 2 + 2) = 3 → 0.6; τ=0.9: a 0.1·1 + 0.1·2 = 0.3, b 2·0.9 = 1.8 → 0.42
        assert!(close(m.wql, (0.14 + 0.6 + 0.42) / 3.0));
        // inside [q0.1, q0.9]: a both, b none
        assert!(close(m.coverage80, 0.5));
        assert!(close(m.bias, (6.0 - 10.0) / 10.0));
        assert_eq!(m.pairs, 2);

        // With a mean output of 3 every day for b: squared metrics and bias use it (errors 1, 1
        // → RMSSE 1), absolute ones keep the median (MASE of b still 2, MAE unchanged).
        let b_mean = Pair {
            mean: Some(vec![3.0, 3.0]),
            ..b
        };
        let a_mean = Pair {
            mean: Some(vec![1.0, 1.0]),
            ..a
        };
        let m = score(&[a_mean, b_mean]);
        assert!(close(m.rmsse, (0.5 + 1.0) / 2.0));
        assert!(close(m.wrmsse, (3.0 * 0.5 + 1.0) / 4.0));
        assert!(close(m.rmse, (4.0_f64 / 4.0).sqrt()));
        assert!(close(m.bias, (8.0 - 10.0) / 10.0));
        assert!(close(m.mase, 1.25));
        assert!(close(m.mae, 1.5));
    }
}
