//! Scoring the replayed days through the engine's own row path: the model, one predictive
//! distribution per row (`scoring::distribution`) and the online calibration
//! (`scoring::online`), exactly as the scorer applies them. Each origin row is kept three ways:
//! as published, without the online layer, and as the model emitted it (the last is what the
//! Python evaluation of the same graph reports).

use anyhow::Result;

use super::conformal::{Sample, Samples};
use super::forecasts::ForecastTable;
use super::metrics::Pair;
use super::serving::DayWindows;
use super::{quantile_rows_of, target_of, CallPair, Coherence, OriginRun, Target, TotalCoverage};
use trendcast_engine::scoring::calibration::CalibrationTable;
use trendcast_engine::scoring::distribution::{
    coherence_violations, mean_from_quantiles, published_level, Coherent, DistributionRule,
    Published,
};
use trendcast_engine::scoring::online::{OnlineLayer, OnlineRow};
use trendcast_engine::scoring::trend::{recent_level, RowForecast, TrendRule};
use trendcast_engine::scoring::{Model, ResolvedManifest, ScoringSettings};
use trendcast_engine::window::Feature;

/// The engine's layers after the model.
pub(super) struct Layers {
    distribution: DistributionRule,
    online: OnlineLayer,
}

impl Layers {
    /// The layers the scorer would build for `model` (no lead-time total: the evaluation
    /// scores daily values and the horizon total).
    pub(super) fn new(model: &Model, rule: TrendRule, scoring: &ScoringSettings) -> Self {
        let m = &model.manifest().manifest;
        let distribution = DistributionRule::for_model(m, rule, None);
        let online = OnlineLayer::new(
            scoring.online,
            &m.quantiles,
            distribution.median_index(),
            m.horizon,
            CalibrationTable::default(),
        );
        Self {
            distribution,
            online,
        }
    }

    /// For fitting: drops the offline multipliers; `correlation` replaces the manifest's.
    pub(super) fn adjust(&mut self, uncalibrated: bool, correlation: Option<f64>) {
        if uncalibrated {
            self.distribution.interval_scales.clear();
            self.distribution.total_scales = None;
        }
        if let Some(rho) = correlation {
            self.distribution.correlation = rho;
        }
    }

    /// The correlation of daily errors in use.
    pub(super) fn correlation(&self) -> f64 {
        self.distribution.correlation
    }
}

/// The model's forecasts at every origin, with what each is scored against.
#[derive(Default)]
pub(super) struct OriginScores {
    pub table: ForecastTable,
    pub targets: Vec<Target>,
    /// As published.
    pub pairs: Vec<Pair>,
    /// As published but for the online layer.
    pub offline_pairs: Vec<Pair>,
    /// The model's own outputs.
    pub raw_pairs: Vec<Pair>,
    pub calls: Vec<CallPair>,
    pub raw_calls: Vec<CallPair>,
    pub coherence: Coherence,
    pub totals: TotalCoverage,
    covered_totals: usize,
    covered_offline_totals: usize,
    /// Each origin pair's band before any calibration, for `--fit-conformal`.
    pub samples: Samples,
}

/// One row's outputs at the model's horizon: quantiles `[H × levels]` and means `[H]`.
struct RowValues {
    quantiles: Vec<f32>,
    mean: Vec<f32>,
}

/// Scores every day in order, in batches, as the scorer does.
pub(super) fn score_days(
    model: &mut Model,
    days: &[DayWindows],
    run: &OriginRun<'_>,
    layers: &mut Layers,
) -> Result<OriginScores> {
    let per = model.window_values();
    let mut scores = OriginScores::default();
    for day in days {
        for start in (0..day.rows.len()).step_by(run.batch) {
            let n = run.batch.min(day.rows.len() - start);
            let window = &day.values[start * per..(start + n) * per];
            let out = model.score(window, &vec![day.day as f32; n], n)?;
            for i in 0..n {
                let row = RowInput {
                    day,
                    k: start + i,
                    window: &window[i * per..(i + 1) * per],
                };
                score_row(model, &out, i, &row, run, layers, &mut scores);
            }
        }
    }
    let t = &mut scores.totals;
    t.coverage = scores.covered_totals as f64 / t.pairs.max(1) as f64;
    t.offline_coverage = scores.covered_offline_totals as f64 / t.pairs.max(1) as f64;
    Ok(scores)
}

/// Where a row sits: its day, its index in the day, its window.
struct RowInput<'a> {
    day: &'a DayWindows,
    k: usize,
    window: &'a [f32],
}

/// Row `i` of `out`: made coherent, calibrated online, and kept when its day is an origin.
fn score_row(
    model: &Model,
    out: &trendcast_engine::scoring::BatchForecast,
    i: usize,
    input: &RowInput<'_>,
    run: &OriginRun<'_>,
    layers: &mut Layers,
    scores: &mut OriginScores,
) {
    let resolved = model.manifest();
    let m = &resolved.manifest;
    let (h, nq) = (m.horizon, m.quantiles.len());
    let raw_q = &out.quantiles[i * h * nq..(i + 1) * h * nq];
    let raw_mean = match &out.mean {
        Some(mean) => mean[i * h..(i + 1) * h].to_vec(),
        None => mean_from_quantiles(&m.quantiles, raw_q),
    };
    let units = window_units(resolved, input.window);
    let recent = recent_level(&units[m.window_len - h.min(m.window_len)..]);
    let heads = RowForecast {
        levels: &m.quantiles,
        quantiles: &[],
        mean: None,
        direction: out.direction.as_ref().map(|d| &d[i * 3..i * 3 + 3]),
        p_up: out.p_up.as_ref().map(|p| p[i]),
    };
    let mut row = RowValues {
        quantiles: raw_q.to_vec(),
        mean: raw_mean.clone(),
    };
    let coherent = layers
        .distribution
        .cohere(recent, &mut row.quantiles, &mut row.mean, &heads);
    let offline = RowValues {
        quantiles: row.quantiles.clone(),
        mean: row.mean.clone(),
    };
    let offline_total = coherent.total.quantiles.clone();
    let day_row = input.day.rows[input.k];
    let sku = &run.series[day_row.series];
    let online_row = OnlineRow {
        sku,
        partition: 0,
        at: input.day.day - 1,
        units: &units,
        track: day_row.tracked,
    };
    layers
        .online
        .apply(&online_row, &mut row.quantiles, &row.mean, &coherent.total);
    count_coherence(scores, &row, &coherent, nq, &layers.distribution);
    if input.day.origin {
        let raw = RowValues {
            quantiles: raw_q.to_vec(),
            mean: raw_mean,
        };
        let target = target_of(
            run.history,
            sku,
            input.day.day,
            run.horizon,
            run.recent_days,
        );
        let kept = Kept {
            published: &row,
            offline: &offline,
            raw: &raw,
            coherent: &coherent,
            offline_total: &offline_total,
            median: layers.distribution.median_index(),
            heads,
        };
        keep_origin(scores, target, &kept, run, h, nq);
    }
}

/// A window's units, oldest bucket first.
fn window_units(resolved: &ResolvedManifest, window: &[f32]) -> Vec<f32> {
    let slot = resolved
        .features
        .iter()
        .position(|f| *f == Feature::Units)
        .unwrap_or(0);
    window
        .chunks_exact(resolved.features.len().max(1))
        .map(|b| b[slot])
        .collect()
}

/// Counts the row's coherence violations.
fn count_coherence(
    scores: &mut OriginScores,
    row: &RowValues,
    coherent: &Coherent,
    nq: usize,
    rule: &DistributionRule,
) {
    let published = Published {
        nq,
        quantiles: &row.quantiles,
        mean: &row.mean,
        trend: &coherent.trend,
        total: Some(&coherent.total),
        flat_band: rule.trend.settings.flat_band,
    };
    scores.coherence.updates += 1;
    if !coherence_violations(&published).is_empty() {
        scores.coherence.incoherent += 1;
    }
}

/// An origin row's three versions.
struct Kept<'a> {
    published: &'a RowValues,
    offline: &'a RowValues,
    raw: &'a RowValues,
    coherent: &'a Coherent,
    /// The horizon total's quantiles before the online layer.
    offline_total: &'a [f32],
    /// Index of the median level.
    median: usize,
    heads: RowForecast<'a>,
}

/// Keeps an origin row: its forecasts (as published) in the table, its pairs three ways, its
/// calls as published and as the raw outputs would give them, and whether its total covered.
fn keep_origin(
    scores: &mut OriginScores,
    target: Target,
    kept: &Kept<'_>,
    run: &OriginRun<'_>,
    model_horizon: usize,
    nq: usize,
) {
    let pick = |v: &RowValues| -> (Vec<f32>, Vec<f32>) {
        let q = (0..run.horizon)
            .flat_map(|h| run.levels.iter().map(move |k| v.quantiles[h * nq + k]))
            .collect();
        (q, v.mean[..run.horizon].to_vec())
    };
    let (q, mean) = pick(kept.published);
    let forecast = quantile_rows_of(&q);
    for (h, day) in forecast.iter().enumerate() {
        let date = target.origin + h as i64;
        let day_mean = Some(f64::from(mean[h]));
        scores
            .table
            .insert(&target.sku, target.origin, date, *day, day_mean);
    }
    let as_f64 = |m: &[f32]| Some(m.iter().map(|v| f64::from(*v)).collect());
    scores.pairs.push(target.pair(forecast, as_f64(&mean)));
    let (oq, omean) = pick(kept.offline);
    scores
        .offline_pairs
        .push(target.pair(quantile_rows_of(&oq), as_f64(&omean)));
    let (rq, rmean) = pick(kept.raw);
    scores
        .raw_pairs
        .push(target.pair(quantile_rows_of(&rq), as_f64(&rmean)));
    let raw_row = RowForecast {
        levels: &super::metrics::LEVELS,
        quantiles: &rq,
        mean: Some(&rmean),
        ..kept.heads
    };
    scores.raw_calls.push(target.call(run.rule, &raw_row));
    let trend = kept.coherent.trend.clone();
    let expected = published_level(&mean);
    let settings = &run.rule.settings;
    scores
        .calls
        .push(target.call_pair(settings, trend.p_up, trend, expected));
    keep_samples(scores, &target, kept, run.horizon, nq);
    if run.horizon == model_horizon {
        let actual: f64 = target.actual.iter().sum();
        let covers = |q: &[f32]| {
            let (lo, hi) = (q[0], q[q.len() - 1]);
            usize::from(f64::from(lo) <= actual && actual <= f64::from(hi))
        };
        scores.totals.pairs += 1;
        scores.covered_totals += covers(&kept.coherent.total.quantiles);
        scores.covered_offline_totals += covers(kept.offline_total);
        let med = kept.offline_total[kept.median];
        scores.samples.total.push(Sample {
            band: [kept.offline_total[0], med, kept.offline_total[nq - 1]],
            actual: actual as f32,
        });
    }
    scores.targets.push(target);
}

/// Keeps each step's band before the online layer with its actual, for `--fit-conformal`.
fn keep_samples(
    scores: &mut OriginScores,
    target: &Target,
    kept: &Kept<'_>,
    days: usize,
    nq: usize,
) {
    for (h, actual) in target.actual.iter().take(days).enumerate() {
        let q = &kept.offline.quantiles[h * nq..(h + 1) * nq];
        let sample = Sample {
            band: [q[0], q[kept.median], q[nq - 1]],
            actual: *actual as f32,
        };
        scores.samples.push_step(h, sample);
    }
}
