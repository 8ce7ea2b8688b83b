//! The calibration panel: how the calls and intervals published at past weekly origins turned
//! out, judged by the definition of `docs/TRENDS.md` against the actuals read from the sales
//! topic.
//!
//! The newest origin is the last one whose whole horizon has been observed; the others are whole
//! weeks before it. At each origin every SKU's newest update made in the week up to it is judged
//! over its own horizon (the engine publishes an update when a SKU's window changes, so not
//! every SKU has one on the origin's day).

use super::tables::{actuals, ReportOptions};
use super::{PastCall, ReportInputs};
use trendcast_engine::publish::Direction;
use trendcast_engine::scoring::trend;
use trendcast_engine::vocab::EventTime;
use trendcast_engine::window::rfc3339;

/// How the calls made at one origin turned out.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginRow {
    /// The origin (start of its first forecast bucket), RFC 3339.
    pub origin: String,
    /// SKUs judged.
    pub skus: usize,
    /// Share of calls equal to the realised class.
    pub accuracy: f64,
    /// Of the calls "rising", the share that rose (NaN when none).
    pub rising_precision: f64,
    /// Brier score of `p_up` against "rose".
    pub brier: f64,
    /// Brier score of always saying this origin's own base rate of rising: a reference known
    /// only in hindsight (no forecast had it), so beating it is hard.
    pub brier_base_rate: f64,
    /// Share of (SKU, step) actuals inside the published 10–90 % interval (NaN without one).
    pub coverage80: f64,
    /// Σ|expected − actual| over Σ actual, per SKU's horizon totals.
    pub wape: f64,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityBin {
    /// Lower edge of the bin (width 0.1).
    pub from: f64,
    /// Calls in the bin.
    pub count: usize,
    /// Their mean `p_up`.
    pub mean_p_up: f64,
    /// The share that rose.
    pub observed: f64,
}

/// The panel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calibration {
    /// Newest origin first.
    pub origins: Vec<OriginRow>,
    /// Ten bins of `p_up` over every judged call.
    pub reliability: Vec<ReliabilityBin>,
}

/// One judged call.
struct Judged {
    call: Direction,
    realised: Direction,
    p_up: f64,
    inside: usize,
    bounded_steps: usize,
    expected_total: f64,
    actual_total: f64,
}

/// Judges the calls at the last `options.calibration_weeks` weekly origins.
pub fn measure(inputs: &ReportInputs, options: &ReportOptions) -> Calibration {
    let Some((first_bucket, last_bucket)) = observed_buckets(inputs) else {
        return Calibration::default();
    };
    let horizon = inputs
        .latest
        .values()
        .map(|u| u.horizon.len())
        .max()
        .unwrap_or(0) as i64;
    let recent = horizon.min(options.window_buckets as i64);
    let week = (7 * trendcast_engine::vocab::DAY_MS / inputs.bucket.width_ms()).max(1);
    let mut all: Vec<Judged> = Vec::new();
    let mut origins = Vec::new();
    for k in 0..options.calibration_weeks as i64 {
        // the last origin whose horizon ends at or before the last complete bucket
        let origin = last_bucket + 1 - horizon - k * week;
        // judged only where every bucket it reads was observed (a trimmed sales topic would
        // otherwise read as zero sales)
        if origin - week - recent < first_bucket {
            break;
        }
        let judged: Vec<Judged> = inputs
            .history
            .iter()
            .filter_map(|(sku, calls)| {
                let call = newest_in(calls, inputs, origin - week, origin)?;
                judge(inputs, sku, call, recent, options)
            })
            .collect();
        if judged.is_empty() {
            continue;
        }
        origins.push(origin_row(rfc3339(inputs.bucket.start(origin)), &judged));
        all.extend(judged);
    }
    Calibration {
        origins,
        reliability: reliability(&all),
    }
}

/// The first bucket with sales and the last complete one: the bucket before the newest
/// forecast's first bucket (the newest sale's bucket may still be open), and no later than the
/// newest sale's.
fn observed_buckets(inputs: &ReportInputs) -> Option<(i64, i64)> {
    let (first_ms, last_ms) = inputs.span_ms?;
    let newest_as_of = inputs
        .bucket
        .index_of(EventTime::from_millis(inputs.newest_as_of_ms()?));
    let last = inputs
        .bucket
        .index_of(EventTime::from_millis(last_ms))
        .min(newest_as_of - 1);
    Some((
        inputs.bucket.index_of(EventTime::from_millis(first_ms)),
        last,
    ))
}

/// The newest call whose first forecast bucket lies in `(from, to]`.
fn newest_in<'a>(
    calls: &'a [PastCall],
    inputs: &ReportInputs,
    from: i64,
    to: i64,
) -> Option<&'a PastCall> {
    calls
        .iter()
        .filter(|c| {
            let b = inputs.bucket.index_of(EventTime::from_millis(c.as_of_ms));
            b > from && b <= to
        })
        .max_by_key(|c| c.as_of_ms)
}

fn judge(
    inputs: &ReportInputs,
    sku: &str,
    call: &PastCall,
    recent_buckets: i64,
    options: &ReportOptions,
) -> Option<Judged> {
    let steps = call.expected.len();
    if steps == 0 {
        return None;
    }
    let first = inputs
        .bucket
        .index_of(EventTime::from_millis(call.as_of_ms));
    let future = actuals(inputs, sku, first, first + steps as i64);
    let recent: Vec<f32> = actuals(inputs, sku, first - recent_buckets, first)
        .into_iter()
        .map(|u| u as f32)
        .collect();
    let actual_mean = future.iter().map(|u| u.max(0.0)).sum::<f64>() / steps as f64;
    let realised = trend::realised(actual_mean, trend::recent_level(&recent), &options.trend);
    // steps without a finite interval (a model without q0.1 / q0.9) are not counted
    let bounded: Vec<(f64, f64, f64)> = future
        .iter()
        .zip(call.low.iter().zip(&call.high))
        .filter(|(_, (lo, hi))| lo.is_finite() && hi.is_finite())
        .map(|(&a, (&lo, &hi))| (a, f64::from(lo), f64::from(hi)))
        .collect();
    let inside = bounded
        .iter()
        .filter(|(a, lo, hi)| lo <= a && a <= hi)
        .count();
    Some(Judged {
        call: call.direction,
        realised,
        p_up: call.p_up,
        inside,
        bounded_steps: bounded.len(),
        expected_total: call.expected.iter().sum(),
        actual_total: future.iter().map(|u| u.max(0.0)).sum(),
    })
}

fn origin_row(origin: String, judged: &[Judged]) -> OriginRow {
    let n = judged.len() as f64;
    let rose = |j: &Judged| f64::from(u8::from(j.realised == Direction::Rising));
    let base_rate = judged.iter().map(rose).sum::<f64>() / n;
    let called_up: Vec<&Judged> = judged
        .iter()
        .filter(|j| j.call == Direction::Rising)
        .collect();
    let actual: f64 = judged.iter().map(|j| j.actual_total).sum();
    OriginRow {
        origin,
        skus: judged.len(),
        accuracy: judged.iter().filter(|j| j.call == j.realised).count() as f64 / n,
        rising_precision: if called_up.is_empty() {
            f64::NAN
        } else {
            called_up.iter().map(|j| rose(j)).sum::<f64>() / called_up.len() as f64
        },
        brier: judged
            .iter()
            .map(|j| (j.p_up - rose(j)).powi(2))
            .sum::<f64>()
            / n,
        brier_base_rate: judged
            .iter()
            .map(|j| (base_rate - rose(j)).powi(2))
            .sum::<f64>()
            / n,
        coverage80: ratio(
            judged.iter().map(|j| j.inside).sum::<usize>() as f64,
            judged.iter().map(|j| j.bounded_steps).sum::<usize>() as f64,
        ),
        wape: if actual > 0.0 {
            judged
                .iter()
                .map(|j| (j.expected_total - j.actual_total).abs())
                .sum::<f64>()
                / actual
        } else {
            f64::NAN
        },
    }
}

/// `num / den`, NaN when `den` is 0.
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        f64::NAN
    }
}

fn reliability(judged: &[Judged]) -> Vec<ReliabilityBin> {
    (0..10)
        .filter_map(|bin| {
            let from = f64::from(bin) / 10.0;
            let inside: Vec<&Judged> = judged
                .iter()
                .filter(|j| ((j.p_up * 10.0).floor() as i32).clamp(0, 9) == bin)
                .collect();
            (!inside.is_empty()).then(|| {
                let n = inside.len() as f64;
                ReliabilityBin {
                    from,
                    count: inside.len(),
                    mean_p_up: inside.iter().map(|j| j.p_up).sum::<f64>() / n,
                    observed: inside
                        .iter()
                        .filter(|j| j.realised == Direction::Rising)
                        .count() as f64
                        / n,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use trendcast_engine::publish::{HorizonStep, Trend, TrendUpdate};
    use trendcast_engine::vocab::DAY_MS;
    use trendcast_engine::window::BucketSpec;

    /// A daily update for `sku` made at day `as_of_day`, expecting `level` a day for 14 days.
    fn update(
        sku: &str,
        as_of_day: i64,
        level: f32,
        direction: Direction,
        p_up: f64,
    ) -> TrendUpdate {
        let step = |d: i64| HorizonStep {
            start: rfc3339(EventTime::from_millis((as_of_day + d) * DAY_MS)),
            end: rfc3339(EventTime::from_millis((as_of_day + d + 1) * DAY_MS)),
            quantiles: BTreeMap::from([
                ("0.1".to_string(), 0.5 * level),
                ("0.5".to_string(), level),
                ("0.9".to_string(), 1.5 * level),
            ]),
            mean: Some(level),
        };
        TrendUpdate {
            sku: sku.into(),
            as_of: rfc3339(EventTime::from_millis(as_of_day * DAY_MS)),
            model: "m@1".into(),
            seq: as_of_day as u64,
            horizon: (0..14).map(step).collect(),
            total: None,
            lead_time_total: None,
            trend: Trend {
                direction,
                strength: 0.0,
                p_up,
            },
        }
    }

    #[test]
    fn a_call_that_came_true_scores_right_and_one_that_did_not_scores_wrong() {
        let mut inputs = ReportInputs::new(BucketSpec::new(DAY_MS));
        // "up" sold 2 a day for 14 days, then 6 a day; "flat" 4 a day throughout (days 0..42)
        for day in 0..42 {
            let ts = day * DAY_MS + 1;
            inputs.add_sale("up", ts, if day < 28 { 2.0 } else { 6.0 });
            inputs.add_sale("flat", ts, 4.0);
        }
        inputs.add_update(update("up", 28, 6.0, Direction::Rising, 0.9));
        // the engine's newest forecast (day 42) says days up to 41 are complete
        inputs.add_update(update("clock", 42, 1.0, Direction::Flat, 0.1));
        // called rising with p_up 0.8, but it stayed flat
        inputs.add_update(update("flat", 28, 4.0, Direction::Rising, 0.8));
        let options = ReportOptions {
            calibration_weeks: 1,
            ..ReportOptions::default()
        };
        let c = measure(&inputs, &options);
        assert_eq!(c.origins.len(), 1, "{c:?}");
        let o = &c.origins[0];
        assert_eq!(o.origin, rfc3339(EventTime::from_millis(28 * DAY_MS)));
        assert_eq!(o.skus, 2);
        assert!((o.accuracy - 0.5).abs() < 1e-9, "{o:?}");
        assert!((o.rising_precision - 0.5).abs() < 1e-9, "{o:?}");
        // (0.9 - 1)² and (0.8 - 0)², averaged
        assert!((o.brier - (0.01 + 0.64) / 2.0).abs() < 1e-9, "{o:?}");
        // every actual sits inside [0.5, 1.5] × its forecast
        assert!((o.coverage80 - 1.0).abs() < 1e-9, "{o:?}");
        assert!(o.wape.abs() < 1e-9, "{o:?}");
        assert_eq!(c.reliability.len(), 2);
    }

    #[test]
    fn no_origin_is_judged_before_its_horizon_has_passed() {
        let mut inputs = ReportInputs::new(BucketSpec::new(DAY_MS));
        for day in 0..30 {
            inputs.add_sale("a", day * DAY_MS, 1.0);
        }
        // made at day 28: its horizon ends at day 42, after the last sale
        inputs.add_update(update("a", 28, 1.0, Direction::Flat, 0.1));
        let c = measure(&inputs, &ReportOptions::default());
        assert!(c.origins.is_empty(), "{c:?}");
    }
}
