//! `trendcast evaluate`: scores a model on an event log through the serving code.
//!
//! The log is replayed offline in event-time order through the engine's admission and window
//! store (as `export-windows` does); at each rolling origin every series' window ending the day
//! before is copied out exactly as the scorer copies it and scored by the same ONNX Runtime
//! session code as `run`, with the origin's day fed to models with a calendar input. Only events
//! before an origin are visible to its forecast. Actuals and the metrics' scales come from the
//! same per-bucket feature code. Forecast tables from other tools (the Python baselines) are
//! scored by the same metrics on the same (series, origin) pairs, so one report compares them.

pub mod calls;
pub mod cold_start;
pub mod conformal;
pub mod forecasts;
pub mod metrics;
pub mod protocol;
pub mod report;
mod served;
mod serving;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::datasets::EventRecord;
use calls::{CallMetrics, CallPair};
use forecasts::{ForecastRow, ForecastTable};
use metrics::{Metrics, Pair, LEVELS};
use protocol::{DailyHistory, Protocol};
use trendcast_engine::config::Settings;
use trendcast_engine::publish::{Direction, Trend};
use trendcast_engine::scoring::trend::{self, RowForecast, TrendRule, TrendSettings};
use trendcast_engine::scoring::{Model, ResolvedManifest};
use trendcast_engine::signals::hot::HotSettings;
use trendcast_engine::vocab::DAY_MS;
use trendcast_engine::window::{BucketSpec, WindowSettings};

/// What `trendcast evaluate` was asked for.
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    /// The model's manifest.
    pub model: PathBuf,
    /// Forecast days per origin.
    pub horizon: usize,
    /// Rolling origins.
    pub origins: usize,
    /// Sale days a SKU needs before the first origin.
    pub min_sale_days: usize,
    /// Other forecasters: (name, forecast CSV).
    pub baselines: Vec<(String, PathBuf)>,
    /// Days before the first origin from which the engine's daily scorings are replayed, so the
    /// online interval calibration has learnt what it would have by the origins.
    pub online_warmup_days: i64,
    /// Score without the manifest's offline interval multipliers and fit new ones on the
    /// origins (`conformal`): for validation origins only.
    pub fit_conformal: bool,
    /// The correlation of daily errors, instead of the manifest's.
    pub correlation: Option<f64>,
}

/// How coherent the model's published forecasts were (`scoring::distribution`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Coherence {
    /// Rows scored, warm-up days included.
    pub updates: usize,
    /// Rows that broke at least one property.
    pub incoherent: usize,
}

/// The horizon totals' and the online layer's coverage on the evaluated pairs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TotalCoverage {
    /// Pairs whose horizon is the model's whole horizon (the total is of those days).
    pub pairs: usize,
    /// Share of them whose actual total lies within the published total's outer quantiles.
    pub coverage: f64,
    /// The same before the online layer.
    pub offline_coverage: f64,
}

/// One forecaster's metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scored {
    /// Forecaster name.
    pub name: String,
    /// Its metrics.
    pub metrics: Metrics,
    /// How good its trend calls are.
    pub calls: CallMetrics,
}

/// The trend calls' yardsticks: simple rules and climatology.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallBaselines {
    /// Merchandisers' rules: (name, call metrics).
    pub rules: Vec<(String, CallMetrics)>,
    /// Share of rising pairs at the three weekly origins before the first one.
    pub base_rate: f64,
    /// Brier score of always saying `base_rate`, on the evaluated pairs.
    pub climatology_brier: f64,
}

/// The outcome of an evaluation.
#[derive(Debug)]
pub struct Evaluation {
    /// The protocol as applied to the log.
    pub protocol: Protocol,
    /// Series scored.
    pub series: usize,
    /// `name@version` of the model.
    pub model: String,
    /// The model first, then each baseline.
    pub scored: Vec<Scored>,
    /// The model's forecasts.
    pub forecasts: ForecastTable,
    /// What the calls are compared with.
    pub call_baselines: CallBaselines,
    /// Coherence of every published row.
    pub coherence: Coherence,
    /// Coverage of the published horizon totals.
    pub totals: TotalCoverage,
    /// With `fit_conformal`: the manifest's `distribution` object fitted on these origins.
    pub fitted: Option<conformal::Fitted>,
}

/// A (series, origin) pair before forecasts.
struct Target {
    sku: Arc<str>,
    origin: i64,
    actual: Vec<f64>,
    scale_sq: Option<f64>,
    scale_abs: Option<f64>,
    weight: f64,
    /// Mean units of the last min(H, W) days before the origin: the trend's recent level.
    recent: f64,
}

impl Target {
    fn pair(&self, forecast: Vec<[f64; 3]>, mean: Option<Vec<f64>>) -> Pair {
        Pair {
            actual: self.actual.clone(),
            forecast,
            mean,
            scale_sq: self.scale_sq,
            scale_abs: self.scale_abs,
            weight: self.weight,
        }
    }

    /// The call of a forecaster with these outputs, beside what happened.
    fn call(&self, rule: &TrendRule, forecast: &RowForecast<'_>) -> CallPair {
        let trend = trend::derive_at(rule, self.recent, forecast);
        let expected = trend::expected_level(forecast);
        self.call_pair(&rule.settings, trend.p_up, trend, expected)
    }

    /// A call with `expected` units per day, beside what happened: the realised class and
    /// strength of the pair's actuals against its recent level.
    fn call_pair(
        &self,
        settings: &TrendSettings,
        rank_score: f64,
        trend: Trend,
        expected: f64,
    ) -> CallPair {
        let actual_mean = self.actual.iter().sum::<f64>() / self.actual.len().max(1) as f64;
        CallPair {
            sku: self.sku.clone(),
            origin: self.origin,
            realised: trend::realised(actual_mean, self.recent, settings),
            realised_strength: trend::strength(actual_mean, self.recent, settings.level_floor),
            rank_score,
            trend,
            forecast_units: expected * self.actual.len() as f64,
        }
    }
}

/// Quantiles, mean and the other outputs of one pair as the trend code reads them.
fn row_forecast<'a>(quantiles: &'a [f32], mean: Option<&'a [f32]>) -> RowForecast<'a> {
    RowForecast {
        levels: &LEVELS,
        quantiles,
        mean,
        direction: None,
        p_up: None,
    }
}

/// Evaluates `options.model` on `events` with `settings` (window lateness, ONNX Runtime).
pub fn evaluate(
    mut events: Vec<EventRecord>,
    settings: &Settings,
    options: &EvaluateOptions,
) -> Result<Evaluation> {
    if options.horizon == 0 || options.origins == 0 {
        bail!("--horizon and --origins must be at least 1");
    }
    let (mut model, window, levels) = load_daily_model(settings, options)?;
    let model_id = model.manifest().manifest.id();
    let alpha = miss_rates(&model.manifest().manifest.quantiles);
    let protocol = protocol_of(&mut events, options)?;
    let replayed = serving::replay(
        &events,
        &window,
        &protocol,
        &model,
        options.online_warmup_days,
    )?;
    let series = replayed.series.len();
    if series == 0 {
        bail!(
            "no SKU has sales on {} days before the first origin {}",
            protocol.min_sale_days,
            forecasts::date_of(protocol.first_origin())
        );
    }
    let rule = TrendRule::for_model(&settings.trend, &model.manifest().manifest);
    let history = &replayed.history;
    let run = OriginRun {
        horizon: options.horizon,
        recent_days: options.horizon.min(window.buckets) as i64,
        batch: settings.scoring.batch_size.max(1),
        levels: &levels,
        rule: &rule,
        history,
        series: &replayed.series,
    };
    let mut layers = served::Layers::new(&model, rule, &settings.scoring);
    layers.adjust(options.fit_conformal, options.correlation);
    let scores = served::score_days(&mut model, &replayed.days, &run, &mut layers)?;
    let hot = settings
        .signals
        .as_ref()
        .map_or_else(HotSettings::default, |s| s.hot);
    let mut scored = model_rows(&model_id, &scores, &hot);
    for (name, path) in &options.baselines {
        scored.push(score_table(
            name,
            path,
            &scores.targets,
            &rule,
            &hot,
            &protocol,
        )?);
    }
    let call_baselines = call_baselines(
        history,
        &scores.targets,
        &rule,
        &hot,
        run.recent_days,
        &protocol,
    );
    Ok(Evaluation {
        protocol,
        series,
        model: model_id,
        scored,
        forecasts: scores.table,
        call_baselines,
        coherence: scores.coherence,
        totals: scores.totals,
        fitted: options
            .fit_conformal
            .then(|| conformal::fit(&scores.samples, alpha, layers.correlation())),
    })
}

/// Nominal miss rates below and above the outer quantiles of `levels`.
fn miss_rates(levels: &[f64]) -> [f64; 2] {
    [
        levels.first().copied().unwrap_or(0.1),
        1.0 - levels.last().copied().unwrap_or(0.9),
    ]
}

/// Sorts `events` and places the rolling origins before the latest one.
fn protocol_of(events: &mut [EventRecord], options: &EvaluateOptions) -> Result<Protocol> {
    events.sort_by_key(EventRecord::ts);
    let latest = events
        .last()
        .map(EventRecord::ts)
        .context("the log has no events")?;
    Ok(Protocol::for_log(
        latest,
        options.horizon,
        options.origins,
        options.min_sale_days,
    ))
}

/// The model's three rows: as published, without the online layer, and its raw outputs.
fn model_rows(model_id: &str, scores: &served::OriginScores, hot: &HotSettings) -> Vec<Scored> {
    vec![
        Scored {
            name: format!("trendcast {model_id}"),
            metrics: metrics::score(&scores.pairs),
            calls: calls::score(&scores.calls, true, hot),
        },
        Scored {
            name: format!("trendcast {model_id} without the online layer"),
            metrics: metrics::score(&scores.offline_pairs),
            calls: calls::score(&scores.calls, true, hot),
        },
        Scored {
            name: format!("trendcast {model_id} model outputs as scored"),
            metrics: metrics::score(&scores.raw_pairs),
            calls: calls::score(&scores.raw_calls, true, hot),
        },
    ]
}

/// Loads `options.model` for the protocol's daily buckets (the window length is the model's
/// own): the model, its window settings, and the positions of the scored quantile levels.
fn load_daily_model(
    settings: &Settings,
    options: &EvaluateOptions,
) -> Result<(Model, WindowSettings, Vec<usize>)> {
    let text = std::fs::read_to_string(&options.model)
        .with_context(|| format!("reading {}", options.model.display()))?;
    let raw: trendcast_engine::scoring::ModelManifest = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", options.model.display()))?;
    let mut window = settings.window.clone();
    window.bucket = BucketSpec::new(DAY_MS);
    window.buckets = raw.window_len;
    let manifest = ResolvedManifest::load(&options.model, &window)
        .context("the evaluation protocol needs a model of daily buckets")?;
    let m = &manifest.manifest;
    if m.horizon < options.horizon {
        bail!(
            "model {} forecasts {} days; the protocol needs {}",
            m.id(),
            m.horizon,
            options.horizon
        );
    }
    let levels: Vec<usize> = LEVELS
        .iter()
        .map(|l| {
            m.quantiles
                .iter()
                .position(|q| (q - l).abs() < 1e-9)
                .with_context(|| format!("model {} has no {l} quantile", m.id()))
        })
        .collect::<Result<_>>()?;
    let model = Model::load(manifest, &settings.scoring)?;
    Ok((model, window, levels))
}

/// What scoring the origins needs besides the model and its inputs.
struct OriginRun<'a> {
    horizon: usize,
    recent_days: i64,
    batch: usize,
    levels: &'a [usize],
    rule: &'a TrendRule,
    history: &'a DailyHistory,
    series: &'a [Arc<str>],
}

/// `[h × 3]` f32 quantiles as per-day rows of f64.
fn quantile_rows_of(quantiles: &[f32]) -> Vec<[f64; 3]> {
    quantiles
        .chunks_exact(3)
        .map(|q| [q[0], q[1], q[2]].map(f64::from))
        .collect()
}

/// Scores another forecaster's table on the model's pairs.
fn score_table(
    name: &str,
    path: &std::path::Path,
    targets: &[Target],
    rule: &TrendRule,
    hot: &HotSettings,
    protocol: &Protocol,
) -> Result<Scored> {
    let other = ForecastTable::read(path)?;
    let mut pairs = Vec::with_capacity(targets.len());
    let mut call_pairs = Vec::with_capacity(targets.len());
    let mut missing = 0usize;
    for t in targets {
        let rows: Option<Vec<ForecastRow>> = (0..t.actual.len() as i64)
            .map(|h| other.get(&t.sku, t.origin, t.origin + h))
            .collect();
        let Some(rows) = rows else {
            missing += 1;
            continue;
        };
        let mean: Option<Vec<f64>> = rows.iter().map(|r| r.mean).collect();
        let forecast: Vec<[f64; 3]> = rows.iter().map(|r| r.quantiles).collect();
        let quantiles: Vec<f32> = forecast.iter().flatten().map(|v| *v as f32).collect();
        let mean_f32: Option<Vec<f32>> =
            mean.as_ref().map(|m| m.iter().map(|v| *v as f32).collect());
        call_pairs.push(t.call(rule, &row_forecast(&quantiles, mean_f32.as_deref())));
        pairs.push(t.pair(forecast, mean));
    }
    if missing > 0 {
        bail!(
            "{name} ({}) lacks forecasts for {missing} of {} (series, origin) pairs: it must cover the same series and origins (first origin {})",
            path.display(),
            targets.len(),
            forecasts::date_of(protocol.first_origin())
        );
    }
    Ok(Scored {
        name: name.to_string(),
        metrics: metrics::score(&pairs),
        calls: calls::score(&call_pairs, true, hot),
    })
}

/// The rules a merchandiser would use, and climatology from the three weekly origins before the
/// first one (whose horizons end by the first origin, so nothing after it is read).
fn call_baselines(
    history: &DailyHistory,
    targets: &[Target],
    rule: &TrendRule,
    hot: &HotSettings,
    recent_days: i64,
    protocol: &Protocol,
) -> CallBaselines {
    let s = &rule.settings;
    // each rule gives (strength, expected units per day) from the history before the origin
    let rule_pairs = |call: &dyn Fn(&Target) -> (f64, f64)| -> Vec<CallPair> {
        targets
            .iter()
            .map(|t| {
                let (strength, level) = call(t);
                let direction = trend::classify(strength, s.flat_band);
                // rules give no probability (p_up 0, unscored) and rank by their strength
                let trend = Trend {
                    direction,
                    strength,
                    p_up: 0.0,
                };
                t.call_pair(s, strength, trend, level)
            })
            .collect()
    };
    let week = |t: &Target| {
        let last7 = history.mean_units_before(&t.sku, t.origin, 7);
        let prev7 = history.mean_units_before(&t.sku, t.origin - 7, 7);
        (trend::strength(last7, prev7, s.level_floor), last7)
    };
    let ma28 = |t: &Target| {
        let level = history.mean_units_before(&t.sku, t.origin, 28);
        (trend::strength(level, t.recent, s.level_floor), level)
    };
    let ma28_pairs = rule_pairs(&ma28);
    let rules = vec![
        (
            "rule: last 7 days vs the 7 before".to_string(),
            calls::score(&rule_pairs(&week), false, hot),
        ),
        (
            "rule: 28-day moving average vs last 14 days".to_string(),
            calls::score(&ma28_pairs, false, hot),
        ),
    ];
    let first = protocol.first_origin();
    let series: Vec<&Target> = targets.iter().filter(|t| t.origin == first).collect();
    let horizon = protocol.horizon as i64;
    let (mut rising, mut n) = (0usize, 0usize);
    for origin in [first - 28, first - 21, first - 14] {
        for t in &series {
            let recent = history.mean_units_before(&t.sku, origin, recent_days);
            let actual = history.mean_units_before(&t.sku, origin + horizon, horizon);
            rising += usize::from(trend::realised(actual, recent, s) == Direction::Rising);
            n += 1;
        }
    }
    let base_rate = rising as f64 / n.max(1) as f64;
    CallBaselines {
        rules,
        base_rate,
        climatology_brier: calls::climatology_brier(&ma28_pairs, base_rate),
    }
}

/// Actuals, scales, weights and recent level of `sku` at `origin`.
fn target_of(
    history: &DailyHistory,
    sku: &Arc<str>,
    origin: i64,
    horizon: usize,
    recent_days: i64,
) -> Target {
    let (scale_sq, scale_abs) = metrics::naive_scales(&history.history(sku, origin));
    Target {
        sku: sku.clone(),
        origin,
        actual: (0..horizon as i64)
            .map(|h| history.units(sku, origin + h))
            .collect(),
        scale_sq,
        scale_abs,
        weight: history.revenue_before(sku, origin, 28),
        recent: history.mean_units_before(sku, origin, recent_days),
    }
}
