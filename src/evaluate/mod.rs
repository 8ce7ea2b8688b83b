//! `trendcast evaluate`: scores a model on an event log through the serving code.
//!
//! The log is replayed offline in event-time order through the engine's admission and window
//! store (as `export-windows` does); at each rolling origin every series' window ending the day
//! before is copied out exactly as the scorer copies it and scored by the same ONNX Runtime
//! session code as `run`, with the origin's day fed to models with a calendar input. Only events
//! before an origin are visible to its forecast. Actuals and the metrics' scales come from the
//! same per-bucket feature code. Forecast tables from other tools (the Python baselines) are
//! scored by the same metrics on the same (series, origin) pairs, so one report compares them.

pub mod forecasts;
pub mod metrics;
pub mod protocol;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::config::Settings;
use crate::datasets::EventRecord;
use crate::ingest::Admission;
use crate::scoring::{Model, ResolvedManifest};
use crate::window::{BucketSpec, WindowStore};
use forecasts::{ForecastRow, ForecastTable};
use metrics::{Metrics, Pair, LEVELS};
use protocol::{DailyHistory, Protocol, DAY_MS};

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
}

/// One forecaster's metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scored {
    /// Forecaster name.
    pub name: String,
    /// Its metrics.
    pub metrics: Metrics,
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
}

/// A (series, origin) pair before forecasts.
struct Target {
    sku: Arc<str>,
    origin: i64,
    actual: Vec<f64>,
    scale_sq: Option<f64>,
    scale_abs: Option<f64>,
    weight: f64,
    last14: f64,
}

impl Target {
    fn pair(&self, forecast: Vec<[f64; 3]>, mean: Option<Vec<f64>>, p_up: Option<f64>) -> Pair {
        Pair {
            actual: self.actual.clone(),
            forecast,
            mean,
            p_up,
            scale_sq: self.scale_sq,
            scale_abs: self.scale_abs,
            weight: self.weight,
            last14: self.last14,
        }
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
    // daily buckets by the protocol; the window length is the model's own
    let text = std::fs::read_to_string(&options.model)
        .with_context(|| format!("reading {}", options.model.display()))?;
    let raw: crate::scoring::ModelManifest = serde_json::from_str(&text)
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
    let (model_id, model_horizon, n_quantiles) = (m.id(), m.horizon, m.quantiles.len());
    let mut model = Model::load(manifest, &settings.scoring)?;

    events.sort_by_key(EventRecord::ts);
    let latest = events
        .last()
        .map(EventRecord::ts)
        .context("the log has no events")?;
    let protocol = Protocol::for_log(
        latest,
        options.horizon,
        options.origins,
        options.min_sale_days,
    );
    let (inputs, history) = replay(&events, &window, &protocol, &model)?;
    let series = inputs.first().map_or(0, |(s, _)| s.len());
    if series == 0 {
        bail!(
            "no SKU has sales on {} days before the first origin {}",
            protocol.min_sale_days,
            forecasts::date_of(protocol.first_origin())
        );
    }

    // Score each origin's windows in batches, as the scorer does.
    let per = model.window_values();
    let batch = settings.scoring.batch_size.max(1);
    let mut table = ForecastTable::default();
    let mut targets = Vec::new();
    let mut model_pairs = Vec::new();
    for ((skus, rows), origin) in inputs.iter().zip(&protocol.origins) {
        for start in (0..skus.len()).step_by(batch) {
            let n = batch.min(skus.len() - start);
            let days = vec![*origin as f32; n];
            let out = model.score(&rows[start * per..(start + n) * per], &days, n)?;
            for (i, sku) in skus[start..start + n].iter().enumerate() {
                let forecast: Vec<[f64; 3]> = (0..options.horizon)
                    .map(|h| {
                        let base = (i * model_horizon + h) * n_quantiles;
                        let q = |k: usize| f64::from(out.quantiles[base + levels[k]]);
                        [q(0), q(1), q(2)]
                    })
                    .collect();
                let mean: Option<Vec<f64>> = out.mean.as_ref().map(|m| {
                    (0..options.horizon)
                        .map(|h| f64::from(m[i * model_horizon + h]))
                        .collect()
                });
                for (h, q) in forecast.iter().enumerate() {
                    let day_mean = mean.as_ref().map(|m| m[h]);
                    table.insert(sku, *origin, origin + h as i64, *q, day_mean);
                }
                let target = target_of(&history, sku, *origin, options.horizon);
                let p_up = out.p_up.as_ref().map(|p| f64::from(p[i]));
                model_pairs.push(target.pair(forecast, mean, p_up));
                targets.push(target);
            }
        }
    }
    let mut scored = vec![Scored {
        name: format!("trendcast {model_id}"),
        metrics: metrics::score(&model_pairs),
    }];
    for (name, path) in &options.baselines {
        let other = ForecastTable::read(path)?;
        let mut pairs = Vec::with_capacity(targets.len());
        let mut missing = 0usize;
        for t in &targets {
            let rows: Option<Vec<ForecastRow>> = (0..options.horizon as i64)
                .map(|h| other.get(&t.sku, t.origin, t.origin + h))
                .collect();
            match rows {
                Some(rows) => {
                    let mean: Option<Vec<f64>> = rows.iter().map(|r| r.mean).collect();
                    let forecast = rows.iter().map(|r| r.quantiles).collect();
                    pairs.push(t.pair(forecast, mean, None));
                }
                None => missing += 1,
            }
        }
        if missing > 0 {
            bail!(
                "{name} ({}) lacks forecasts for {missing} of {} (series, origin) pairs: it must cover the same series and origins (first origin {})",
                path.display(),
                targets.len(),
                forecasts::date_of(protocol.first_origin())
            );
        }
        scored.push(Scored {
            name: name.clone(),
            metrics: metrics::score(&pairs),
        });
    }
    Ok(Evaluation {
        protocol,
        series,
        model: model_id,
        scored,
        forecasts: table,
    })
}

/// Actuals, scales and weights of `sku` at `origin`.
fn target_of(history: &DailyHistory, sku: &Arc<str>, origin: i64, horizon: usize) -> Target {
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
        last14: history.mean_units_before(sku, origin, 14),
    }
}

/// One origin's series and their windows (row-major, the model's feature order).
type OriginWindows = (Vec<Arc<str>>, Vec<f32>);

/// Per origin: the series and their windows (row-major, the model's feature order), copied out
/// of the window store just before the first event at or after the origin; plus every SKU's
/// daily history of admitted events.
fn replay(
    events: &[EventRecord],
    window: &crate::window::WindowSettings,
    protocol: &Protocol,
    model: &Model,
) -> Result<(Vec<OriginWindows>, DailyHistory)> {
    let store = Arc::new(WindowStore::new(window.clone()));
    let mut admission = Admission::new(store.clone());
    let mut history = DailyHistory::default();
    let features = model.manifest().features.clone();
    let per = model.window_values();
    let mut series: Vec<Arc<str>> = Vec::new();
    let mut out = Vec::with_capacity(protocol.origins.len());
    let mut next = protocol.origins.iter().peekable();
    let mut take = |origin: i64, history: &DailyHistory, out: &mut Vec<OriginWindows>| {
        if out.is_empty() {
            series = history.series(origin, protocol.min_sale_days);
        }
        let last = window.bucket.index_of(origin * DAY_MS) - 1;
        let mut rows = vec![0.0_f32; series.len() * per];
        for (i, sku) in series.iter().enumerate() {
            // a SKU the store does not hold has an all-zero window, as in the engine
            store.write_window(sku, last, &features, &mut rows[i * per..(i + 1) * per]);
        }
        out.push((series.clone(), rows));
    };
    for record in events {
        while let Some(origin) = next.next_if(|o| record.ts() >= **o * DAY_MS) {
            take(*origin, &history, &mut out);
        }
        let Some((source, event)) = crate::export::event_of(record) else {
            continue;
        };
        if admission.admit(source, 0, &event).is_ok() {
            history.add(record.sku(), event.ts_ms, &event.body);
        }
    }
    for origin in next {
        take(*origin, &history, &mut out);
    }
    Ok((out, history))
}
