//! Cold start: forecasts for products with no sales history, from products with similar text,
//! and their evaluation on an event log (`trendcast cold-start`).
//!
//! **Protocol.** Daily buckets by UTC date and units = max(0, net units of the day), as in
//! `trendcast evaluate`; L is the last full day. A product's *launch day* d₀ is its first day
//! with units > 0 in the log, and its *launch curve* the units on days d₀ … d₀ + H − 1. The
//! evaluation products are those launched in the `eval_days` days ending at L − H + 1 (so their
//! curve is observed); each is forecast *at its launch day*, with no sales of its own, from the
//! launch curves of products whose curve ended before that day (no look-ahead). The products
//! launched in the `valid_days` before the evaluation period are the validation set on which
//! the method's two settings are chosen; the evaluation set is never used for that.
//!
//! **Methods** (each a weighted sample of reference launch curves; forecasts per day since
//! launch are the sample's weighted mean and its 0.1/0.5/0.9 quantiles):
//! - *global mean of new products*: every reference, equal weights;
//! - *category mean*: the references of the product's category (the global sample when fewer
//!   than `min_category`);
//! - *text neighbours*: the `k` references whose product-text embeddings are closest (cosine),
//!   mixed with the global sample: weight `a / k` each, plus `(1 − a) / n` on every reference.
//!
//! **Metrics**, by day since launch: WQL over 0.1/0.5/0.9 (quantiles), 80 % coverage, MAE and
//! RMSE of the mean forecast, its bias, and RMSSE with each product's scale taken from its own
//! launch curve (mean squared one-step difference; a new product has no earlier history for an
//! M5 scale; products with a flat curve have none and are left out of RMSSE only).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::datasets::EventRecord;
use crate::evaluate::metrics::{naive_scales, pinball, LEVELS};
use crate::evaluate::protocol::DailyHistory;
use trendcast_engine::catalog::launch::{nearest, sample_forecast, text_weights};
use trendcast_engine::catalog::library::{LaunchLibrary, LibraryProduct};
use trendcast_engine::catalog::{CatalogEntry, TextEmbedder};
use trendcast_engine::vocab::DAY_MS;
use trendcast_engine::window::Admission;
use trendcast_engine::window::{BucketSpec, WindowSettings, WindowStore};

/// Neighbour counts tried on the validation set.
pub const KS: [usize; 5] = [5, 10, 20, 50, 100];
/// Mixing weights of the neighbours tried on the validation set.
pub const MIXES: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

/// What `trendcast cold-start` was asked for.
#[derive(Debug, Clone)]
pub struct ColdStartOptions {
    /// Days per launch curve (forecast days).
    pub horizon: usize,
    /// Days of launches evaluated, ending at L − H + 1.
    pub eval_days: i64,
    /// Days of launches before those, for choosing `k` and `a`.
    pub valid_days: i64,
    /// Smallest category sample used as such.
    pub min_category: usize,
}

impl Default for ColdStartOptions {
    fn default() -> Self {
        Self {
            horizon: 14,
            eval_days: 91,
            valid_days: 91,
            min_category: 5,
        }
    }
}

/// A launched product.
struct Launch {
    sku: Arc<str>,
    day: i64,
    curve: Vec<f64>,
    category: String,
    embedding: Vec<f32>,
}

/// Metrics of one method over a set of products and a range of days since launch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ColdMetrics {
    /// Weighted quantile loss.
    pub wql: f64,
    /// Mean RMSSE (launch-curve scale).
    pub rmsse: f64,
    /// MAE of the mean forecast.
    pub mae: f64,
    /// RMSE of the mean forecast.
    pub rmse: f64,
    /// Share of actuals inside [q0.1, q0.9].
    pub coverage80: f64,
    /// Σ(mean − y) / Σ y.
    pub bias: f64,
}

/// One method's result.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    /// Method name.
    pub name: String,
    /// Days since launch 0 … H − 1.
    pub all: ColdMetrics,
    /// Days 0 … 6.
    pub first_week: ColdMetrics,
    /// Days 7 … H − 1.
    pub later: ColdMetrics,
}

/// The outcome of a cold-start evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStartReport {
    /// Days since launch forecast.
    pub horizon: usize,
    /// Last full day (RFC 3339 date).
    pub last_full_day: String,
    /// First and last launch day evaluated.
    pub eval_launches: (String, String),
    /// First and last launch day of the validation set.
    pub valid_launches: (String, String),
    /// Products evaluated.
    pub eval_products: usize,
    /// Validation products.
    pub valid_products: usize,
    /// Products with a launch curve and catalog text.
    pub products: usize,
    /// Products with sales but no catalog text (left out).
    pub without_text: usize,
    /// Categories among the products.
    pub categories: usize,
    /// Chosen neighbour count and mixing weight.
    pub chosen: (usize, f64),
    /// Validation WQL per (k, a).
    pub validation: Vec<(usize, f64, f64)>,
    /// Evaluation results: global, category, text neighbours.
    pub methods: Vec<MethodResult>,
    /// Text model used.
    pub text_model: String,
    /// Seconds spent embedding.
    pub embed_secs: f64,
}

fn date(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Daily history of the admitted events (the engine's validation and lateness rules).
fn history_of(events: &mut [EventRecord], window: &WindowSettings) -> DailyHistory {
    events.sort_by_key(EventRecord::ts);
    let mut settings = window.clone();
    settings.bucket = BucketSpec::new(DAY_MS);
    let store = Arc::new(WindowStore::new(settings));
    let mut admission = Admission::new(store);
    let mut history = DailyHistory::default();
    for record in events.iter() {
        let Some((source, event)) = crate::export::event_of(record) else {
            continue;
        };
        if admission.admit(source, 0, &event).is_ok() {
            history.add(record.sku(), event.ts.millis(), &event.body);
        }
    }
    history
}

/// One product's forecast and actuals.
struct Scored {
    actual: Vec<f64>,
    forecast: Vec<(f64, [f64; 3])>,
    scale_sq: Option<f64>,
}

fn metrics(items: &[Scored], days: std::ops::Range<usize>) -> ColdMetrics {
    let points = || {
        items.iter().flat_map(|s| {
            days.clone()
                .filter(|h| *h < s.actual.len())
                .map(move |h| (s.actual[h], s.forecast[h]))
        })
    };
    let n = points().count().max(1) as f64;
    let sum_y: f64 = points().map(|(y, _)| y).sum();
    let wql = LEVELS
        .iter()
        .enumerate()
        .map(|(i, l)| 2.0 * points().map(|(y, f)| pinball(y, f.1[i], *l)).sum::<f64>() / sum_y)
        .sum::<f64>()
        / LEVELS.len() as f64;
    let rmsse: Vec<f64> = items
        .iter()
        .filter_map(|s| {
            let s2 = s.scale_sq?;
            let mse = days
                .clone()
                .map(|h| (s.actual[h] - s.forecast[h].0).powi(2))
                .sum::<f64>()
                / days.len().max(1) as f64;
            Some((mse / s2).sqrt())
        })
        .collect();
    ColdMetrics {
        wql,
        rmsse: rmsse.iter().sum::<f64>() / rmsse.len().max(1) as f64,
        mae: points().map(|(y, f)| (y - f.0).abs()).sum::<f64>() / n,
        rmse: (points().map(|(y, f)| (y - f.0).powi(2)).sum::<f64>() / n).sqrt(),
        coverage80: points()
            .filter(|(y, f)| *y >= f.1[0] && *y <= f.1[2])
            .count() as f64
            / n,
        bias: points().map(|(y, f)| f.0 - y).sum::<f64>() / sum_y,
    }
}

/// Which sample a method draws.
#[derive(Debug, Clone, Copy)]
enum Method {
    Global,
    Category,
    Text { k: usize, mix: f64 },
}

fn weights(
    method: Method,
    target: &Launch,
    refs: &[&Launch],
    ranked: &[usize],
    min_cat: usize,
) -> Vec<f64> {
    match method {
        Method::Global => vec![1.0; refs.len()],
        Method::Category => {
            let w: Vec<f64> = refs
                .iter()
                .map(|r| {
                    f64::from(u8::from(
                        !r.category.is_empty() && r.category == target.category,
                    ))
                })
                .collect();
            if w.iter().sum::<f64>() >= min_cat as f64 {
                w
            } else {
                vec![1.0; refs.len()]
            }
        }
        Method::Text { k, mix } => text_weights(refs.len(), ranked, k, mix),
    }
}

fn score_set(
    targets: &[&Launch],
    launches: &[Launch],
    method: Method,
    options: &ColdStartOptions,
    ranked: &HashMap<Arc<str>, Vec<usize>>,
) -> Vec<Scored> {
    let h = options.horizon as i64;
    targets
        .iter()
        .filter_map(|t| {
            let end = launches.partition_point(|r| r.day + h <= t.day);
            let refs: Vec<&Launch> = launches[..end].iter().collect();
            if refs.is_empty() {
                return None;
            }
            let order = ranked.get(&t.sku).map(Vec::as_slice).unwrap_or(&[]);
            let w = weights(method, t, &refs, order, options.min_category);
            let curves: Vec<&[f64]> = refs.iter().map(|r| r.curve.as_slice()).collect();
            Some(Scored {
                actual: t.curve.clone(),
                forecast: sample_forecast(&curves, &w, 0..options.horizon),
                scale_sq: naive_scales(&t.curve).0,
            })
        })
        .collect()
}

/// The products whose first `horizon` days after launch are in the log, with their launch
/// curves and categories, in launch order; and how many were left out for want of a catalog text.
fn launches_of(
    history: &DailyHistory,
    text: &HashMap<&str, &CatalogEntry>,
    horizon: usize,
    last_full: i64,
) -> (Vec<Launch>, usize) {
    let mut launches: Vec<Launch> = Vec::new();
    let mut without_text = 0usize;
    for sku in history.skus() {
        let Some(day) = history.first_sale(sku) else {
            continue;
        };
        if day + horizon as i64 - 1 > last_full {
            continue;
        }
        let Some(entry) = text.get(sku.as_ref()) else {
            without_text += 1;
            continue;
        };
        launches.push(Launch {
            sku: sku.clone(),
            day,
            curve: (0..horizon as i64)
                .map(|h| history.units(sku, day + h))
                .collect(),
            category: entry.category.clone(),
            embedding: Vec::new(),
        });
    }
    launches.sort_by(|a, b| a.day.cmp(&b.day).then(a.sku.cmp(&b.sku)));
    (launches, without_text)
}

/// Embeds every launch's catalog text; returns the seconds it took.
fn embed_launches(
    launches: &mut [Launch],
    text: &HashMap<&str, &CatalogEntry>,
    embedder: &mut TextEmbedder,
) -> Result<f64> {
    let started = std::time::Instant::now();
    let texts: Vec<String> = launches
        .iter()
        .map(|l| text[l.sku.as_ref()].text())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (l, e) in launches.iter_mut().zip(embedder.embed(&refs)?) {
        l.embedding = e;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// For each evaluation and validation launch, the nearest earlier launches by text (only those
/// whose whole horizon was over by its launch day), nearest first.
fn rank_neighbours(
    eval: &[&Launch],
    valid: &[&Launch],
    launches: &[Launch],
    h: i64,
) -> HashMap<Arc<str>, Vec<usize>> {
    let kmax = *KS.iter().max().unwrap_or(&100);
    eval.iter()
        .chain(valid)
        .map(|t| {
            let end = launches.partition_point(|r| r.day + h <= t.day);
            let refs: Vec<&Launch> = launches[..end].iter().collect();
            let embeddings = refs.iter().map(|r| r.embedding.as_slice());
            (t.sku.clone(), nearest(&t.embedding, embeddings, kmax))
        })
        .collect()
}

/// The neighbour count and text weight with the lowest WQL on the validation launches, with
/// every pair's WQL.
fn tune_on_validation(
    valid: &[&Launch],
    launches: &[Launch],
    options: &ColdStartOptions,
    ranked: &HashMap<Arc<str>, Vec<usize>>,
) -> (usize, f64, Vec<(usize, f64, f64)>) {
    let mut validation = Vec::new();
    for k in KS {
        for mix in MIXES {
            let scored = score_set(valid, launches, Method::Text { k, mix }, options, ranked);
            validation.push((k, mix, metrics(&scored, 0..options.horizon).wql));
        }
    }
    let (k, mix, _) = validation
        .iter()
        .copied()
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .unwrap_or((20, 0.5, 0.0));
    (k, mix, validation)
}

/// Each method's accuracy on the evaluation launches: the global and category means of earlier
/// launches, and the text neighbours with the validated `(k, mix)`.
fn score_methods(
    eval: &[&Launch],
    launches: &[Launch],
    options: &ColdStartOptions,
    ranked: &HashMap<Arc<str>, Vec<usize>>,
    (k, mix): (usize, f64),
) -> Vec<MethodResult> {
    let horizon = options.horizon;
    [
        ("global mean of new products".to_string(), Method::Global),
        ("category mean".to_string(), Method::Category),
        (
            format!("text neighbours (k = {k}, a = {mix})"),
            Method::Text { k, mix },
        ),
    ]
    .into_iter()
    .map(|(name, m)| {
        let scored = score_set(eval, launches, m, options, ranked);
        MethodResult {
            name,
            all: metrics(&scored, 0..horizon),
            first_week: metrics(&scored, 0..7),
            later: metrics(&scored, 7..horizon),
        }
    })
    .collect()
}

/// Runs the cold-start evaluation (see the module docs).
pub fn evaluate(
    mut events: Vec<EventRecord>,
    catalog: &[CatalogEntry],
    embedder: &mut TextEmbedder,
    window: &WindowSettings,
    options: &ColdStartOptions,
) -> Result<(ColdStartReport, LaunchLibrary)> {
    let horizon = options.horizon;
    if horizon < 8 || options.eval_days < 1 || options.valid_days < 1 {
        bail!("--horizon must be at least 8 and the day counts at least 1");
    }
    let latest = events.iter().map(EventRecord::ts).max().unwrap_or(0);
    let history = history_of(&mut events, window);
    let last_full = latest.div_euclid(DAY_MS) - 1;
    let text: HashMap<&str, &CatalogEntry> = catalog.iter().map(|e| (e.sku.as_str(), e)).collect();
    let (mut launches, without_text) = launches_of(&history, &text, horizon, last_full);
    let embed_secs = embed_launches(&mut launches, &text, embedder)?;

    let last_launch = last_full - horizon as i64 + 1;
    let eval_from = last_launch - options.eval_days + 1;
    let valid_from = eval_from - options.valid_days;
    let eval: Vec<&Launch> = launches
        .iter()
        .filter(|l| l.day >= eval_from && l.day <= last_launch)
        .collect();
    let valid: Vec<&Launch> = launches
        .iter()
        .filter(|l| l.day >= valid_from && l.day < eval_from)
        .collect();
    if eval.is_empty() || valid.is_empty() {
        bail!(
            "no products launched in the evaluation ({}..{}) or validation period",
            date(eval_from),
            date(last_launch)
        );
    }
    let ranked = rank_neighbours(&eval, &valid, &launches, horizon as i64);
    let (k, mix, validation) = tune_on_validation(&valid, &launches, options, &ranked);
    let methods = score_methods(&eval, &launches, options, &ranked, (k, mix));
    let mut categories: Vec<&str> = launches.iter().map(|l| l.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    let library = LaunchLibrary {
        text_model: embedder.manifest().name.clone(),
        k,
        mix,
        products: launches
            .iter()
            .map(|l| LibraryProduct {
                sku: l.sku.to_string(),
                curve: l.curve.clone(),
                embedding: l.embedding.clone(),
            })
            .collect(),
    };
    let report = ColdStartReport {
        horizon,
        last_full_day: date(last_full),
        eval_launches: (date(eval_from), date(last_launch)),
        valid_launches: (date(valid_from), date(eval_from - 1)),
        eval_products: eval.len(),
        valid_products: valid.len(),
        products: launches.len(),
        without_text,
        categories: categories.len(),
        chosen: (k, mix),
        validation,
        methods,
        text_model: embedder.manifest().name.clone(),
        embed_secs,
    };
    Ok((report, library))
}

/// The report as Markdown.
pub fn markdown(r: &ColdStartReport) -> String {
    let mut s = String::new();
    let _ = std::fmt::Write::write_fmt(
        &mut s,
        format_args!(
            "# Cold-start evaluation\n\n\
             Products forecast at their launch day (first sale in the log), with no sales of their own, \
             from the launch curves of products launched earlier; {h} days since launch. \
             Evaluation: {ne} products launched {e0} … {e1}; validation (choosing k and a): {nv} launched \
             {v0} … {v1}. {np} products with a launch curve and catalog text ({nc} categories; {nw} without text left out). \
             Text model: {tm} (embedding {es:.1} s). Last full day {l}.\n\n",
            h = r.horizon,
            ne = r.eval_products,
            e0 = r.eval_launches.0,
            e1 = r.eval_launches.1,
            nv = r.valid_products,
            v0 = r.valid_launches.0,
            v1 = r.valid_launches.1,
            np = r.products,
            nc = r.categories,
            nw = r.without_text,
            tm = r.text_model,
            es = r.embed_secs,
            l = r.last_full_day,
        ),
    );
    s.push_str("| method | days | WQL | RMSSE | MAE | RMSE | coverage 80 % | bias |\n|---|---|---|---|---|---|---|---|\n");
    for m in &r.methods {
        let (all, later) = (
            format!("0–{}", r.horizon - 1),
            format!("7–{}", r.horizon - 1),
        );
        for (days, x) in [
            (all.as_str(), &m.all),
            ("0–6", &m.first_week),
            (later.as_str(), &m.later),
        ] {
            s.push_str(&format!(
                "| {} | {days} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:+.3} |\n",
                m.name, x.wql, x.rmsse, x.mae, x.rmse, x.coverage80, x.bias
            ));
        }
    }
    s.push_str("\nValidation WQL (all days) by neighbour count k and mixing weight a:\n\n| k | a | WQL |\n|---|---|---|\n");
    for (k, a, w) in &r.validation {
        s.push_str(&format!("| {k} | {a} | {w:.4} |\n"));
    }
    s
}
