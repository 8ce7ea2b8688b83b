//! One predictive distribution per update: every published field follows from it.
//!
//! Why: the shipped model has two heads that never see each other. Its demand head gives daily
//! quantiles and a daily mean; its direction classifier gives calibrated probabilities of
//! falling, flat and rising. Published as they come, an update could read "rising, p_up 0.84"
//! beside an expected change of −46 %, which no distribution of non-negative demand allows
//! (docs/TRENDS.md, "One forecast"). This module turns a row's raw outputs into one
//! distribution G of the horizon's level L (mean units per bucket) and derives from it:
//!
//! 1. **F**, the demand head's own distribution of L: a lognormal whose mean is the mean of the
//!    daily means and whose variance adds the daily spreads (σ_h from the outer quantiles) with
//!    a correlation ρ between days (the manifest's `distribution.correlation`; days of one SKU
//!    move together, so independence would make the total far too narrow).
//! 2. **G**, F reweighted so that the three regions of the trend definition (L below
//!    `r − band·m`, between, above `r + band·m`, with `m = max(r, level_floor)`) carry the
//!    classifier's calibrated probabilities; within each region G keeps F's shape. Without a
//!    classifier G = F.
//! 3. The expected level E_G[L]. Daily means and quantiles are scaled by E_G[L] / E_F[L], so
//!    they average to it; `strength` is E_G[L] against r; `p_up` = G(L > r + band·m), which is
//!    the classifier's own probability; the call is the classifier's weighted argmax among the
//!    calls the strength's sign allows (no rising call below r, no falling one above); the horizon totals are quantiles of H·L under G.
//!
//! The invariants this gives every update, checked by `coherence_violations` (proptests below,
//! the planted-trend test, the demo, the load test's replay and `trendcast evaluate`):
//! * `strength ≥ p_up · (1 + band) − 1`: E_G[L] ≥ p_up · (r + band·m) because demand is never
//!   negative and G's rising mass lies above r + band·m;
//! * a rising call never has a negative strength, a falling call never a positive one;
//! * each day's quantiles are ordered and non-negative, and its mean lies between the outer ones;
//! * the total's quantiles are ordered and its mean is the sum of the daily means.

use statrs::distribution::{ContinuousCDF, Normal};

use super::calibration::stretch;
use super::manifest::ModelManifest;
use super::trend::{classify, expected_level, strength, RowForecast, TrendRule};
use crate::publish::{Direction, Trend, TrendUpdate};

/// Correlation of daily demand errors when the manifest names none.
pub const DEFAULT_CORRELATION: f64 = 0.3;

/// Probability mass below which a region of F is treated as empty.
const EMPTY: f64 = 1e-12;

/// The smallest lognormal shape used (a point forecast has no spread, but the formulas divide
/// by it).
const MIN_SHAPE: f64 = 1e-4;

/// The quantiles and mean of total units over a span of buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Total {
    /// Buckets summed.
    pub buckets: usize,
    /// Quantiles at the model's levels, increasing.
    pub quantiles: Vec<f32>,
    /// Expected total units (the sum of the daily means over the span).
    pub mean: f32,
}

/// What one row publishes besides its daily values (rewritten in place by [`cohere`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Coherent {
    /// Direction, strength and p_up from G.
    pub trend: Trend,
    /// Total units over the whole horizon, from G.
    pub total: Total,
    /// Total units over the first `lead_buckets` buckets, when asked for.
    pub lead: Option<Total>,
}

/// A lognormal: ln X ~ N(mu, s²); `None` stands for a point mass at zero.
#[derive(Debug, Clone, Copy)]
struct LogNormal {
    mu: f64,
    s: f64,
}

fn std_normal() -> Normal {
    Normal::standard()
}

impl LogNormal {
    /// Matched to `mean` and `var`; `None` when the mean is (nearly) zero.
    fn matched(mean: f64, var: f64) -> Option<Self> {
        if !mean.is_finite() || mean <= 1e-9 {
            return None;
        }
        let s2 = (1.0 + var.max(0.0) / (mean * mean)).ln();
        let s = s2.sqrt().max(MIN_SHAPE);
        Some(Self {
            mu: mean.ln() - s * s / 2.0,
            s,
        })
    }

    fn mean(&self) -> f64 {
        (self.mu + self.s * self.s / 2.0).exp()
    }

    fn cdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        if x.is_infinite() {
            return 1.0;
        }
        std_normal().cdf((x.ln() - self.mu) / self.s)
    }

    /// E[X; X ≤ x], the partial expectation below `x`.
    fn partial(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        if x.is_infinite() {
            return self.mean();
        }
        self.mean() * std_normal().cdf((x.ln() - self.mu - self.s * self.s) / self.s)
    }

    fn quantile(&self, v: f64) -> f64 {
        let v = v.clamp(1e-12, 1.0 - 1e-12);
        (self.mu + self.s * std_normal().inverse_cdf(v)).exp()
    }
}

/// One region of the level: `[lo, hi)`, its mass under F and under G, and G's mean in it.
#[derive(Debug, Clone, Copy)]
struct Region {
    lo: f64,
    hi: f64,
    f_lo: f64,
    f_mass: f64,
    g_mass: f64,
    mean: f64,
}

/// The three regions (falling, flat, rising) of the level under F and G.
fn regions(f: Option<LogNormal>, t_lo: f64, t_hi: f64, target: Option<[f64; 3]>) -> [Region; 3] {
    let edges = [
        (0.0, t_lo.max(0.0)),
        (t_lo.max(0.0), t_hi),
        (t_hi, f64::INFINITY),
    ];
    let mut out = edges.map(|(lo, hi)| {
        let (f_lo, f_hi) = f.map_or((0.0, 1.0), |f| (f.cdf(lo), f.cdf(hi)));
        let f_mass = if f.is_none() {
            // a point mass at zero: all of it in the region holding 0
            if lo <= 0.0 && hi > 0.0 {
                1.0
            } else {
                0.0
            }
        } else {
            (f_hi - f_lo).max(0.0)
        };
        let mean = match f {
            Some(f) if f_mass > EMPTY => ((f.partial(hi) - f.partial(lo)) / f_mass).clamp(lo, hi),
            // an empty region: its mass (if G gives it any) sits at the edge nearest F
            _ if lo <= 0.0 => hi.min(lo.max(0.0)),
            _ => lo,
        };
        Region {
            lo,
            hi,
            f_lo: if f.is_none() { 0.0 } else { f_lo },
            f_mass,
            g_mass: f_mass,
            mean,
        }
    });
    if let Some(p) = target {
        for (region, p) in out.iter_mut().zip(p) {
            region.g_mass = p;
        }
    }
    // a falling region that cannot hold anything (its upper edge at or below 0) passes its
    // mass to flat
    if out[0].hi <= 0.0 {
        out[1].g_mass += out[0].g_mass;
        out[0].g_mass = 0.0;
    }
    out
}

/// Normalised classifier probabilities (falling, flat, rising), when the row has three finite
/// non-negative ones with a positive sum; else, from a legacy head, P(rising) with the rest
/// split as F splits it.
fn target_probabilities(forecast: &RowForecast<'_>, f_split: [f64; 3]) -> Option<[f64; 3]> {
    if let Some(p) = forecast.direction.filter(|p| p.len() >= 3) {
        let p = [p[0], p[1], p[2]].map(f64::from);
        let sum: f64 = p.iter().sum();
        if p.iter().all(|v| v.is_finite() && *v >= 0.0) && sum > 0.0 {
            return Some(p.map(|v| v / sum));
        }
    }
    let up = forecast
        .p_up
        .map(f64::from)
        .filter(|p| p.is_finite())?
        .clamp(0.0, 1.0);
    let rest = f_split[0] + f_split[1];
    let share = if rest > EMPTY { f_split[0] / rest } else { 0.5 };
    Some([(1.0 - up) * share, (1.0 - up) * (1.0 - share), up])
}

/// G's quantile at `u`: the region holding u, then F's quantile within it.
fn g_quantile(f: Option<LogNormal>, regions: &[Region; 3], u: f64) -> f64 {
    let mut before = 0.0;
    for (k, r) in regions.iter().enumerate() {
        let last = k == regions.len() - 1;
        if r.g_mass <= 0.0 || (u >= before + r.g_mass && !last) {
            before += r.g_mass;
            continue;
        }
        let frac = ((u - before) / r.g_mass).clamp(0.0, 1.0);
        return match f {
            Some(f) if r.f_mass > EMPTY => f.quantile(r.f_lo + frac * r.f_mass).clamp(r.lo, r.hi),
            _ => r.mean,
        };
    }
    regions
        .iter()
        .rev()
        .find(|r| r.g_mass > 0.0)
        .map_or(0.0, |r| r.mean)
}

/// How a model's rows are made coherent.
#[derive(Debug, Clone)]
pub struct DistributionRule {
    /// The trend definition and the classifier's call weights.
    pub trend: TrendRule,
    /// Quantile levels of the model, increasing.
    pub levels: Vec<f64>,
    /// Correlation of the daily demand errors within one row.
    pub correlation: f64,
    /// Buckets of the lead-time total, when one is published.
    pub lead_buckets: Option<usize>,
    /// Per step, the offline conformal multipliers (lower, upper) of the daily half-widths;
    /// empty for none.
    pub interval_scales: Vec<[f64; 2]>,
    /// The same for the horizon total.
    pub total_scales: Option<[f64; 2]>,
}

/// Per-day standard deviation from the outer quantiles of one day.
fn day_sd(day: &[f32], dz: f64) -> f64 {
    let (Some(lo), Some(hi)) = (day.first(), day.last()) else {
        return 0.0;
    };
    if dz > 0.0 {
        (f64::from(*hi) - f64::from(*lo)).max(0.0) / dz
    } else {
        0.0
    }
}

/// Mean and variance of the total of the days' demand, errors correlated by `rho`.
fn total_moments(means: &[f64], sds: &[f64], rho: f64) -> (f64, f64) {
    let mean: f64 = means.iter().sum();
    let sum_sd: f64 = sds.iter().sum();
    let sum_var: f64 = sds.iter().map(|s| s * s).sum();
    (mean, sum_var + rho * (sum_sd * sum_sd - sum_var))
}

impl DistributionRule {
    /// The rule of `manifest` under `trend`, with a lead-time total of `lead_buckets`.
    pub fn for_model(
        manifest: &ModelManifest,
        trend: TrendRule,
        lead_buckets: Option<usize>,
    ) -> Self {
        let params = manifest.distribution.as_ref();
        Self {
            trend,
            levels: manifest.quantiles.clone(),
            correlation: params.map_or(DEFAULT_CORRELATION, |d| d.correlation),
            lead_buckets: lead_buckets.filter(|l| *l > 0),
            interval_scales: params
                .map(|d| d.interval_scales.clone())
                .unwrap_or_default(),
            total_scales: params.and_then(|d| d.total_scales),
        }
    }

    /// The index of the level nearest 0.5.
    pub fn median_index(&self) -> usize {
        (0..self.levels.len())
            .min_by(|a, b| {
                (self.levels[*a] - 0.5)
                    .abs()
                    .total_cmp(&(self.levels[*b] - 0.5).abs())
            })
            .unwrap_or(0)
    }

    /// Applies the offline conformal multipliers to the days and the total.
    fn calibrate_offline(&self, quantiles: &mut [f32], total: &mut [f32]) {
        let nq = self.levels.len().max(1);
        let mid = self.median_index();
        for (day, scales) in quantiles.chunks_exact_mut(nq).zip(&self.interval_scales) {
            let median = day[mid];
            stretch(day, median, *scales);
        }
        if let Some(scales) = self.total_scales {
            let median = total.get(mid).copied().unwrap_or(0.0);
            stretch(total, median, scales);
        }
    }

    fn dz(&self) -> f64 {
        match (self.levels.first(), self.levels.last()) {
            (Some(lo), Some(hi)) if hi > lo => {
                std_normal().inverse_cdf(*hi) - std_normal().inverse_cdf(*lo)
            }
            _ => 0.0,
        }
    }

    /// Makes one row coherent: rewrites `quantiles` (`[horizon × levels]`) and `mean`
    /// (`[horizon]`) in place and returns the trend and the totals (module docs).
    /// `forecast` carries the classifier's outputs (its quantiles and mean are ignored).
    pub fn cohere(
        &self,
        recent: f64,
        quantiles: &mut [f32],
        mean: &mut [f32],
        forecast: &RowForecast<'_>,
    ) -> Coherent {
        let nq = self.levels.len().max(1);
        let horizon = mean.len().min(quantiles.len() / nq);
        let dz = self.dz();
        sanitise(quantiles, mean, nq);
        let means: Vec<f64> = mean[..horizon].iter().map(|m| f64::from(*m)).collect();
        let sds: Vec<f64> = quantiles
            .chunks_exact(nq)
            .take(horizon)
            .map(|d| day_sd(d, dz))
            .collect();
        let (total_mean, total_var) = total_moments(&means, &sds, self.correlation);
        let h = horizon.max(1) as f64;
        let f = LogNormal::matched(total_mean / h, total_var / (h * h));
        let s = &self.trend.settings;
        let m = recent.max(s.level_floor);
        let (t_lo, t_hi) = (recent - s.flat_band * m, recent + s.flat_band * m);
        let f_regions = regions(f, t_lo, t_hi, None);
        let f_split = f_regions.map(|r| r.f_mass);
        let target = self
            .trend
            .head
            .is_some()
            .then(|| target_probabilities(forecast, f_split))
            .flatten()
            .or_else(|| forecast.p_up.and(target_probabilities(forecast, f_split)));
        let g = regions(f, t_lo, t_hi, target);
        let level = g.iter().map(|r| r.g_mass * r.mean).sum::<f64>();
        rescale(quantiles, mean, horizon, level, f.map_or(0.0, |f| f.mean()));
        let p_up = g[2].g_mass;
        let mut total = Total {
            buckets: horizon,
            quantiles: self
                .levels
                .iter()
                .map(|u| (h * g_quantile(f, &g, *u)) as f32)
                .collect(),
            mean: mean[..horizon].iter().sum(),
        };
        self.calibrate_offline(quantiles, &mut total.quantiles);
        hold_means(quantiles, mean, nq);
        let lead = self
            .lead_buckets
            .map(|l| self.lead_total(quantiles, mean, l.min(horizon), dz));
        Coherent {
            trend: self.trend_of(level, recent, p_up, target),
            total: ordered_total(total),
            lead,
        }
    }

    /// The call, strength and p_up of expected level `level` (module docs, step 3).
    fn trend_of(&self, level: f64, recent: f64, p_up: f64, target: Option<[f64; 3]>) -> Trend {
        let s = &self.trend.settings;
        let strength = strength(level, recent, s.level_floor);
        // The classifier's weighted argmax among the calls the strength's sign allows.
        let allowed = |d: Direction| match d {
            Direction::Rising => strength >= 0.0,
            Direction::Falling => strength <= 0.0,
            Direction::Flat => true,
        };
        let direction = match (self.trend.head, target) {
            (Some(w), Some(p)) => {
                let classes = [Direction::Falling, Direction::Flat, Direction::Rising];
                (0..3)
                    .filter(|k| allowed(classes[*k]))
                    .max_by(|a, b| (w[*a] * p[*a]).total_cmp(&(w[*b] * p[*b])))
                    .map_or(Direction::Flat, |k| classes[k])
            }
            _ => classify(strength, s.flat_band),
        };
        Trend {
            direction,
            strength: round6(strength),
            p_up: round6(p_up.clamp(0.0, 1.0)),
        }
    }

    /// Total over the first `buckets` days of the (already coherent) daily outputs: a lognormal
    /// matched to their means and correlated spreads.
    fn lead_total(&self, quantiles: &[f32], mean: &[f32], buckets: usize, dz: f64) -> Total {
        let nq = self.levels.len().max(1);
        let means: Vec<f64> = mean[..buckets].iter().map(|m| f64::from(*m)).collect();
        let sds: Vec<f64> = quantiles
            .chunks_exact(nq)
            .take(buckets)
            .map(|d| day_sd(d, dz))
            .collect();
        let (mu, var) = total_moments(&means, &sds, self.correlation);
        let dist = LogNormal::matched(mu, var);
        ordered_total(Total {
            buckets,
            quantiles: self
                .levels
                .iter()
                .map(|u| dist.map_or(0.0, |d| d.quantile(*u)) as f32)
                .collect(),
            mean: mean[..buckets].iter().sum(),
        })
    }
}

/// Non-finite values become 0, negatives 0, each day's quantiles sorted.
fn sanitise(quantiles: &mut [f32], mean: &mut [f32], nq: usize) {
    for v in quantiles.iter_mut().chain(mean.iter_mut()) {
        if !v.is_finite() || *v < 0.0 {
            *v = 0.0;
        }
    }
    for day in quantiles.chunks_exact_mut(nq) {
        day.sort_by(f32::total_cmp);
    }
}

/// Scales the days so that their means average `level` (F's own level `f_level`).
fn rescale(quantiles: &mut [f32], mean: &mut [f32], horizon: usize, level: f64, f_level: f64) {
    if f_level > 1e-9 {
        let c = (level / f_level) as f32;
        for v in quantiles.iter_mut().chain(mean.iter_mut()) {
            *v *= c;
        }
    } else {
        // F is a point mass at zero: the level G adds is spread evenly over the days
        for m in mean.iter_mut().take(horizon) {
            *m = level as f32;
        }
    }
}

/// Widens each day's outer quantiles so that its mean lies between them.
pub fn hold_means(quantiles: &mut [f32], mean: &[f32], nq: usize) {
    for (day, m) in quantiles.chunks_exact_mut(nq).zip(mean) {
        if let Some(lo) = day.first_mut() {
            *lo = lo.min(*m);
        }
        if let Some(hi) = day.last_mut() {
            *hi = hi.max(*m);
        }
    }
}

fn ordered_total(mut total: Total) -> Total {
    total.quantiles.sort_by(f32::total_cmp);
    for q in total.quantiles.iter_mut() {
        if !q.is_finite() || *q < 0.0 {
            *q = 0.0;
        }
    }
    total
}

fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        0.0
    }
}

/// Per day, the expected units a model without a mean output implies (the trend code's
/// quantile estimate: Swanson's weights where it has 0.1 / 0.5 / 0.9).
pub fn mean_from_quantiles(levels: &[f64], quantiles: &[f32]) -> Vec<f32> {
    quantiles
        .chunks_exact(levels.len().max(1))
        .map(|day| {
            expected_level(&RowForecast {
                levels,
                quantiles: day,
                mean: None,
                direction: None,
                p_up: None,
            }) as f32
        })
        .collect()
}

/// The expected level of a row as published: the mean of its daily means.
pub fn published_level(mean: &[f32]) -> f64 {
    expected_level(&RowForecast {
        levels: &[],
        quantiles: &[],
        mean: Some(mean),
        direction: None,
        p_up: None,
    })
}

/// A coherence property a published update broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// strength < p_up · (1 + band) − 1.
    StrengthBelowPUp,
    /// A rising call with a negative strength, or a falling call with a positive one.
    CallAgainstStrength,
    /// A day's quantiles out of order or negative.
    UnorderedQuantiles,
    /// A day's mean outside its outer quantiles.
    MeanOutsideBand,
    /// The total's quantiles out of order, or its mean not the sum of the daily means.
    IncoherentTotal,
}

/// One update's values as the coherence checks read them.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    /// Quantile levels, increasing.
    pub nq: usize,
    /// `[horizon × levels]`.
    pub quantiles: &'a [f32],
    /// `[horizon]`.
    pub mean: &'a [f32],
    /// The update's trend.
    pub trend: &'a Trend,
    /// The horizon total, when published.
    pub total: Option<&'a Total>,
    /// The flat band the call is for.
    pub flat_band: f64,
}

/// Every coherence property `update` breaks (module docs); empty for a coherent update.
pub fn coherence_violations(update: &Published<'_>) -> Vec<Violation> {
    const TOL: f64 = 1e-4;
    let mut out = Vec::new();
    let t = update.trend;
    if t.strength < t.p_up * (1.0 + update.flat_band) - 1.0 - TOL {
        out.push(Violation::StrengthBelowPUp);
    }
    let against = match t.direction {
        Direction::Rising => t.strength < -TOL,
        Direction::Falling => t.strength > TOL,
        Direction::Flat => false,
    };
    if against {
        out.push(Violation::CallAgainstStrength);
    }
    let nq = update.nq.max(1);
    let days = update.quantiles.chunks_exact(nq);
    if days
        .clone()
        .any(|d| d.windows(2).any(|w| w[0] > w[1]) || d.iter().any(|v| *v < 0.0))
    {
        out.push(Violation::UnorderedQuantiles);
    }
    let tol = |v: f32| 1e-4 * f64::from(v.abs()).max(1.0);
    if days.zip(update.mean).any(|(d, m)| {
        let (lo, hi) = (d[0], d[nq - 1]);
        f64::from(lo - m) > tol(*m) || f64::from(m - hi) > tol(*m)
    }) {
        out.push(Violation::MeanOutsideBand);
    }
    if let Some(total) = update.total {
        let sum: f32 = update.mean.iter().take(total.buckets).sum();
        let unordered = total.quantiles.windows(2).any(|w| w[0] > w[1]);
        if unordered || f64::from((total.mean - sum).abs()) > tol(sum) * 10.0 {
            out.push(Violation::IncoherentTotal);
        }
    }
    out
}

/// A published quantile map's values in increasing order of level (text keys such as "0.1"
/// do not sort numerically as text once a level like "0.05" is present).
pub fn by_level(quantiles: &std::collections::BTreeMap<String, f32>) -> Vec<f32> {
    let mut q: Vec<(f64, f32)> = quantiles
        .iter()
        .map(|(l, v)| (l.parse::<f64>().unwrap_or(f64::NAN), *v))
        .collect();
    q.sort_by(|a, b| a.0.total_cmp(&b.0));
    q.into_iter().map(|(_, v)| v).collect()
}

/// Every coherence property a trend update as published breaks (for readers of the output
/// topic: the tests, the demo and the load test's replay). Steps without a mean are checked
/// for everything but the mean.
pub fn update_violations(update: &TrendUpdate, flat_band: f64) -> Vec<Violation> {
    let mut quantiles = Vec::new();
    let mut mean = Vec::new();
    let mut nq = 0;
    for step in &update.horizon {
        let q = by_level(&step.quantiles);
        nq = q.len();
        mean.push(
            step.mean
                .unwrap_or_else(|| q.first().copied().unwrap_or(0.0)),
        );
        quantiles.extend(q);
    }
    let total = update.total.as_ref().map(|t| Total {
        buckets: t.buckets,
        quantiles: by_level(&t.quantiles),
        mean: t.mean,
    });
    coherence_violations(&Published {
        nq,
        quantiles: &quantiles,
        mean: &mean,
        trend: &update.trend,
        total: total.as_ref(),
        flat_band,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::trend::TrendSettings;
    use proptest::prelude::*;

    fn rule(head: bool) -> DistributionRule {
        DistributionRule {
            trend: TrendRule {
                settings: TrendSettings {
                    flat_band: 0.2,
                    level_floor: 1.0,
                },
                head: head.then_some([0.6, 1.0, 0.8]),
            },
            levels: vec![0.1, 0.5, 0.9],
            correlation: DEFAULT_CORRELATION,
            lead_buckets: Some(7),
            interval_scales: Vec::new(),
            total_scales: None,
        }
    }

    fn row(direction: Option<&[f32]>) -> RowForecast<'_> {
        RowForecast {
            levels: &[0.1, 0.5, 0.9],
            quantiles: &[],
            mean: None,
            direction,
            p_up: None,
        }
    }

    fn check(rule: &DistributionRule, q: &[f32], mean: &[f32], c: &Coherent) {
        let published = Published {
            nq: 3,
            quantiles: q,
            mean,
            trend: &c.trend,
            total: Some(&c.total),
            flat_band: rule.trend.settings.flat_band,
        };
        assert_eq!(
            coherence_violations(&published),
            vec![],
            "{c:?} {q:?} {mean:?}"
        );
    }

    #[test]
    fn the_issues_case_a_confident_rise_beside_a_falling_level_is_made_coherent() {
        // recent level 10, demand head says 5.4 a day (−46 %), the classifier 84 % rising
        let rule = rule(true);
        let mut q: Vec<f32> = (0..14).flat_map(|_| [2.0, 4.5, 10.0]).collect();
        let mut mean = vec![5.4_f32; 14];
        let c = rule.cohere(10.0, &mut q, &mut mean, &row(Some(&[0.06, 0.10, 0.84])));
        assert_eq!(c.trend.direction, Direction::Rising);
        assert!((c.trend.p_up - 0.84).abs() < 1e-6);
        assert!(c.trend.strength >= 0.84 * 1.2 - 1.0, "{:?}", c.trend);
        check(&rule, &q, &mean, &c);
        // the daily means now average the coherent level
        let level = published_level(&mean);
        assert!(
            (level - 10.0 * (1.0 + c.trend.strength)).abs() < 1e-3,
            "{level}"
        );
    }

    #[test]
    fn without_a_classifier_the_outputs_are_kept_and_p_up_comes_from_f() {
        let rule = rule(false);
        let mut q: Vec<f32> = (0..14).flat_map(|_| [8.0, 12.0, 16.0]).collect();
        let mut mean = vec![12.0_f32; 14];
        let before = (q.clone(), mean.clone());
        let c = rule.cohere(10.0, &mut q, &mut mean, &row(None));
        assert_eq!((q.clone(), mean.clone()), before);
        assert_eq!(
            c.trend.direction,
            Direction::Flat,
            "12 vs 10 is +20 %, not above"
        );
        assert!(c.trend.p_up > 0.2 && c.trend.p_up < 0.8, "{}", c.trend.p_up);
        assert!((c.total.mean - 168.0).abs() < 1e-3);
        // a 14-day total is narrower, relative to its mean, than one day
        let rel = (c.total.quantiles[2] - c.total.quantiles[0]) / c.total.mean;
        assert!(rel < 8.0 / 12.0, "{rel}");
        assert!(
            rel > 8.0 / 12.0 / 14f32.sqrt(),
            "correlated days: wider than independent"
        );
        let lead = c.lead.clone().expect("lead total");
        assert_eq!(lead.buckets, 7);
        assert!((lead.mean - 84.0).abs() < 1e-3);
        check(&rule, &q, &mean, &c);
    }

    #[test]
    fn a_rising_call_against_the_level_gives_way_to_the_best_allowed_call() {
        // weights favour rising; the classifier splits between falling and rising, and the
        // falling mass pulls the expected level below the recent one
        let rule = DistributionRule {
            trend: TrendRule {
                head: Some([1.0, 1.0, 3.0]),
                ..rule(true).trend
            },
            ..rule(true)
        };
        let mut q: Vec<f32> = (0..14).flat_map(|_| [0.0, 1.0, 4.0]).collect();
        let mut mean = vec![1.5_f32; 14];
        let c = rule.cohere(10.0, &mut q, &mut mean, &row(Some(&[0.7, 0.05, 0.25])));
        assert!(c.trend.strength < 0.0, "{:?}", c.trend);
        assert_eq!(c.trend.direction, Direction::Falling);
        check(&rule, &q, &mean, &c);
    }

    #[test]
    fn bad_numbers_are_cleaned_not_published() {
        let rule = rule(true);
        let mut q = vec![f32::NAN, -1.0, f32::INFINITY, 3.0, 1.0, 2.0];
        let mut mean = vec![f32::NAN, 2.0];
        let c = rule.cohere(0.0, &mut q, &mut mean, &row(Some(&[f32::NAN, 0.5, 0.5])));
        assert!(q.iter().chain(&mean).all(|v| v.is_finite() && *v >= 0.0));
        assert!(c.trend.strength.is_finite() && c.trend.p_up.is_finite());
        check(&rule, &q, &mean, &c);
    }

    fn day() -> impl Strategy<Value = ([f32; 3], f32)> {
        (0.0f32..50.0, 0.0f32..50.0, 0.0f32..200.0, 0.0f32..1.0).prop_map(|(a, b, c, w)| {
            let mut q = [a, b, c];
            q.sort_by(f32::total_cmp);
            let mean = q[0] + w * (q[2] - q[0]);
            (q, mean)
        })
    }

    proptest! {
        #[test]
        fn every_row_is_coherent(
            days in proptest::collection::vec(day(), 1..20),
            window in proptest::collection::vec(0.0f32..100.0, 1..28),
            probs in proptest::array::uniform3(0.0f32..1.0),
            head in any::<bool>(),
            zero_rows in any::<bool>(),
        ) {
            let rule = rule(head);
            let mut q: Vec<f32> = days.iter().flat_map(|(q, _)| *q).collect();
            let mut mean: Vec<f32> = days.iter().map(|(_, m)| *m).collect();
            if zero_rows {
                q.iter_mut().for_each(|v| *v = 0.0);
                mean.iter_mut().for_each(|v| *v = 0.0);
            }
            let recent = crate::scoring::trend::recent_level(&window);
            let c = rule.cohere(recent, &mut q, &mut mean, &row(Some(&probs)));
            let published = Published {
                nq: 3, quantiles: &q, mean: &mean, trend: &c.trend,
                total: Some(&c.total), flat_band: 0.2,
            };
            prop_assert_eq!(coherence_violations(&published), vec![]);
            if head && probs.iter().sum::<f32>() > 0.0 {
                let p_up = f64::from(probs[2]) / probs.iter().map(|p| f64::from(*p)).sum::<f64>();
                prop_assert!((c.trend.p_up - p_up).abs() < 1e-5, "{} vs {}", c.trend.p_up, p_up);
            }
        }
    }
}
