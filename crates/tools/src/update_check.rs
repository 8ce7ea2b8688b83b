//! Checks every trend update a replay publishes, as a reader of the output topic would.
//!
//! Why here and not only in tests: the demo and the load test replay real logs end to end, and
//! what they publish is what a retailer would read. Each update is checked for the coherence
//! properties (`scoring::distribution::update_violations`, docs/TRENDS.md "One forecast"), and,
//! when the replayed log's actual daily units are known, each of its days that the log covers is
//! judged against the published 10–90 % interval. The coverage counts updates issued in a
//! trailing period of the log (the demo: its last eight weeks), so it reads what the online
//! calibration has settled to rather than its first weeks.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use trendcast_engine::publish::TrendUpdate;
use trendcast_engine::scoring::distribution::update_violations;
use trendcast_engine::vocab::DAY_MS;

use crate::evaluate::forecasts::day_of;

/// Per-day actual units of a log, by SKU (returns net against sales; a day never below 0).
#[derive(Debug, Default)]
pub struct Actuals {
    days: HashMap<String, BTreeMap<i64, f64>>,
    last_day: Option<i64>,
}

impl Actuals {
    /// Adds `qty` units of `sku` at `ts_ms` (epoch milliseconds).
    pub fn add(&mut self, sku: &str, ts_ms: i64, qty: f64) {
        let day = ts_ms.div_euclid(DAY_MS);
        // the key is allocated once per SKU, not per event
        if !self.days.contains_key(sku) {
            self.days.insert(sku.to_string(), BTreeMap::new());
        }
        if let Some(days) = self.days.get_mut(sku) {
            *days.entry(day).or_insert(0.0) += qty;
        }
        self.last_day = self.last_day.max(Some(day));
    }

    /// The units of `sku` on `day`, when the log covers that day (0 on a day without sales).
    fn units(&self, sku: &str, day: i64) -> Option<f64> {
        (day <= self.last_day?).then(|| {
            let net = self
                .days
                .get(sku)
                .and_then(|d| d.get(&day))
                .copied()
                .unwrap_or(0.0);
            net.max(0.0)
        })
    }
}

/// What the checks found, as the demo and the load test report it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CheckSummary {
    /// Updates checked.
    pub updates: u64,
    /// Messages read back that were not a trend update's JSON.
    pub unreadable: u64,
    /// Updates that broke at least one coherence property.
    pub incoherent: u64,
    /// Broken properties by name (an update may break several).
    pub violations: BTreeMap<String, u64>,
    /// (update, day) pairs judged against the 80 % interval.
    pub interval_pairs: u64,
    /// Share of them inside it; `None` when none was judged.
    pub interval_coverage: Option<f64>,
}

/// The checks over one replay.
#[derive(Debug)]
pub struct UpdateCheck {
    flat_band: f64,
    actuals: Actuals,
    /// Updates issued (as of) before this day are not judged for coverage.
    coverage_from_day: i64,
    summary: CheckSummary,
    covered: u64,
}

impl UpdateCheck {
    /// Checks against the trend definition's `flat_band`; coverage is judged on updates issued
    /// in the last `coverage_days` days of `actuals`.
    pub fn new(flat_band: f64, actuals: Actuals, coverage_days: i64) -> Self {
        let last = actuals.last_day.unwrap_or(i64::MIN);
        Self {
            flat_band,
            coverage_from_day: last.saturating_sub(coverage_days),
            actuals,
            summary: CheckSummary::default(),
            covered: 0,
        }
    }

    /// Checks one published update.
    pub fn observe(&mut self, update: &TrendUpdate) {
        self.summary.updates += 1;
        let broken = update_violations(update, self.flat_band);
        if !broken.is_empty() {
            self.summary.incoherent += 1;
        }
        for v in broken {
            *self.summary.violations.entry(format!("{v:?}")).or_default() += 1;
        }
        self.judge(update);
    }

    /// Checks one message of the output topic (JSON); counts it unreadable otherwise.
    pub fn observe_payload(&mut self, payload: Option<&[u8]>) {
        match payload.map(serde_json::from_slice::<TrendUpdate>) {
            Some(Ok(u)) => self.observe(&u),
            _ => self.summary.unreadable += 1,
        }
    }

    fn judge(&mut self, update: &TrendUpdate) {
        let Some(issued) = day_of(&update.as_of) else {
            return;
        };
        if issued < self.coverage_from_day {
            return;
        }
        for step in &update.horizon {
            let (Some(day), Some(end)) = (day_of(&step.start), day_of(&step.end)) else {
                continue;
            };
            // daily buckets only: a wider bucket's actual is not one day's units
            if end != day + 1 {
                continue;
            }
            let Some(actual) = self.actuals.units(&update.sku, day) else {
                continue;
            };
            let q = trendcast_engine::scoring::distribution::by_level(&step.quantiles);
            let (Some(lo), Some(hi)) = (q.first(), q.last()) else {
                continue;
            };
            self.summary.interval_pairs += 1;
            let slack = 1e-4 * (1.0 + actual);
            if f64::from(*lo) - slack <= actual && actual <= f64::from(*hi) + slack {
                self.covered += 1;
            }
        }
    }

    /// What was found so far.
    pub fn summary(&self) -> CheckSummary {
        let mut s = self.summary.clone();
        s.interval_coverage = (s.interval_pairs > 0)
            .then(|| (self.covered as f64 / s.interval_pairs as f64 * 10_000.0).round() / 10_000.0);
        s
    }
}

/// The flat band of the trend definition the engine applies with `settings` (the model's
/// classifier's, unless the configuration names another).
pub fn flat_band(
    settings: &trendcast_engine::config::Settings,
) -> Result<f64, trendcast_engine::scoring::ManifestError> {
    let m = trendcast_engine::scoring::ResolvedManifest::load(
        &settings.scoring.manifest,
        &settings.window,
    )?;
    let rule = trendcast_engine::scoring::trend::TrendRule::for_model(&settings.trend, &m.manifest);
    Ok(rule.settings.flat_band)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trendcast_engine::publish::{Direction, HorizonStep, Trend};

    fn update(lo: f32, hi: f32, strength: f64, p_up: f64) -> TrendUpdate {
        TrendUpdate {
            sku: "A".into(),
            as_of: "2011-01-10T00:00:00Z".into(),
            model: "m@1".into(),
            seq: 1,
            horizon: vec![HorizonStep {
                start: "2011-01-10T00:00:00Z".into(),
                end: "2011-01-11T00:00:00Z".into(),
                quantiles: [("0.1", lo), ("0.5", (lo + hi) / 2.0), ("0.9", hi)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                mean: Some((lo + hi) / 2.0),
            }],
            total: None,
            lead_time_total: None,
            trend: Trend {
                direction: if strength > 0.2 {
                    Direction::Rising
                } else {
                    Direction::Flat
                },
                strength,
                p_up,
            },
        }
    }

    fn actuals() -> Actuals {
        let mut a = Actuals::default();
        a.add("A", 14_984 * DAY_MS + 3_600_000, 7.0); // 2011-01-10
        a.add("A", 14_984 * DAY_MS + 7_200_000, -2.0);
        a
    }

    #[test]
    fn judges_coverage_and_counts_broken_properties() {
        let mut check = UpdateCheck::new(0.2, actuals(), 56);
        check.observe(&update(4.0, 6.0, 0.0, 0.1)); // 5 units: covered
        check.observe(&update(6.0, 9.0, 0.0, 0.1)); // not covered
        check.observe(&update(4.0, 6.0, -0.4, 0.9)); // p_up 0.9 with strength −40 %
        let s = check.summary();
        assert_eq!(s.updates, 3);
        assert_eq!(s.interval_pairs, 3);
        assert_eq!(s.interval_coverage, Some(0.6667));
        assert_eq!(s.incoherent, 1);
        assert_eq!(s.violations.get("StrengthBelowPUp"), Some(&1));
    }

    #[test]
    fn days_past_the_log_and_early_updates_are_not_judged() {
        let mut check = UpdateCheck::new(0.2, Actuals::default(), 56);
        check.observe(&update(4.0, 6.0, 0.0, 0.1));
        assert_eq!(check.summary().interval_pairs, 0);
        assert_eq!(check.summary().interval_coverage, None);
    }
}
