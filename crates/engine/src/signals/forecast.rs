//! Demand distributions read off a trend update: per bucket, then summed over a span of time.
//!
//! A trend update carries a few quantiles per future bucket (0.1/0.5/0.9 for the shipped
//! models). Inventory decisions need the distribution of demand over a lead time that spans
//! several buckets, often fractions of them, sometimes past the horizon. The assumptions:
//!
//! - **Per bucket, a normal approximation.** The spread is read off the outermost pair of
//!   quantiles: `sd = (q_hi - q_lo) / (z(hi) - z(lo))`. The mean is the model's own `mean` when
//!   the step carries one (models with a mean output); otherwise Swanson's rule
//!   `0.3·q0.1 + 0.4·q0.5 + 0.3·q0.9` when the levels are exactly 0.1/0.5/0.9 (it keeps the
//!   right skew of intermittent demand, whose median is often 0), otherwise the median.
//! - **Buckets are correlated as the update's totals say.** The sum of daily quantiles is not a
//!   quantile of the sum, and independent days would make the spread of a total far too narrow
//!   (a whole forecast is too low or too high together). An update carries the quantiles of the
//!   total over its horizon and, with signals on, over the restock lead time
//!   (docs/TRENDS.md): their spread against the days' own spreads gives a variance inflation,
//!   `var(total) / Σ var(day)`, and a span's variance is the days' variances times the
//!   inflation of the published total nearest it in length. An update without totals (older
//!   engines) is read with independent days.
//! - **A fraction `f` of a bucket** carries `f·mean` and `f·variance` (demand arrives like a
//!   Poisson stream within the bucket).
//! - **Past the horizon**, every further bucket is taken as the horizon's average bucket.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::publish::{HorizonTotal, TrendUpdate};

/// One future bucket's demand: mean and standard deviation in units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepDemand {
    /// Expected units.
    pub mean: f64,
    /// Standard deviation of units.
    pub sd: f64,
}

/// Demand summed over a span: mean and variance.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SpanDemand {
    /// Expected units over the span.
    pub mean: f64,
    /// Variance of units over the span.
    pub var: f64,
}

impl SpanDemand {
    /// Standard deviation.
    pub fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    /// The `level` quantile under the normal approximation, never below 0.
    pub fn quantile(&self, z: f64) -> f64 {
        (self.mean + z * self.sd()).max(0.0)
    }
}

/// The forecast part of a SKU's signal state: what a trend update says about future demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandForecast {
    /// Start of the first forecast bucket (the update's `as_of`), epoch ms.
    pub as_of_ms: i64,
    /// Bucket width, ms.
    pub bucket_ms: i64,
    /// One entry per future bucket, in order.
    pub steps: Vec<StepDemand>,
    /// The published totals' spreads as (buckets, variance inflation); empty for an update
    /// without totals.
    #[serde(default)]
    pub totals: Vec<(f64, f64)>,
    /// The update's per-SKU sequence number.
    pub seq: u64,
    /// `name@version` of the model.
    pub model: String,
}

/// Why a trend update could not be read as a demand forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// The update has no horizon.
    #[error("the trend update has no horizon steps")]
    NoHorizon,
    /// A time field is not RFC 3339.
    #[error("{field} is not an RFC 3339 time: {value:?}")]
    BadTime {
        /// Field name.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// Steps are not consecutive buckets of one width.
    #[error("horizon steps are not consecutive buckets of one positive width")]
    Irregular,
    /// A step has no usable quantile.
    #[error("horizon step {0} has no finite quantile with a level in (0, 1)")]
    NoQuantiles(usize),
}

/// `(buckets, var(total) / Σ var(day))` of a published total over the first `total.buckets`
/// steps; `None` when it is unusable (no spread, no steps, or bad numbers).
fn inflation(steps: &[StepDemand], total: &HorizonTotal) -> Option<(f64, f64)> {
    let n = total.buckets.min(steps.len());
    let days: f64 = steps[..n].iter().map(|s| s.sd * s.sd).sum();
    let q: Vec<(f64, f64)> = total
        .quantiles
        .iter()
        .filter_map(|(l, v)| l.parse::<f64>().ok().map(|l| (l, f64::from(*v))))
        .collect();
    let spread = step_demand(0, &q).ok()?.sd;
    let k = spread * spread / days;
    (n > 0 && k.is_finite() && k > 0.0).then_some((n as f64, k.clamp(0.1, n as f64 * 4.0)))
}

/// z-score of a probability level (standard normal inverse CDF).
pub fn z_of(level: f64) -> f64 {
    // Normal::new(0, 1) cannot fail
    Normal::new(0.0, 1.0)
        .map(|n| n.inverse_cdf(level))
        .unwrap_or(0.0)
}

fn parse_ms(field: &'static str, value: &str) -> Result<i64, ForecastError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ForecastError::BadTime {
            field,
            value: value.to_string(),
        })
}

/// Reads one step's quantiles (level text → units) as a mean and a standard deviation.
fn step_demand(index: usize, quantiles: &[(f64, f64)]) -> Result<StepDemand, ForecastError> {
    let mut q: Vec<(f64, f64)> = quantiles
        .iter()
        .copied()
        .filter(|(l, v)| *l > 0.0 && *l < 1.0 && v.is_finite())
        .map(|(l, v)| (l, v.max(0.0)))
        .collect();
    if q.is_empty() {
        return Err(ForecastError::NoQuantiles(index));
    }
    q.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lo, hi) = (q[0], q[q.len() - 1]);
    let median = q
        .iter()
        .find(|(l, _)| (*l - 0.5).abs() < 1e-9)
        .map(|(_, v)| *v);
    let is = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let mean = match (q.len(), median) {
        (3, Some(m)) if is(lo.0, 0.1) && is(hi.0, 0.9) => 0.3 * lo.1 + 0.4 * m + 0.3 * hi.1,
        (_, Some(m)) => m,
        _ => (lo.1 + hi.1) / 2.0,
    };
    let dz = z_of(hi.0) - z_of(lo.0);
    let sd = if q.len() > 1 && dz > 0.0 {
        ((hi.1 - lo.1) / dz).max(0.0)
    } else {
        0.0
    };
    Ok(StepDemand { mean, sd })
}

impl DemandForecast {
    /// Reads a trend update.
    pub fn from_update(update: &TrendUpdate) -> Result<Self, ForecastError> {
        let first = update.horizon.first().ok_or(ForecastError::NoHorizon)?;
        let as_of_ms = parse_ms("as_of", &update.as_of)?;
        let start = parse_ms("horizon.start", &first.start)?;
        let end = parse_ms("horizon.end", &first.end)?;
        let bucket_ms = end - start;
        if bucket_ms <= 0 || start != as_of_ms {
            return Err(ForecastError::Irregular);
        }
        let mut steps = Vec::with_capacity(update.horizon.len());
        for (i, step) in update.horizon.iter().enumerate() {
            let s = parse_ms("horizon.start", &step.start)?;
            let e = parse_ms("horizon.end", &step.end)?;
            if s != as_of_ms + bucket_ms * i as i64 || e - s != bucket_ms {
                return Err(ForecastError::Irregular);
            }
            let q: Vec<(f64, f64)> = step
                .quantiles
                .iter()
                .filter_map(|(l, v)| l.parse::<f64>().ok().map(|l| (l, f64::from(*v))))
                .collect();
            let mut demand = step_demand(i, &q)?;
            if let Some(mean) = step.mean.filter(|m| m.is_finite()) {
                demand.mean = f64::from(mean.max(0.0));
            }
            steps.push(demand);
        }
        let totals = [&update.lead_time_total, &update.total]
            .into_iter()
            .flatten()
            .filter_map(|t| inflation(&steps, t))
            .collect();
        Ok(Self {
            as_of_ms,
            bucket_ms,
            steps,
            totals,
            seq: update.seq,
            model: update.model.clone(),
        })
    }

    /// Buckets per day (for converting day counts).
    pub fn buckets_per_day(&self) -> f64 {
        86_400_000.0 / self.bucket_ms as f64
    }

    /// Average bucket of the horizon (used past its end).
    fn tail(&self) -> SpanDemand {
        let n = self.steps.len().max(1) as f64;
        SpanDemand {
            mean: self.steps.iter().map(|s| s.mean).sum::<f64>() / n,
            var: self.steps.iter().map(|s| s.sd * s.sd).sum::<f64>() / n,
        }
    }

    /// Demand over `[start, start + len)`, in buckets counted from `as_of`.
    pub fn over(&self, start: f64, len: f64) -> SpanDemand {
        let (start, end) = (start.max(0.0), start.max(0.0) + len.max(0.0));
        let mut out = SpanDemand::default();
        for (i, s) in self.steps.iter().enumerate() {
            let f = (end.min(i as f64 + 1.0) - start.max(i as f64)).max(0.0);
            out.mean += f * s.mean;
            out.var += f * s.sd * s.sd;
        }
        let h = self.steps.len() as f64;
        let beyond = (end - start.max(h)).max(0.0);
        let tail = self.tail();
        out.mean += beyond * tail.mean;
        out.var += beyond * tail.var;
        out.var *= self.inflation_for(end - start);
        out
    }

    /// The variance inflation of the published total nearest `len` buckets in length (1 for
    /// none).
    fn inflation_for(&self, len: f64) -> f64 {
        self.totals
            .iter()
            .min_by(|a, b| (a.0 - len).abs().total_cmp(&(b.0 - len).abs()))
            .map_or(1.0, |t| t.1)
    }

    /// Buckets after `start` until expected cumulative demand reaches `stock`; `None` when it
    /// does not within `limit` buckets (no demand expected).
    pub fn exhausts(&self, start: f64, stock: f64, limit: f64) -> Option<f64> {
        if stock <= 0.0 {
            return Some(0.0);
        }
        let start = start.max(0.0);
        let mut left = stock;
        let mut t = start;
        for (i, s) in self.steps.iter().enumerate() {
            let (a, b) = (start.max(i as f64), i as f64 + 1.0);
            if b <= a {
                continue;
            }
            let demand = (b - a) * s.mean;
            if demand >= left && s.mean > 0.0 {
                return Some(a + left / s.mean - start);
            }
            left -= demand;
            t = b;
        }
        let rate = self.tail().mean;
        if rate <= 1e-12 {
            return None;
        }
        let at = t + left / rate - start;
        (at <= limit).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Direction, HorizonStep, Trend};

    fn update(steps: &[[f32; 3]]) -> TrendUpdate {
        let day = 86_400_000i64;
        let t0 = 1_700_006_400_000i64; // a UTC midnight
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_default()
        };
        TrendUpdate {
            sku: "A".into(),
            as_of: at(t0),
            model: "m@1".into(),
            seq: 3,
            horizon: steps
                .iter()
                .enumerate()
                .map(|(i, q)| HorizonStep {
                    start: at(t0 + i as i64 * day),
                    end: at(t0 + (i as i64 + 1) * day),
                    quantiles: [("0.1", q[0]), ("0.5", q[1]), ("0.9", q[2])]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                    mean: None,
                })
                .collect(),
            total: None,
            lead_time_total: None,
            trend: Trend {
                direction: Direction::Flat,
                strength: 0.0,
                p_up: 0.5,
            },
        }
    }

    #[test]
    fn swanson_mean_and_spread_from_the_outer_quantiles() {
        let f = DemandForecast::from_update(&update(&[[0.0, 2.0, 10.0]])).unwrap();
        // 0.3*0 + 0.4*2 + 0.3*10 = 3.8 ; sd = 10 / (2 * 1.281552) = 3.901521
        assert!((f.steps[0].mean - 3.8).abs() < 1e-9);
        assert!(
            (f.steps[0].sd - 3.901_521).abs() < 1e-5,
            "{}",
            f.steps[0].sd
        );
        assert_eq!(f.bucket_ms, 86_400_000);
        assert_eq!(f.seq, 3);
    }

    #[test]
    fn a_model_mean_replaces_swanson_and_keeps_the_spread() {
        let mut u = update(&[[0.0, 2.0, 10.0]]);
        u.horizon[0].mean = Some(5.5);
        let f = DemandForecast::from_update(&u).unwrap();
        assert!((f.steps[0].mean - 5.5).abs() < 1e-9, "{}", f.steps[0].mean);
        assert!((f.steps[0].sd - 3.901_521).abs() < 1e-5);
        u.horizon[0].mean = Some(f32::NAN);
        let g = DemandForecast::from_update(&u).unwrap();
        assert!(
            (g.steps[0].mean - 3.8).abs() < 1e-9,
            "a NaN mean falls back to Swanson"
        );
    }

    #[test]
    fn spans_add_means_and_variances_with_fractions_and_a_tail() {
        let f = DemandForecast::from_update(&update(&[[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])).unwrap();
        // [0.5, 3.5): half of bucket 0 (0.5), all of bucket 1 (3), 1.5 tail buckets of mean 2
        let d = f.over(0.5, 3.0);
        assert!((d.mean - (0.5 + 3.0 + 3.0)).abs() < 1e-9, "{}", d.mean);
        assert_eq!(d.var, 0.0);
        let g = DemandForecast::from_update(&update(&[[0.0, 2.0, 10.0]; 2])).unwrap();
        let sd = g.steps[0].sd;
        assert!((g.over(0.0, 2.0).var - 2.0 * sd * sd).abs() < 1e-9);
    }

    #[test]
    fn a_published_total_sets_the_spread_of_spans() {
        // four days of sd (9 - 1) / 2.563 = 3.12; a total whose 10–90 % range is 4 × 8
        // (perfectly correlated days) inflates the summed variance four-fold
        let mut u = update(&[[1.0, 4.0, 9.0]; 4]);
        let independent = DemandForecast::from_update(&u)
            .expect("valid")
            .over(0.0, 4.0);
        u.total = Some(crate::publish::HorizonTotal {
            buckets: 4,
            mean: 16.0,
            quantiles: [("0.1", 4.0), ("0.5", 16.0), ("0.9", 36.0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        });
        let f = DemandForecast::from_update(&u).expect("valid");
        let span = f.over(0.0, 4.0);
        assert!((span.mean - independent.mean).abs() < 1e-9);
        assert!(
            (span.var / independent.var - 4.0).abs() < 1e-6,
            "{} vs {}",
            span.var,
            independent.var
        );
        // a span without a total of its own takes the nearest one's inflation
        assert!((f.over(0.0, 2.0).var / independent.var - 2.0).abs() < 1e-6);
    }

    #[test]
    fn stock_runs_out_where_cumulative_mean_demand_reaches_it() {
        let f = DemandForecast::from_update(&update(&[[2.0, 2.0, 2.0], [4.0, 4.0, 4.0]])).unwrap();
        assert_eq!(f.exhausts(0.0, 0.0, 100.0), Some(0.0));
        assert!((f.exhausts(0.0, 1.0, 100.0).unwrap() - 0.5).abs() < 1e-9);
        assert!((f.exhausts(0.0, 4.0, 100.0).unwrap() - 1.5).abs() < 1e-9);
        // 6 in the horizon, then 3 per bucket: 9 more units take 3 buckets
        assert!((f.exhausts(0.0, 15.0, 100.0).unwrap() - 5.0).abs() < 1e-9);
        // starting half-way through bucket 0 (1 unit left in it)
        assert!((f.exhausts(0.5, 1.0, 100.0).unwrap() - 0.5).abs() < 1e-9);
        let none = DemandForecast::from_update(&update(&[[0.0, 0.0, 0.0]])).unwrap();
        assert_eq!(none.exhausts(0.0, 5.0, 1000.0), None);
    }

    #[test]
    fn malformed_updates_are_refused() {
        let mut u = update(&[[0.0, 1.0, 2.0]]);
        u.horizon.clear();
        assert_eq!(
            DemandForecast::from_update(&u),
            Err(ForecastError::NoHorizon)
        );
        let mut u = update(&[[0.0, 1.0, 2.0]]);
        u.as_of = "yesterday".into();
        assert!(matches!(
            DemandForecast::from_update(&u),
            Err(ForecastError::BadTime { .. })
        ));
        let mut u = update(&[[0.0, 1.0, 2.0]]);
        u.horizon[0].quantiles.clear();
        assert_eq!(
            DemandForecast::from_update(&u),
            Err(ForecastError::NoQuantiles(0))
        );
    }
}
