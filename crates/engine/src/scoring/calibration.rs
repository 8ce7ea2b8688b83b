//! Online interval calibration: adaptive conformal inference per horizon step.
//!
//! Why: the model's intervals are widened on validation origins, but demand shifts (a season,
//! a promotion, a shop-wide rush) and intervals tuned on last month cover less this month
//! (Online Retail's November: 0.73 of the 80 % interval). The engine sees the actuals as buckets
//! close, so it can keep its own intervals honest.
//!
//! How: per horizon step h (1..=H) and for the horizon total, two log-multipliers θ_lo, θ_hi
//! stretch the distance from the median to the lower and upper quantile:
//! `lo' = med − e^θ_lo · (med − lo)`, `hi' = med + e^θ_hi · (hi − med)`. Each comparison of a
//! published interval with its actual moves them as in adaptive conformal inference (Gibbs &
//! Candès 2021): `θ += η · (miss − α)`, with α the nominal miss rate of that side (0.1 for a
//! 0.1–0.9 interval), so a side that misses more than α widens and one that misses less
//! narrows. `η = gamma / n`, with n the observations per closed bucket seen lately, makes the
//! speed per bucket independent of how many SKUs there are: after a shift the widths move by
//! about `gamma · (miss rate − α)` per bucket.
//!
//! What is compared: the scorer keeps, per tracked SKU, the interval band it published at one
//! scoring (a [`Snapshot`]); later scorings of that SKU read the actuals of the snapshot's
//! buckets out of the window and feed them here, step by step. Once every step is compared (or
//! has slid out of the window) the snapshot is dropped, and a later scoring picked by a hash of
//! the SKU and the bucket (one in `online::START_EVERY`) takes the next, so that bands start on
//! every weekday rather than every H buckets from the same one. The widths are per input partition,
//! so they are checkpointed and move with the partition like every other piece of state
//! ([`CalibrationState`]); the snapshots are not: after a restart the comparisons in flight are
//! lost, and comparing resumes with the next scorings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::window::BucketIndex;

/// Every owned partition's [`CalibrationState`]: written by the scorer, saved and restored by
/// the checkpointer with the partition's windows, dropped when the partition is revoked. Cheap
/// to clone (one shared table).
#[derive(Debug, Clone, Default)]
pub struct CalibrationTable {
    states: Arc<Mutex<HashMap<u16, CalibrationState>>>,
}

impl CalibrationTable {
    /// The table, locked (a poisoned lock still holds valid widths: every update is a plain
    /// assignment of finite numbers).
    pub fn lock(&self) -> MutexGuard<'_, HashMap<u16, CalibrationState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of partition `p`'s state, if it has one.
    pub fn get(&self, p: u16) -> Option<CalibrationState> {
        self.lock().get(&p).cloned()
    }

    /// Sets partition `p`'s state (a restore).
    pub fn insert(&self, p: u16, state: CalibrationState) {
        self.lock().insert(p, state);
    }

    /// Forgets `partitions` (revoked).
    pub fn release(&self, partitions: &[u16]) {
        let mut states = self.lock();
        for p in partitions {
            states.remove(p);
        }
    }

    /// Per track (steps, then the total): the rolling coverage, published and unadjusted,
    /// averaged over the partitions and strata by their observation rates; NaN before any
    /// observation.
    pub fn coverage(&self, tracks: usize) -> Vec<(f64, f64)> {
        let states = self.lock();
        (0..tracks)
            .map(|k| {
                let mut sums = (0.0, 0.0, 0.0);
                let all = states
                    .values()
                    .flat_map(|s| (0..STRATA).filter_map(move |z| s.stratum(z).get(k)));
                for t in all {
                    if t.coverage.is_finite() && t.raw_coverage.is_finite() {
                        let w = t.per_bucket.max(1.0);
                        sums = (
                            sums.0 + w * t.coverage,
                            sums.1 + w * t.raw_coverage,
                            sums.2 + w,
                        );
                    }
                }
                if sums.2 > 0.0 {
                    (sums.0 / sums.2, sums.1 / sums.2)
                } else {
                    (f64::NAN, f64::NAN)
                }
            })
            .collect()
    }
}

/// `[scoring.calibration]`: the online layer's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineSettings {
    /// Whether published intervals are adjusted online at all.
    pub enabled: bool,
    /// Speed: change of θ per closed bucket per unit of excess miss rate.
    pub gamma: f64,
    /// |θ| never exceeds this (e^3 ≈ 20×).
    pub max_log_scale: f64,
    /// Most SKUs with a snapshot at once (a sample bounds the memory: ~200 bytes each).
    pub max_tracked: usize,
    /// Buckets over which the rolling coverage (the metric) averages.
    pub coverage_buckets: f64,
}

impl Default for OnlineSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            gamma: 0.5,
            max_log_scale: 3.0,
            max_tracked: 200_000,
            coverage_buckets: 28.0,
        }
    }
}

/// One step's (or the total's) adaptive widths and what it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Log-multipliers of the lower and upper half-widths.
    pub theta: [f64; 2],
    /// Observations per closed bucket, smoothed.
    pub per_bucket: f64,
    /// Observations counted for `bucket` so far.
    pub in_bucket: f64,
    /// The newest actual bucket observed.
    pub bucket: BucketIndex,
    /// Rolling coverage of the published (adjusted) interval.
    pub coverage: f64,
    /// Rolling coverage the unadjusted interval would have had.
    pub raw_coverage: f64,
    /// Observations so far.
    pub observed: u64,
}

impl Default for Track {
    fn default() -> Self {
        Self {
            theta: [0.0, 0.0],
            per_bucket: 0.0,
            in_bucket: 0.0,
            bucket: BucketIndex::MIN,
            coverage: f64::NAN,
            raw_coverage: f64::NAN,
            observed: 0,
        }
    }
}

/// One comparison: the interval published, the one before the online layer, and the actual.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The bucket the actual is of (the last bucket of a total).
    pub bucket: BucketIndex,
    /// Published lower and upper quantile.
    pub band: [f32; 2],
    /// The same before the online adjustment.
    pub raw_band: [f32; 2],
    /// What happened.
    pub actual: f32,
}

impl Track {
    /// Multiplier of the lower and upper half-width.
    pub fn scales(&self) -> [f64; 2] {
        self.theta.map(f64::exp)
    }

    fn observe(&mut self, o: &Observation, alpha: [f64; 2], s: &OnlineSettings) {
        if o.bucket > self.bucket {
            if self.bucket != BucketIndex::MIN {
                let w = if self.per_bucket == 0.0 { 1.0 } else { 0.2 };
                self.per_bucket += w * (self.in_bucket - self.per_bucket);
            }
            self.bucket = o.bucket;
            self.in_bucket = 0.0;
        }
        self.in_bucket += 1.0;
        let n = self.per_bucket.max(self.in_bucket).max(1.0);
        let eta = s.gamma / n;
        let misses = [o.actual < o.band[0], o.actual > o.band[1]];
        for side in 0..2 {
            let miss = f64::from(u8::from(misses[side]));
            self.theta[side] = (self.theta[side] + eta * (miss - alpha[side]))
                .clamp(-s.max_log_scale, s.max_log_scale);
        }
        let covered = f64::from(u8::from(!misses[0] && !misses[1]));
        let raw = f64::from(u8::from(
            o.raw_band[0] <= o.actual && o.actual <= o.raw_band[1],
        ));
        let w = 1.0 / (n * s.coverage_buckets).max(1.0);
        let ew = |old: f64, new: f64| {
            if old.is_nan() {
                new
            } else {
                old + w * (new - old)
            }
        };
        self.coverage = ew(self.coverage, covered);
        self.raw_coverage = ew(self.raw_coverage, raw);
        self.observed += 1;
    }
}

/// Level strata the widths are kept apart by (Mondrian conformal): a row's stratum is
/// `⌊log2(1 + level)⌋`, capped, with `level` its expected units per bucket. A partition holds
/// SKUs that sell 0.1 a day beside SKUs that sell 50; one width for all of them would be set by
/// the many slow sellers (mostly zeros, easily covered) and leave the fast ones short.
pub const STRATA: usize = 8;

/// The stratum of a row whose expected level is `level` units per bucket.
pub fn stratum_of(level: f64) -> usize {
    if level.is_finite() && level > 0.0 {
        ((1.0 + level).log2().floor() as usize).min(STRATA - 1)
    } else {
        0
    }
}

/// One partition's widths: per stratum, a track per horizon step, then one for the horizon
/// total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationState {
    /// `STRATA × (horizon + 1)` tracks, stratum by stratum.
    pub tracks: Vec<Track>,
}

impl CalibrationState {
    /// Neutral widths for a model of `horizon` steps.
    pub fn new(horizon: usize) -> Self {
        Self {
            tracks: vec![Track::default(); STRATA * (horizon + 1)],
        }
    }

    /// Whether it fits a model of `horizon` steps.
    pub fn fits(&self, horizon: usize) -> bool {
        self.tracks.len() == STRATA * (horizon + 1) && self.check().is_ok()
    }

    /// Why a decoded state cannot be used, if it cannot: a track count that is not whole
    /// strata, or a value outside what the layer itself writes. Checked on every restore, so a
    /// damaged checkpoint is refused rather than served.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.tracks.is_empty() || self.tracks.len() % STRATA != 0 {
            return Err("track count is not a whole number of strata");
        }
        let share = |v: f64| v.is_nan() || (0.0..=1.0).contains(&v);
        let count = |v: f64| v.is_finite() && v >= 0.0;
        for t in &self.tracks {
            if !t.theta.iter().all(|v| v.is_finite()) {
                return Err("a width multiplier is not finite");
            }
            if !count(t.per_bucket) || !count(t.in_bucket) {
                return Err("an observation rate is negative or not finite");
            }
            if !share(t.coverage) || !share(t.raw_coverage) {
                return Err("a rolling coverage is outside 0..1");
            }
        }
        Ok(())
    }

    /// Stratum `stratum`'s tracks: the steps, then the total.
    pub fn stratum(&self, stratum: usize) -> &[Track] {
        let n = self.tracks.len() / STRATA;
        let k = stratum.min(STRATA - 1);
        &self.tracks[k * n..(k + 1) * n]
    }

    fn stratum_mut(&mut self, stratum: usize) -> &mut [Track] {
        let n = self.tracks.len() / STRATA;
        let k = stratum.min(STRATA - 1);
        &mut self.tracks[k * n..(k + 1) * n]
    }
}

/// Share of the median that a side's half-width counts as at least when it is widened: a
/// side with no width at all (the lower quantile equal to a positive median, common where the
/// model's quantiles crossed and were sorted) could otherwise never be widened by a multiplier.
pub const WIDTH_FLOOR: f64 = 0.25;

/// The half-width of a side of width `width` under multiplier `scale`: `scale · width` when
/// narrowing, `width + (scale − 1) · max(width, floor)` when widening (the same at 1, and
/// continuous).
pub fn scaled_width(width: f64, scale: f64, floor: f64) -> f64 {
    if scale <= 1.0 {
        scale * width
    } else {
        width + (scale - 1.0) * width.max(floor)
    }
}

/// The smallest multiplier under which a side of width `width` reaches `gap` beyond the median
/// ([`scaled_width`]); +∞ when none does.
pub fn needed_scale(gap: f64, width: f64, floor: f64) -> f64 {
    if gap <= 0.0 {
        f64::NEG_INFINITY
    } else if gap <= width {
        gap / width
    } else if width.max(floor) > 0.0 {
        1.0 + (gap - width) / width.max(floor)
    } else {
        f64::INFINITY
    }
}

/// Stretches the outer quantiles of `q` (one day's, increasing) about `median` by `scales`
/// ([`scaled_width`], with a floor of [`WIDTH_FLOOR`] · median on each side).
pub fn stretch(q: &mut [f32], median: f32, scales: [f64; 2]) {
    let n = q.len();
    if n < 2 {
        return;
    }
    let m = f64::from(median);
    let floor = WIDTH_FLOOR * m.max(0.0);
    let lo = m - scaled_width(m - f64::from(q[0]), scales[0], floor);
    let hi = m + scaled_width(f64::from(q[n - 1]) - m, scales[1], floor);
    q[0] = (lo.max(0.0) as f32).min(median);
    q[n - 1] = (hi as f32).max(median);
}

/// The band published at one scoring of a SKU, kept until its buckets are compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The scored (last closed) bucket: step h is bucket `origin + h`.
    pub origin: BucketIndex,
    /// The SKU's input partition.
    pub partition: u16,
    /// The row's level stratum ([`stratum_of`]).
    pub stratum: usize,
    /// Per step: published lower, upper, then the same before the online layer.
    pub steps: Box<[[f32; 4]]>,
    /// The total's published lower, upper, and the same before the online layer.
    pub total: [f32; 4],
    /// Steps compared so far.
    pub compared: usize,
}

/// The comparisons a scoring at bucket `at` makes possible for `snapshot`: `(step index,
/// observation)` for each step not yet compared whose bucket is closed and still in the window,
/// then the total's once its last bucket is. `units` are the window's units, oldest first,
/// the last one bucket `at`'s. Advances `snapshot.compared`; returns whether the snapshot is
/// done (every step compared or lost) and may be replaced.
pub fn compare(
    snapshot: &mut Snapshot,
    at: BucketIndex,
    units: &[f32],
    out: &mut Vec<(usize, Observation)>,
) -> bool {
    let horizon = snapshot.steps.len();
    let oldest = at - units.len() as i64 + 1;
    let actual_of = |b: BucketIndex| -> Option<f32> {
        (b >= oldest && b <= at).then(|| units[(b - oldest) as usize].max(0.0))
    };
    while snapshot.compared < horizon {
        let h = snapshot.compared + 1;
        let bucket = snapshot.origin + h as i64;
        if bucket > at {
            return false;
        }
        let s = snapshot.steps[h - 1];
        if let Some(actual) = actual_of(bucket) {
            out.push((
                h - 1,
                Observation {
                    bucket,
                    band: [s[0], s[1]],
                    raw_band: [s[2], s[3]],
                    actual,
                },
            ));
        }
        snapshot.compared = h;
    }
    let first = snapshot.origin + 1;
    let last = snapshot.origin + horizon as i64;
    if first >= oldest && last <= at {
        let actual: f32 = (first..=last).filter_map(actual_of).sum();
        let t = snapshot.total;
        out.push((
            horizon,
            Observation {
                bucket: last,
                band: [t[0], t[1]],
                raw_band: [t[2], t[3]],
                actual,
            },
        ));
    }
    true
}

/// Folds `observations` into `state`'s stratum `stratum` (nominal miss rates `alpha` of the
/// lower and upper side).
pub fn observe(
    state: &mut CalibrationState,
    stratum: usize,
    observations: &[(usize, Observation)],
    alpha: [f64; 2],
    settings: &OnlineSettings,
) {
    let tracks = state.stratum_mut(stratum);
    for (step, o) in observations {
        if let Some(track) = tracks.get_mut(*step) {
            track.observe(o, alpha, settings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHA: [f64; 2] = [0.1, 0.1];

    fn obs(bucket: i64, actual: f32) -> Observation {
        Observation {
            bucket,
            band: [5.0, 15.0],
            raw_band: [5.0, 15.0],
            actual,
        }
    }

    #[test]
    fn widths_settle_where_each_side_misses_its_share() {
        // actuals uniform on 0..20 against a fixed band 5..15: each side misses 25 %
        let s = OnlineSettings::default();
        let mut t = Track::default();
        for b in 0..200 {
            for k in 0..100 {
                t.observe(&obs(b, (k % 20) as f32 + 0.5), ALPHA, &s);
            }
        }
        assert!(
            t.theta[0] > 0.5 && t.theta[1] > 0.5,
            "both sides widen: {:?}",
            t.theta
        );
        assert!((t.per_bucket - 100.0).abs() < 1.0, "{}", t.per_bucket);
        assert!((t.raw_coverage - 0.5).abs() < 0.05, "{}", t.raw_coverage);
    }

    #[test]
    fn the_speed_per_bucket_does_not_depend_on_the_number_of_skus() {
        let s = OnlineSettings::default();
        let run = |per: usize| {
            let mut t = Track::default();
            for b in 0..20 {
                for _ in 0..per {
                    t.observe(&obs(b, 30.0), ALPHA, &s);
                }
            }
            t.theta[1]
        };
        let (few, many) = (run(10), run(10_000));
        assert!((few - many).abs() < 0.1 * few, "{few} vs {many}");
        assert!(few <= s.max_log_scale);
    }

    #[test]
    fn a_snapshot_is_compared_step_by_step_then_as_a_total() {
        let mut snap = Snapshot {
            origin: 10,
            partition: 0,
            stratum: 0,
            steps: vec![[1.0, 3.0, 1.0, 3.0]; 3].into_boxed_slice(),
            total: [4.0, 8.0, 4.0, 8.0],
            compared: 0,
        };
        let mut out = Vec::new();
        // window of 4 ending at bucket 12: buckets 9..=12
        assert!(!compare(&mut snap, 12, &[9.0, 9.0, 2.0, 5.0], &mut out));
        assert_eq!(
            out.iter().map(|(s, o)| (*s, o.actual)).collect::<Vec<_>>(),
            vec![(0, 2.0), (1, 5.0)]
        );
        out.clear();
        assert!(compare(&mut snap, 14, &[2.0, 5.0, 0.0, 7.0], &mut out));
        assert_eq!(
            out.iter().map(|(s, o)| (*s, o.actual)).collect::<Vec<_>>(),
            vec![(2, 0.0), (3, 7.0)]
        );
        // a step that slid out of the window is lost, not compared
        let mut late = Snapshot {
            compared: 0,
            ..snap.clone()
        };
        out.clear();
        assert!(compare(&mut late, 40, &[1.0; 4], &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn stretch_keeps_the_median_inside_and_the_floor_at_zero() {
        let mut q = [2.0, 5.0, 9.0];
        stretch(&mut q, 5.0, [3.0, 2.0]);
        assert_eq!(q, [0.0, 5.0, 13.0]);
        stretch(&mut q, 5.0, [0.5, 0.5]);
        assert_eq!(q, [2.5, 5.0, 9.0]);
        // a side without width widens from a quarter of the median
        let mut q = [5.0, 5.0, 5.0];
        stretch(&mut q, 5.0, [2.0, 3.0]);
        assert_eq!(q, [3.75, 5.0, 7.5]);
        assert_eq!(needed_scale(1.25, 0.0, 1.25), 2.0);
        assert_eq!(needed_scale(2.0, 4.0, 1.25), 0.5);
        assert_eq!(needed_scale(1.0, 0.0, 0.0), f64::INFINITY);
    }
}
