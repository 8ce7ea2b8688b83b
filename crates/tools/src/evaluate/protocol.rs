//! The evaluation protocol: origins, series, and each SKU's daily history, from one event log.
//!
//! Daily buckets by UTC date; the last full day L is the day before the date of the latest event;
//! four rolling origins (UTC midnights) seven days apart, the last at L − (horizon − 1) so that
//! its horizon ends on L. Series are the SKUs with sales (units > 0 after the max(0, ·) clip) on
//! at least `min_sale_days` distinct days before the first origin.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use trendcast_engine::window::{features, BucketFeatures, Feature};

use trendcast_engine::vocab::DAY_MS;

/// Rolling origins and the series they score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Origins, oldest first, in days since 1970-01-01 (UTC).
    pub origins: Vec<i64>,
    /// Forecast days per origin.
    pub horizon: usize,
    /// Distinct sale days a SKU needs before the first origin to be a series.
    pub min_sale_days: usize,
}

impl Protocol {
    /// The protocol of a log whose latest event is at `latest_ms`.
    pub fn for_log(latest_ms: i64, horizon: usize, origins: usize, min_sale_days: usize) -> Self {
        let last_full_day = latest_ms.div_euclid(DAY_MS) - 1;
        let last_origin = last_full_day - (horizon as i64 - 1);
        let origins = (0..origins as i64)
            .rev()
            .map(|k| last_origin - 7 * k)
            .collect();
        Self {
            origins,
            horizon,
            min_sale_days,
        }
    }

    /// The first origin.
    pub fn first_origin(&self) -> i64 {
        self.origins.first().copied().unwrap_or(i64::MIN)
    }
}

/// Per SKU, per day: the features of the events admitted on that day (the engine's own
/// per-bucket feature code, so "units" here is what the windows hold).
#[derive(Debug, Default)]
pub struct DailyHistory {
    days: HashMap<Arc<str>, BTreeMap<i64, BucketFeatures>>,
}

impl DailyHistory {
    /// Adds one admitted event of `sku` at `ts_ms`.
    pub fn add(&mut self, sku: &str, ts_ms: i64, body: &trendcast_engine::vocab::EventBody) {
        let day = ts_ms.div_euclid(DAY_MS);
        // the key is allocated once per SKU, not per event
        if !self.days.contains_key(sku) {
            self.days.insert(Arc::from(sku), BTreeMap::new());
        }
        if let Some(days) = self.days.get_mut(sku) {
            let bucket = days
                .entry(day)
                .or_insert([0.0; trendcast_engine::window::FEATURE_COUNT]);
            features::apply(bucket, body);
        }
    }

    /// Every SKU with an admitted event.
    pub fn skus(&self) -> impl Iterator<Item = &Arc<str>> {
        self.days.keys()
    }

    /// Whether `sku` had an admitted event on `day` (the engine scores a SKU at each closed
    /// bucket it has data in).
    pub fn has_day(&self, sku: &str, day: i64) -> bool {
        self.days.get(sku).is_some_and(|d| d.contains_key(&day))
    }

    /// The first day with units > 0 of `sku`.
    pub fn first_sale(&self, sku: &str) -> Option<i64> {
        self.days.get(sku).and_then(|d| {
            d.iter()
                .find(|(_, b)| b[Feature::Units as usize] > 0.0)
                .map(|(day, _)| *day)
        })
    }

    /// max(0, net units) of `sku` on `day`.
    pub fn units(&self, sku: &str, day: i64) -> f64 {
        self.feature(sku, day, Feature::Units).max(0.0)
    }

    fn feature(&self, sku: &str, day: i64, feature: Feature) -> f64 {
        self.days
            .get(sku)
            .and_then(|d| d.get(&day))
            .map_or(0.0, |b| f64::from(b[feature as usize]))
    }

    /// SKUs with units > 0 on at least `min_days` distinct days before `before` (sorted).
    pub fn series(&self, before: i64, min_days: usize) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = self
            .days
            .iter()
            .filter(|(_, days)| {
                days.range(..before)
                    .filter(|(_, b)| b[Feature::Units as usize] > 0.0)
                    .count()
                    >= min_days
            })
            .map(|(sku, _)| sku.clone())
            .collect();
        out.sort();
        out
    }

    /// Daily units of `sku` from its first sale to `origin − 1` (empty without a sale before).
    pub fn history(&self, sku: &str, origin: i64) -> Vec<f64> {
        let first = self.days.get(sku).and_then(|d| {
            d.range(..origin)
                .find(|(_, b)| b[Feature::Units as usize] > 0.0)
                .map(|(day, _)| *day)
        });
        match first {
            Some(first) => (first..origin).map(|d| self.units(sku, d)).collect(),
            None => Vec::new(),
        }
    }

    /// Revenue of `sku` over the `days` days before `origin` (at least 0).
    pub fn revenue_before(&self, sku: &str, origin: i64, days: i64) -> f64 {
        ((origin - days)..origin)
            .map(|d| self.feature(sku, d, Feature::Revenue))
            .sum::<f64>()
            .max(0.0)
    }

    /// Mean units of `sku` over the `days` days before `origin`.
    pub fn mean_units_before(&self, sku: &str, origin: i64, days: i64) -> f64 {
        ((origin - days)..origin)
            .map(|d| self.units(sku, d))
            .sum::<f64>()
            / days as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trendcast_engine::vocab::EventBody;

    #[test]
    fn origins_end_the_last_horizon_on_the_last_full_day() {
        // latest event 2011-12-09 12:50 UTC: L = 2011-12-08, last origin 2011-11-25
        let latest = 1_323_435_000_000;
        let p = Protocol::for_log(latest, 14, 4, 30);
        let day = |s: &str| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| {
                    d.signed_duration_since(chrono::NaiveDate::default())
                        .num_days()
                })
                .unwrap_or(0)
        };
        let epoch = day("1970-01-01");
        let want: Vec<i64> = ["2011-11-04", "2011-11-11", "2011-11-18", "2011-11-25"]
            .iter()
            .map(|s| day(s) - epoch)
            .collect();
        assert_eq!(p.origins, want);
    }

    #[test]
    fn series_history_and_weights() {
        let mut h = DailyHistory::default();
        let sku: Arc<str> = Arc::from("A");
        let sale = |qty: f64| EventBody::Sale {
            qty,
            unit_price: Some(2.0),
        };
        h.add("A", 10 * DAY_MS + 5, &sale(3.0));
        h.add("A", 12 * DAY_MS, &sale(1.0));
        h.add("A", 12 * DAY_MS + 9, &sale(-4.0)); // a return: net -3, clipped to 0
        h.add("A", 13 * DAY_MS, &sale(2.0));
        assert_eq!(h.series(14, 2), vec![sku.clone()]);
        assert!(h.series(13, 2).is_empty(), "day 12 nets to a return");
        assert_eq!(h.history("A", 14), vec![3.0, 0.0, 0.0, 2.0]);
        assert_eq!(h.units("A", 12), 0.0);
        // revenue 6 + (2 − 8) + 4 = 4 over days 10..13
        assert_eq!(h.revenue_before("A", 14, 4), 4.0);
        assert_eq!(h.mean_units_before("A", 14, 2), 1.0);
        assert!(h.history("B", 14).is_empty());
    }
}
