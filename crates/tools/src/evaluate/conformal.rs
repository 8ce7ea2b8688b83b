//! Offline conformal calibration: the per-step multipliers of the interval half-widths that the
//! manifest's `distribution.interval_scales` and `total_scales` ship (docs/TRENDS.md,
//! "Intervals").
//!
//! Why split conformal per step and per side: the demand head's intervals are right on average
//! over the days it was trained on but not per step (later steps are wider in truth than in the
//! model) nor per side (demand is skewed: misses above are more common than below). On
//! validation origins only, `trendcast evaluate --fit-conformal` collects, per horizon step and
//! for the horizon total, each pair's coherent but uncalibrated band and its actual, and picks
//! for each side the smallest multiplier under which at most α of the pairs miss on that side
//! (the conformal order statistic ⌈(1 − α)(n + 1)⌉ of the needed multipliers). The online layer
//! then follows the shifts after that.

use serde::Serialize;

use trendcast_engine::scoring::calibration::{needed_scale, WIDTH_FLOOR};

/// Multipliers are kept within this range (a step with no spread at all cannot be widened by a
/// multiplier, and a handful of pairs should not give a 1000× band).
const SCALE_RANGE: (f64, f64) = (0.05, 20.0);

/// One pair's band about its median and what happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Lower quantile, median, upper quantile.
    pub band: [f32; 3],
    /// The actual.
    pub actual: f32,
}

/// The samples of a run: per horizon step, then for the horizon total.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// `steps[h]` holds step h + 1's samples.
    pub steps: Vec<Vec<Sample>>,
    /// The horizon totals'.
    pub total: Vec<Sample>,
}

impl Samples {
    /// Adds a step's sample, growing the steps as needed.
    pub fn push_step(&mut self, step: usize, sample: Sample) {
        if self.steps.len() <= step {
            self.steps.resize_with(step + 1, Vec::new);
        }
        self.steps[step].push(sample);
    }
}

/// What `--fit-conformal` writes: the manifest's `distribution` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fitted {
    /// The correlation the samples were taken under.
    pub correlation: f64,
    /// Per step, (lower, upper).
    pub interval_scales: Vec<[f64; 2]>,
    /// The horizon total's (lower, upper), when there were totals.
    pub total_scales: Option<[f64; 2]>,
}

/// The multipliers for nominal miss rates `alpha` (lower, upper side).
pub fn fit(samples: &Samples, alpha: [f64; 2], correlation: f64) -> Fitted {
    Fitted {
        correlation,
        interval_scales: samples.steps.iter().map(|s| scales(s, alpha)).collect(),
        total_scales: (!samples.total.is_empty()).then(|| scales(&samples.total, alpha)),
    }
}

/// Both sides' multipliers over one set of samples.
fn scales(samples: &[Sample], alpha: [f64; 2]) -> [f64; 2] {
    [0, 1].map(|side| {
        let needed: Vec<f64> = samples.iter().map(|s| needed(s, side)).collect();
        conformal_quantile(needed, alpha[side])
    })
}

/// The smallest multiplier of side `side`'s half-width under which `s` is not missed on that
/// side (the engine's `calibration::needed_scale`, with its width floor): −∞ when it cannot be
/// missed there, +∞ when no multiplier covers it.
fn needed(s: &Sample, side: usize) -> f64 {
    let [lo, med, hi] = s.band.map(f64::from);
    let actual = f64::from(s.actual);
    let floor = WIDTH_FLOOR * med.max(0.0);
    if side == 0 {
        needed_scale(med - actual, med - lo, floor)
    } else {
        needed_scale(actual - med, hi - med, floor)
    }
}

/// The ⌈(1 − α)(n + 1)⌉-th smallest of `needed`, clamped to [`SCALE_RANGE`]; 1 for no samples.
fn conformal_quantile(mut needed: Vec<f64>, alpha: f64) -> f64 {
    if needed.is_empty() {
        return 1.0;
    }
    needed.sort_by(f64::total_cmp);
    let n = needed.len();
    let rank = ((1.0 - alpha) * (n as f64 + 1.0)).ceil() as usize;
    let v = needed[rank.clamp(1, n) - 1];
    v.clamp(SCALE_RANGE.0, SCALE_RANGE.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(actual: f32) -> Sample {
        Sample {
            band: [4.0, 5.0, 6.0],
            actual,
        }
    }

    #[test]
    fn each_side_misses_its_share_after_scaling() {
        // actuals 5 + k/10 for k in -50..=50: the upper side needs 4.5 to leave 10 % above
        let samples: Vec<Sample> = (-50..=50).map(|k| sample(5.0 + k as f32 / 10.0)).collect();
        let [lo, hi] = scales(&samples, [0.1, 0.1]);
        for (side, s) in [(0, lo), (1, hi)] {
            let missed = samples.iter().filter(|x| needed(x, side) > s).count();
            assert!(
                missed as f64 <= 0.1 * samples.len() as f64,
                "{side}: {missed}"
            );
            assert!(missed >= 8, "{side}: {missed} is far under 10 %");
        }
    }

    #[test]
    fn a_side_that_is_never_missed_narrows_and_one_that_cannot_be_widened_is_capped() {
        let below_never: Vec<Sample> = (0..50).map(|k| sample(5.0 + k as f32)).collect();
        let [lo, hi] = scales(&below_never, [0.1, 0.1]);
        assert_eq!(lo, SCALE_RANGE.0);
        assert_eq!(hi, SCALE_RANGE.1);
        // a zero-width side widens from its floor (a quarter of the median): 1 + 4 / 1.25
        let flat = Sample {
            band: [5.0, 5.0, 5.0],
            actual: 9.0,
        };
        assert!((scales(&[flat; 10], [0.1, 0.1])[1] - 4.2).abs() < 1e-9);
        // at a zero median there is no floor, and no multiplier reaches the actual
        let zero = Sample {
            band: [0.0, 0.0, 0.0],
            actual: 9.0,
        };
        assert_eq!(scales(&[zero; 10], [0.1, 0.1])[1], SCALE_RANGE.1);
    }
}
