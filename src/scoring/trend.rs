//! Trend derivation: direction, strength and probability of a rise from a quantile forecast.
//!
//! * recent level `r` = mean of max(0, units) over the last `min(H, T)` closed buckets;
//! * forecast level `f` = mean over the horizon of the median (the quantile closest to 0.5);
//! * strength = (f − r) / max(r, level_floor): the relative change, with a floor so that a SKU
//!   selling 0.01/day does not show ±1000%;
//! * direction = rising if strength > flat_threshold, falling if < −flat_threshold, else flat;
//! * p_up: from the model's direction head when it has one; otherwise P(horizon mean > r) under a
//!   normal whose spread comes from the outermost quantiles:
//!   σ = mean_h (q_hi − q_lo) / (z(p_hi) − z(p_lo)), p_up = Φ((f − r) / σ).

use statrs::distribution::{ContinuousCDF, Normal};

use crate::publish::{Direction, Trend};

/// Thresholds of the derivation (from `[trend]`).
#[derive(Debug, Clone, Copy)]
pub struct TrendSettings {
    /// |strength| at or below which the direction is flat.
    pub flat_threshold: f64,
    /// Floor of the recent level in the strength's denominator.
    pub level_floor: f64,
}

/// Derives the trend of one SKU.
///
/// `recent_units` are the last closed buckets' units (any length ≥ 1), `quantiles` the forecast
/// `[horizon × levels.len()]`, `median` the index of the point quantile, `p_up_model` the
/// model's own probability of a rise, if any.
pub fn derive(
    settings: &TrendSettings,
    recent_units: &[f32],
    levels: &[f64],
    quantiles: &[f32],
    median: usize,
    p_up_model: Option<f32>,
) -> Trend {
    let nq = levels.len().max(1);
    let horizon = quantiles.len() / nq;
    let recent = if recent_units.is_empty() {
        0.0
    } else {
        recent_units
            .iter()
            .map(|u| f64::from(u.max(0.0)))
            .sum::<f64>()
            / recent_units.len() as f64
    };
    let mean_q = |i: usize| -> f64 {
        if horizon == 0 {
            return 0.0;
        }
        quantiles
            .chunks_exact(nq)
            .map(|row| f64::from(row[i]))
            .sum::<f64>()
            / horizon as f64
    };
    // Differences below f32 resolution are noise, not a trend.
    let forecast = match mean_q(median) {
        f if (f - recent).abs() <= 1e-5 * recent.max(1.0) => recent,
        f => f,
    };
    let strength = (forecast - recent) / recent.max(settings.level_floor);
    let direction = if strength > settings.flat_threshold {
        Direction::Rising
    } else if strength < -settings.flat_threshold {
        Direction::Falling
    } else {
        Direction::Flat
    };
    let p_up = match p_up_model {
        Some(p) if p.is_finite() => f64::from(p).clamp(0.0, 1.0),
        _ => normal_p_up(forecast - recent, levels, mean_q(0), mean_q(nq - 1)),
    };
    Trend {
        direction,
        strength: round6(strength),
        p_up: round6(p_up),
    }
}

fn normal_p_up(diff: f64, levels: &[f64], mean_lo: f64, mean_hi: f64) -> f64 {
    let std = Normal::standard();
    let sigma = if levels.len() >= 2 {
        let dz = std.inverse_cdf(levels[levels.len() - 1]) - std.inverse_cdf(levels[0]);
        if dz > 0.0 {
            (mean_hi - mean_lo).max(0.0) / dz
        } else {
            0.0
        }
    } else {
        0.0
    };
    if sigma > 1e-9 {
        std.cdf(diff / sigma)
    } else if diff > 0.0 {
        1.0
    } else if diff < 0.0 {
        0.0
    } else {
        0.5
    }
}

fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: TrendSettings = TrendSettings {
        flat_threshold: 0.1,
        level_floor: 1.0,
    };
    const LEVELS: [f64; 3] = [0.1, 0.5, 0.9];

    #[test]
    fn rising_when_median_well_above_recent() {
        // recent 10/bucket; forecast median 15 with 0.1..0.9 = 10..20
        let q = [10.0, 15.0, 20.0, 10.0, 15.0, 20.0];
        let t = derive(&S, &[10.0, 10.0], &LEVELS, &q, 1, None);
        assert_eq!(t.direction, Direction::Rising);
        assert!((t.strength - 0.5).abs() < 1e-9);
        // sigma = 10 / (2 * 1.2816) = 3.90; z = 5 / 3.90 = 1.28 -> p = 0.9
        assert!((t.p_up - 0.9).abs() < 1e-3, "{}", t.p_up);
    }

    #[test]
    fn flat_and_falling_and_floor() {
        let q = [0.0, 0.05, 0.2];
        let t = derive(&S, &[0.0, 0.0], &LEVELS, &q, 1, None);
        assert_eq!(
            t.direction,
            Direction::Flat,
            "0.05 over a floor of 1 is flat"
        );
        let q = [0.0, 2.0, 4.0];
        let t = derive(&S, &[5.0], &LEVELS, &q, 1, Some(0.2));
        assert_eq!(t.direction, Direction::Falling);
        assert!((t.p_up - 0.2).abs() < 1e-6, "model head wins");
    }
}
