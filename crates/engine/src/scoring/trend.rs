//! Trend calls: direction, strength and the probability of a rise (docs/TRENDS.md).
//!
//! One definition, shared by the scorer, `trendcast evaluate`, the training targets
//! (`training/trendcast_training/direction.py`) and the signals:
//!
//! * recent level `r` = mean of max(0, units) over the last `min(H, W)` closed buckets;
//! * expected level `f` = mean over the horizon of the model's expected units (its `mean`
//!   output; without one, Swanson's 0.3·q0.1 + 0.4·q0.5 + 0.3·q0.9, or the mean of the quantiles
//!   when those levels are missing). Never the median: for skewed demand the median sits below
//!   the mean, and comparing it with a mean reads nearly everything as falling;
//! * strength = (f − r) / max(r, level_floor): a mean against a mean, relative, with a floor so
//!   that a SKU selling 0.01/bucket does not show ±1000 %;
//! * the event "rising" is a realised strength above `flat_band`, "falling" below −`flat_band`,
//!   "flat" in between.
//!
//! With a direction classifier in the model (`direction_output`, trained and calibrated for one
//! band and floor), `p_up` is its calibrated P(rising) and the direction is its call
//! argmax_k(w_k · p_k). Without one, the direction is the class of the expected strength and
//! `p_up` comes from a legacy head, or else from a normal approximation of the horizon mean
//! (spread from the outer quantiles, buckets taken as independent), which is not calibrated.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::publish::{Direction, Trend};
use crate::scoring::manifest::{DirectionSpec, ModelManifest};

/// The trend definition's two constants (from `[trend]`, or the model's direction output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendSettings {
    /// |strength| at or below which the direction is flat.
    pub flat_band: f64,
    /// Floor of the recent level in the strength's denominator (units per bucket).
    pub level_floor: f64,
}

/// Band used when neither the configuration nor the model names one.
pub const DEFAULT_FLAT_BAND: f64 = 0.2;
/// Floor used when neither the configuration nor the model names one.
pub const DEFAULT_LEVEL_FLOOR: f64 = 1.0;

/// `[trend]` as configured: each constant may be left to the model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrendConfig {
    /// Configured flat band, if any.
    pub flat_band: Option<f64>,
    /// Configured level floor, if any.
    pub level_floor: Option<f64>,
}

/// How one model's rows get their trend: the definition in force and, when the model's
/// classifier was trained for exactly that definition, its call weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendRule {
    /// The definition in force.
    pub settings: TrendSettings,
    /// Call weights of the model's classifier, when it is used.
    pub head: Option<[f64; 3]>,
}

impl TrendRule {
    /// The rule for `manifest` under `config`. A classifier is used when the configuration
    /// leaves the band and floor to it or names the same ones; otherwise (its probabilities
    /// would be of another event) the calls come from the expected level, with a warning.
    pub fn for_model(config: &TrendConfig, manifest: &ModelManifest) -> Self {
        let Some(d) = &manifest.direction_output else {
            return Self::without_head(config);
        };
        let band = config.flat_band.unwrap_or(d.flat_band);
        let floor = config.level_floor.unwrap_or(d.level_floor);
        if same(band, d.flat_band) && same(floor, d.level_floor) {
            return Self::with_head(d);
        }
        tracing::warn!(
            model = %manifest.id(),
            configured_band = band,
            configured_floor = floor,
            model_band = d.flat_band,
            model_floor = d.level_floor,
            "[trend] differs from the definition the model's direction classifier was trained for: \
             calls and p_up come from the expected level instead"
        );
        Self {
            settings: TrendSettings {
                flat_band: band,
                level_floor: floor,
            },
            head: None,
        }
    }

    fn with_head(d: &DirectionSpec) -> Self {
        Self {
            settings: TrendSettings {
                flat_band: d.flat_band,
                level_floor: d.level_floor,
            },
            head: Some(d.call_weights),
        }
    }

    fn without_head(config: &TrendConfig) -> Self {
        Self {
            settings: TrendSettings {
                flat_band: config.flat_band.unwrap_or(DEFAULT_FLAT_BAND),
                level_floor: config.level_floor.unwrap_or(DEFAULT_LEVEL_FLOOR),
            },
            head: None,
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9
}

/// One row's model outputs.
#[derive(Debug, Clone, Copy)]
pub struct RowForecast<'a> {
    /// Quantile levels of the model.
    pub levels: &'a [f64],
    /// `[horizon × levels]` quantiles.
    pub quantiles: &'a [f32],
    /// `[horizon]` expected units, when the model has a mean output.
    pub mean: Option<&'a [f32]>,
    /// Probabilities of falling, flat, rising, when the model has a direction output.
    pub direction: Option<&'a [f32]>,
    /// A legacy head's probability of a rise.
    pub p_up: Option<f32>,
}

/// Mean of max(0, units) over `recent_units` (0 when empty).
pub fn recent_level(recent_units: &[f32]) -> f64 {
    if recent_units.is_empty() {
        return 0.0;
    }
    recent_units
        .iter()
        .map(|u| f64::from(u.max(0.0)))
        .sum::<f64>()
        / recent_units.len() as f64
}

/// Relative change of `expected` over `recent`, with the floor in the denominator.
pub fn strength(expected: f64, recent: f64, level_floor: f64) -> f64 {
    // differences below f32 resolution are noise, not a trend
    if (expected - recent).abs() <= 1e-5 * recent.max(1.0) {
        return 0.0;
    }
    (expected - recent) / recent.max(level_floor)
}

/// The class of a strength under a band.
pub fn classify(strength: f64, flat_band: f64) -> Direction {
    if strength > flat_band {
        Direction::Rising
    } else if strength < -flat_band {
        Direction::Falling
    } else {
        Direction::Flat
    }
}

/// The realised class: `actual_mean` (mean units over the horizon) against `recent`.
pub fn realised(actual_mean: f64, recent: f64, settings: &TrendSettings) -> Direction {
    classify(
        strength(actual_mean, recent, settings.level_floor),
        settings.flat_band,
    )
}

/// Expected units per bucket over the horizon: the mean output, else an estimate from the
/// quantiles (never the median alone).
pub fn expected_level(forecast: &RowForecast<'_>) -> f64 {
    if let Some(mean) = forecast.mean.filter(|m| !m.is_empty()) {
        return mean.iter().map(|v| f64::from(v.max(0.0))).sum::<f64>() / mean.len() as f64;
    }
    let nq = forecast.levels.len().max(1);
    let rows = forecast.quantiles.chunks_exact(nq);
    let horizon = rows.len();
    if horizon == 0 {
        return 0.0;
    }
    // Swanson's weights where the model has 0.1 / 0.5 / 0.9, else the plain mean of its levels
    let mut weights = vec![1.0 / nq as f64; nq];
    let at = |level: f64| forecast.levels.iter().position(|l| same(*l, level));
    if let (Some(lo), Some(mid), Some(hi)) = (at(0.1), at(0.5), at(0.9)) {
        weights.fill(0.0);
        (weights[lo], weights[mid], weights[hi]) = (0.3, 0.4, 0.3);
    }
    rows.map(|row| {
        row.iter()
            .zip(&weights)
            .map(|(q, w)| f64::from(q.max(0.0)) * w)
            .sum::<f64>()
    })
    .sum::<f64>()
        / horizon as f64
}

/// Derives the trend of one row under `rule`; `recent_units` are the last `min(H, W)` closed
/// buckets' units.
pub fn derive(rule: &TrendRule, recent_units: &[f32], forecast: &RowForecast<'_>) -> Trend {
    derive_at(rule, recent_level(recent_units), forecast)
}

/// [`derive`] with the recent level already computed.
pub fn derive_at(rule: &TrendRule, recent: f64, forecast: &RowForecast<'_>) -> Trend {
    let s = &rule.settings;
    let expected = expected_level(forecast);
    let strength = strength(expected, recent, s.level_floor);
    let head = rule
        .head
        .zip(forecast.direction)
        .and_then(|(w, p)| head_call(w, p));
    let (direction, p_up) = match head {
        Some(call) => call,
        None => {
            let p_up = match forecast.p_up {
                Some(p) if p.is_finite() => f64::from(p).clamp(0.0, 1.0),
                _ => normal_p_up(
                    forecast,
                    expected - recent,
                    s.flat_band * recent.max(s.level_floor),
                ),
            };
            (classify(strength, s.flat_band), p_up)
        }
    };
    Trend {
        direction,
        strength: round6(strength),
        p_up: round6(p_up),
    }
}

/// The classifier's call argmax_k(w_k · p_k) and its P(rising); None when the probabilities are
/// not three finite values.
fn head_call(weights: [f64; 3], probs: &[f32]) -> Option<(Direction, f64)> {
    let p: [f64; 3] = [probs.first()?, probs.get(1)?, probs.get(2)?].map(|v| f64::from(*v));
    if p.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let classes = [Direction::Falling, Direction::Flat, Direction::Rising];
    let best = (0..3).max_by(|a, b| (weights[*a] * p[*a]).total_cmp(&(weights[*b] * p[*b])))?;
    Some((classes[best], p[2].clamp(0.0, 1.0)))
}

/// P(horizon mean − recent > margin) under a normal whose per-bucket spread comes from the
/// outermost quantiles, buckets independent: σ = mean_h (q_hi − q_lo) / (z(p_hi) − z(p_lo)) / √H.
fn normal_p_up(forecast: &RowForecast<'_>, diff: f64, margin: f64) -> f64 {
    let std = Normal::standard();
    let levels = forecast.levels;
    let nq = levels.len().max(1);
    let horizon = forecast.quantiles.len() / nq;
    let sigma = if levels.len() >= 2 && horizon > 0 {
        let dz = std.inverse_cdf(levels[nq - 1]) - std.inverse_cdf(levels[0]);
        let spread = forecast
            .quantiles
            .chunks_exact(nq)
            .map(|row| f64::from(row[nq - 1] - row[0]).max(0.0))
            .sum::<f64>()
            / horizon as f64;
        if dz > 0.0 {
            spread / dz / (horizon as f64).sqrt()
        } else {
            0.0
        }
    } else {
        0.0
    };
    let excess = diff - margin;
    if sigma > 1e-9 {
        std.cdf(excess / sigma)
    } else if excess > 0.0 {
        1.0
    } else {
        0.0
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
    use crate::scoring::manifest::DIRECTION_CLASSES;

    const RULE: TrendRule = TrendRule {
        settings: TrendSettings {
            flat_band: 0.2,
            level_floor: 1.0,
        },
        head: None,
    };
    const LEVELS: [f64; 3] = [0.1, 0.5, 0.9];

    fn row<'a>(q: &'a [f32], mean: Option<&'a [f32]>) -> RowForecast<'a> {
        RowForecast {
            levels: &LEVELS,
            quantiles: q,
            mean,
            direction: None,
            p_up: None,
        }
    }

    #[test]
    fn a_skewed_flat_forecast_is_flat_not_falling() {
        // recent mean 10 from spiky days; median 6 but mean 10: the old median rule said falling
        let q = [2.0, 6.0, 22.0, 2.0, 6.0, 22.0];
        let mean = [10.0, 10.0];
        let t = derive(&RULE, &[0.0, 20.0, 0.0, 20.0], &row(&q, Some(&mean)));
        assert_eq!(t.direction, Direction::Flat);
        assert!(t.strength.abs() < 1e-9, "{}", t.strength);
        // without a mean output Swanson's mean 0.3*2 + 0.4*6 + 0.3*22 = 9.6 is used: still flat
        let t = derive(&RULE, &[0.0, 20.0, 0.0, 20.0], &row(&q, None));
        assert_eq!(t.direction, Direction::Flat);
        assert!((t.strength + 0.04).abs() < 1e-9, "{}", t.strength);
    }

    #[test]
    fn rising_and_falling_against_the_band_and_floor() {
        let q = [10.0, 15.0, 20.0, 10.0, 15.0, 20.0];
        let t = derive(&RULE, &[10.0, 10.0], &row(&q, Some(&[15.0, 15.0])));
        assert_eq!(t.direction, Direction::Rising);
        assert!((t.strength - 0.5).abs() < 1e-9);
        // margin 0.2*10 = 2, diff 5; sigma = 10 / 2.563 / sqrt(2) = 2.759; z = 1.087
        assert!((t.p_up - 0.8616).abs() < 1e-3, "{}", t.p_up);
        let t = derive(&RULE, &[10.0], &row(&q, Some(&[7.0, 7.0])));
        assert_eq!(t.direction, Direction::Falling);
        // 0.05 over a floor of 1 is flat; 0.5 over the floor is rising
        assert_eq!(
            derive(&RULE, &[0.0], &row(&q, Some(&[0.05, 0.05]))).direction,
            Direction::Flat
        );
        assert_eq!(
            derive(&RULE, &[0.0], &row(&q, Some(&[0.5, 0.5]))).direction,
            Direction::Rising
        );
    }

    #[test]
    fn the_classifier_calls_with_its_weights_and_gives_p_up() {
        let rule = TrendRule {
            head: Some([1.0, 1.0, 2.0]),
            ..RULE
        };
        let q = [1.0, 2.0, 3.0];
        let mut f = row(&q, Some(&[2.0]));
        f.direction = Some(&[0.2, 0.45, 0.35]);
        let t = derive(&rule, &[2.0], &f);
        assert_eq!(t.direction, Direction::Rising, "2 x 0.35 beats 0.45");
        assert!((t.p_up - 0.35).abs() < 1e-6);
        assert!(
            t.strength.abs() < 1e-9,
            "strength still from the expected level"
        );
        f.direction = Some(&[f32::NAN, 0.5, 0.5]);
        let t = derive(&rule, &[2.0], &f);
        assert_eq!(
            t.direction,
            Direction::Flat,
            "a NaN head falls back to the level"
        );
    }

    #[test]
    fn a_configured_band_other_than_the_models_turns_the_classifier_off() {
        let text = include_str!("../../../../models/trendcast-demand/manifest.json");
        let mut m: ModelManifest = serde_json::from_str(text).expect("shipped manifest");
        m.direction_output = Some(DirectionSpec {
            name: "direction".into(),
            shape: vec![-1, 3],
            classes: DIRECTION_CLASSES.iter().map(|c| c.to_string()).collect(),
            flat_band: 0.25,
            level_floor: 1.0,
            call_weights: [1.0, 1.0, 1.5],
        });
        let left = TrendRule::for_model(&TrendConfig::default(), &m);
        assert_eq!(left.head, Some([1.0, 1.0, 1.5]));
        assert_eq!(left.settings.flat_band, 0.25);
        let other = TrendConfig {
            flat_band: Some(0.1),
            level_floor: None,
        };
        let rule = TrendRule::for_model(&other, &m);
        assert_eq!(rule.head, None);
        assert_eq!(rule.settings.flat_band, 0.1);
        m.direction_output = None;
        let rule = TrendRule::for_model(&TrendConfig::default(), &m);
        assert_eq!(rule.settings.flat_band, DEFAULT_FLAT_BAND);
    }

    #[test]
    fn realised_class_uses_the_same_definition() {
        let s = RULE.settings;
        assert_eq!(realised(12.5, 10.0, &s), Direction::Rising);
        assert_eq!(realised(11.0, 10.0, &s), Direction::Flat);
        assert_eq!(
            realised(0.0, 0.5, &s),
            Direction::Falling,
            "0.5 below on a floor of 1"
        );
        assert_eq!(realised(0.0, 0.1, &s), Direction::Flat);
    }
}
