//! The report's tables, computed from [`ReportInputs`]: what [`super::html`] draws and
//! [`super::csv_out`] writes.

use std::collections::BTreeMap;

use super::calibration::{self, Calibration};
use super::{expected_per_step, ReportInputs};
use trendcast_engine::publish::{Direction, TrendUpdate};
use trendcast_engine::scoring::trend::{self, TrendSettings};
use trendcast_engine::signals::restock::RestockAction;
use trendcast_engine::vocab::EventTime;
use trendcast_engine::window::rfc3339;

/// What to put in a report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Rows in the rising and falling tables (and categories in the chart).
    pub top: usize,
    /// Buckets of actuals in each sparkline (56 = eight weeks of days).
    pub history_buckets: usize,
    /// Weekly origins in the calibration panel.
    pub calibration_weeks: usize,
    /// Buckets of the model's window W: the recent level is over min(H, W) buckets
    /// (docs/TRENDS.md).
    pub window_buckets: usize,
    /// Least expected units over the horizon for a product to be listed as rising, and least
    /// recent units over as many buckets to be listed as falling.
    pub min_volume: f64,
    /// The trend definition (docs/TRENDS.md) the realised calls are judged by.
    pub trend: TrendSettings,
    /// Where the report's inputs came from, in words (shown in the report).
    pub source: String,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top: 20,
            history_buckets: 56,
            calibration_weeks: 4,
            window_buckets: 28,
            min_volume: 5.0,
            trend: TrendSettings {
                flat_band: trend::DEFAULT_FLAT_BAND,
                level_floor: trend::DEFAULT_LEVEL_FLOOR,
            },
            source: String::new(),
        }
    }
}

/// One product in the rising or falling table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    /// SKU.
    pub sku: String,
    /// Title ("" when unknown).
    pub title: String,
    /// Category ("" when unknown).
    pub category: String,
    /// The call.
    pub direction: Direction,
    /// Its probability of a rise.
    pub p_up: f64,
    /// Expected change of the level (docs/TRENDS.md).
    pub strength: f64,
    /// Units per bucket over the last horizon-length of buckets (actuals).
    pub recent_level: f64,
    /// Expected units per bucket over the horizon.
    pub expected_level: f64,
    /// The update's `as_of`.
    pub as_of: String,
    /// Actual units of the last `history_buckets` buckets before `as_of`.
    pub history: Vec<f64>,
    /// Per horizon step: q0.1, expected, q0.9.
    pub fan: Vec<[f64; 3]>,
}

/// The trend of one category: sums over its SKUs' latest updates.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryRow {
    /// Category ("(none)" for SKUs without one).
    pub category: String,
    /// SKUs with a current update.
    pub skus: usize,
    /// Of them called rising, falling.
    pub rising: usize,
    /// Called falling.
    pub falling: usize,
    /// Recent units per bucket, summed over the SKUs.
    pub recent_level: f64,
    /// Expected units per bucket over the horizon, summed.
    pub expected_level: f64,
    /// Strength of the sums (docs/TRENDS.md, floor included).
    pub strength: f64,
}

/// A new product's text-based forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProductRow {
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Days of its own sales history when forecast.
    pub days_of_history: u32,
    /// Weight of its own history in the blend (0 = text only).
    pub own_weight: f64,
    /// Forecast units over the horizon (median sum) and the 10–90 % fan per step.
    pub fan: Vec<[f64; 3]>,
    /// Nearest catalog neighbours: SKU, title, similarity.
    pub neighbours: Vec<(String, String, f32)>,
    /// The forecast's `as_of`.
    pub as_of: String,
}

/// A restock alert: the stock runs out before an order placed now would arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct RestockRow {
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Units on hand.
    pub on_hand: f64,
    /// On hand + on order.
    pub position: f64,
    /// Recommended order.
    pub order_qty: f64,
    /// Expected stock-out.
    pub stockout_at: String,
    /// Lead time, days.
    pub lead_time_days: f64,
    /// When the signal was made.
    pub ts: String,
}

/// Facts about the report's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Models that made the latest updates (`name@version`).
    pub models: Vec<String>,
    /// First and last sale, RFC 3339.
    pub span: Option<(String, String)>,
    /// Newest `as_of` among the latest updates.
    pub newest_as_of: String,
    /// Sales events read.
    pub sales_events: u64,
    /// SKUs with a trend update.
    pub skus_with_updates: usize,
    /// Trend updates read.
    pub updates: usize,
    /// Forecast steps per update.
    pub horizon: usize,
    /// Bucket width, ms.
    pub bucket_ms: i64,
    /// Messages that did not decode.
    pub unreadable: u64,
    /// Optional topics not read, with the reason.
    pub not_read: Vec<String>,
    /// Where the inputs came from.
    pub source: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Facts about the inputs.
    pub meta: Meta,
    /// Rising products, most probable first.
    pub rising: Vec<ProductRow>,
    /// Falling products, most probable first.
    pub falling: Vec<ProductRow>,
    /// Categories, by expected volume.
    pub categories: Vec<CategoryRow>,
    /// New products, newest first.
    pub new_products: Vec<NewProductRow>,
    /// Restock alerts, soonest stock-out first.
    pub restock: Vec<RestockRow>,
    /// How past calls and intervals turned out.
    pub calibration: Calibration,
}

/// Builds the report's tables.
pub fn build(inputs: &ReportInputs, options: &ReportOptions) -> Report {
    let newest_ms = inputs.newest_as_of_ms();
    // a product is current when its latest update is within a week of the newest one
    let stale_before = newest_ms.map_or(i64::MIN, |t| t - 7 * trendcast_engine::vocab::DAY_MS);
    let rows: Vec<ProductRow> = inputs
        .latest
        .values()
        .filter_map(|u| product_row(inputs, u, options, stale_before))
        .collect();
    Report {
        meta: meta(inputs, options, newest_ms),
        rising: ranked(&rows, options, Direction::Rising),
        falling: ranked(&rows, options, Direction::Falling),
        categories: categories(&rows, options),
        new_products: new_products(inputs, options.top),
        restock: restock_alerts(inputs),
        calibration: calibration::measure(inputs, options),
    }
}

fn meta(inputs: &ReportInputs, options: &ReportOptions, newest_ms: Option<i64>) -> Meta {
    let mut models: Vec<String> = inputs.latest.values().map(|u| u.model.clone()).collect();
    models.sort();
    models.dedup();
    Meta {
        models,
        span: inputs.span_ms.map(|(lo, hi)| {
            (
                rfc3339(EventTime::from_millis(lo)),
                rfc3339(EventTime::from_millis(hi)),
            )
        }),
        newest_as_of: newest_ms
            .map(|ms| rfc3339(EventTime::from_millis(ms)))
            .unwrap_or_default(),
        sales_events: inputs.sales_events,
        skus_with_updates: inputs.latest.len(),
        updates: inputs.history.values().map(Vec::len).sum(),
        horizon: inputs
            .latest
            .values()
            .map(|u| u.horizon.len())
            .max()
            .unwrap_or(0),
        bucket_ms: inputs.bucket.width_ms(),
        unreadable: inputs.unreadable,
        not_read: inputs.not_read.clone(),
        source: options.source.clone(),
    }
}

/// Actual units of `sku` in buckets `from..to` (0 where none sold).
pub fn actuals(inputs: &ReportInputs, sku: &str, from: i64, to: i64) -> Vec<f64> {
    let held = inputs.units.get(sku);
    (from..to)
        .map(|b| held.and_then(|m| m.get(&b)).copied().unwrap_or(0.0))
        .collect()
}

fn product_row(
    inputs: &ReportInputs,
    update: &TrendUpdate,
    options: &ReportOptions,
    stale_before: i64,
) -> Option<ProductRow> {
    let call = super::PastCall::of(update)?;
    if call.as_of_ms < stale_before || update.horizon.is_empty() {
        return None;
    }
    let first = inputs
        .bucket
        .index_of(EventTime::from_millis(call.as_of_ms));
    let horizon = update.horizon.len() as i64;
    let history = actuals(
        inputs,
        &update.sku,
        first - options.history_buckets as i64,
        first,
    );
    let recent: Vec<f32> = history
        .iter()
        .rev()
        .take((horizon as usize).min(options.window_buckets))
        .map(|&u| u as f32)
        .collect();
    let expected = expected_per_step(update);
    let expected_level = expected.iter().sum::<f64>() / expected.len() as f64;
    let text = inputs
        .products
        .get(&update.sku)
        .cloned()
        .unwrap_or_default();
    let fan = expected
        .iter()
        .zip(call.low.iter().zip(&call.high))
        .map(|(&e, (&lo, &hi))| [finite_or(lo, e), e, finite_or(hi, e)])
        .collect();
    Some(ProductRow {
        sku: update.sku.clone(),
        title: text.title,
        category: text.category,
        direction: update.trend.direction,
        p_up: update.trend.p_up,
        strength: update.trend.strength,
        recent_level: trend::recent_level(&recent),
        expected_level,
        as_of: update.as_of.clone(),
        history,
        fan,
    })
}

fn finite_or(v: f32, fallback: f64) -> f64 {
    if v.is_finite() {
        f64::from(v)
    } else {
        fallback
    }
}

/// The `top` products called `direction` with enough volume, surest first: rising by `p_up`
/// (high first), falling by `p_up` (low first); ties by volume, then SKU.
fn ranked(rows: &[ProductRow], options: &ReportOptions, direction: Direction) -> Vec<ProductRow> {
    let horizon_units = |r: &ProductRow| match direction {
        Direction::Falling => r.recent_level * r.fan.len() as f64,
        _ => r.expected_level * r.fan.len() as f64,
    };
    let mut picked: Vec<ProductRow> = rows
        .iter()
        .filter(|r| r.direction == direction && horizon_units(r) >= options.min_volume)
        .cloned()
        .collect();
    let sign = if direction == Direction::Falling {
        1.0
    } else {
        -1.0
    };
    picked.sort_by(|a, b| {
        (sign * a.p_up)
            .total_cmp(&(sign * b.p_up))
            .then(horizon_units(b).total_cmp(&horizon_units(a)))
            .then(a.sku.cmp(&b.sku))
    });
    picked.truncate(options.top);
    picked
}

fn categories(rows: &[ProductRow], options: &ReportOptions) -> Vec<CategoryRow> {
    let mut by: BTreeMap<String, CategoryRow> = BTreeMap::new();
    for r in rows {
        let name = if r.category.is_empty() {
            "(none)"
        } else {
            r.category.as_str()
        };
        let c = by.entry(name.to_string()).or_insert_with(|| CategoryRow {
            category: name.to_string(),
            skus: 0,
            rising: 0,
            falling: 0,
            recent_level: 0.0,
            expected_level: 0.0,
            strength: 0.0,
        });
        c.skus += 1;
        c.rising += usize::from(r.direction == Direction::Rising);
        c.falling += usize::from(r.direction == Direction::Falling);
        c.recent_level += r.recent_level;
        c.expected_level += r.expected_level;
    }
    let mut out: Vec<CategoryRow> = by
        .into_values()
        .map(|mut c| {
            c.strength =
                trend::strength(c.expected_level, c.recent_level, options.trend.level_floor);
            c
        })
        .collect();
    out.sort_by(|a, b| {
        b.expected_level
            .total_cmp(&a.expected_level)
            .then(a.category.cmp(&b.category))
    });
    out
}

fn new_products(inputs: &ReportInputs, top: usize) -> Vec<NewProductRow> {
    let title = |sku: &str| {
        inputs
            .products
            .get(sku)
            .map(|p| p.title.clone())
            .unwrap_or_default()
    };
    let mut out: Vec<NewProductRow> = inputs
        .new_products
        .values()
        .map(|f| NewProductRow {
            sku: f.sku.clone(),
            title: title(&f.sku),
            days_of_history: f.days_of_history,
            own_weight: f.own_weight,
            fan: f
                .horizon
                .iter()
                .map(|h| {
                    let q = |l: &str| f64::from(h.quantiles.get(l).copied().unwrap_or(0.0));
                    [q("0.1"), h.mean.map_or(q("0.5"), f64::from), q("0.9")]
                })
                .collect(),
            neighbours: f
                .neighbours
                .iter()
                .map(|n| (n.sku.clone(), title(&n.sku), n.similarity))
                .collect(),
            as_of: f.as_of.clone(),
        })
        .collect();
    out.sort_by(|a, b| {
        a.days_of_history
            .cmp(&b.days_of_history)
            .then(b.as_of.cmp(&a.as_of))
            .then(a.sku.cmp(&b.sku))
    });
    out.truncate(top);
    out
}

/// Open reorders whose expected stock-out comes before an order placed at the signal would
/// arrive (signal time + lead time).
fn restock_alerts(inputs: &ReportInputs) -> Vec<RestockRow> {
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_millis())
    };
    let mut out: Vec<RestockRow> = inputs
        .restock
        .values()
        .filter(|s| s.action == RestockAction::Reorder)
        .filter_map(|s| {
            let stockout = s.stockout_at.as_deref()?;
            // `as` saturates on a huge lead time; the sum must not overflow either
            let lead_ms = (s.lead_time_days * trendcast_engine::vocab::DAY_MS as f64) as i64;
            let arrives = ms(&s.ts)?.saturating_add(lead_ms);
            (ms(stockout)? < arrives).then(|| RestockRow {
                sku: s.sku.clone(),
                title: inputs
                    .products
                    .get(&s.sku)
                    .map(|p| p.title.clone())
                    .unwrap_or_default(),
                on_hand: s.on_hand,
                position: s.inventory_position,
                order_qty: s.order_qty,
                stockout_at: stockout.to_string(),
                lead_time_days: s.lead_time_days,
                ts: s.ts.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.stockout_at.cmp(&b.stockout_at).then(a.sku.cmp(&b.sku)));
    out
}
