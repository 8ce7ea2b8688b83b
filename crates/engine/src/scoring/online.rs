//! The online calibration as the scorer (and `trendcast evaluate`) applies it to each row.
//!
//! Per scored row: compare the SKU's kept band (if any) with the actuals its window now holds,
//! fold the comparisons into the partition's widths, stretch the row's published intervals by
//! the widths, and keep this band when the SKU has none in flight (`scoring/calibration.rs`
//! says why and how). One implementation for the engine and the evaluation, so what
//! `trendcast evaluate` reports is what the engine publishes.

use std::collections::HashMap;
use std::sync::Arc;

use super::calibration::{
    compare, observe, stratum_of, stretch, CalibrationState, CalibrationTable, Observation,
    OnlineSettings, Snapshot, Track,
};
use super::distribution::{hold_means, Total};
use crate::window::BucketIndex;

pub use crate::telemetry::stats::INTERVAL_COVERAGE;

/// Each day's outer quantiles, then the total's.
type Bands = (Vec<[f32; 2]>, [f32; 2]);

/// One scoring in [`START_EVERY`] (on average) starts a band once the last one is done.
pub const START_EVERY: u64 = 4;

/// Whether a scoring of `row` starts a new band: a hash of the SKU and the bucket, so the
/// choice is reproducible yet the bands' origins drift across the calendar. Without it every SKU
/// that sells daily would start a band every H buckets from the same bucket, each step's track
/// would see one weekday only (with H = 14, step 1 always a Saturday), and widths learnt on that
/// weekday would be applied to all the others.
fn starts_band(row: &OnlineRow<'_>) -> bool {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    row.sku.hash(&mut h);
    row.at.hash(&mut h);
    h.finish() % START_EVERY == 0
}

/// One row as the online layer sees it.
pub struct OnlineRow<'a> {
    /// The SKU.
    pub sku: &'a Arc<str>,
    /// Its input partition.
    pub partition: u16,
    /// The scored (last closed) bucket.
    pub at: BucketIndex,
    /// The window's units, oldest first, the last being bucket `at`'s.
    pub units: &'a [f32],
    /// Whether its band is compared and kept (the engine: always; an evaluation scores some
    /// rows only to report them).
    pub track: bool,
}

/// The scorer's side of the online calibration.
pub struct OnlineLayer {
    settings: OnlineSettings,
    /// Nominal miss rates of the lower and upper side.
    alpha: [f64; 2],
    horizon: usize,
    nq: usize,
    median: usize,
    table: CalibrationTable,
    snapshots: HashMap<Arc<str>, Snapshot>,
    scratch: Vec<(usize, Observation)>,
}

impl OnlineLayer {
    /// A layer for a model of `horizon` steps with quantile `levels` (increasing), the median
    /// at `median`, keeping its widths in `table`.
    pub fn new(
        settings: OnlineSettings,
        levels: &[f64],
        median: usize,
        horizon: usize,
        table: CalibrationTable,
    ) -> Self {
        let lo = levels.first().copied().unwrap_or(0.1);
        let hi = levels.last().copied().unwrap_or(0.9);
        Self {
            settings,
            alpha: [lo, 1.0 - hi],
            horizon,
            nq: levels.len().max(1),
            median,
            table,
            snapshots: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The table of widths (shared with the checkpointer).
    pub fn table(&self) -> &CalibrationTable {
        &self.table
    }

    /// SKUs whose band is kept for comparison.
    pub fn tracked(&self) -> usize {
        self.snapshots.len()
    }

    /// Compares, adapts and stretches one coherent row's days in place (module docs); its
    /// horizon total is compared, not stretched.
    pub fn apply(
        &mut self,
        row: &OnlineRow<'_>,
        quantiles: &mut [f32],
        mean: &[f32],
        total: &Total,
    ) {
        let raw = self.bands(quantiles, total);
        let days = mean.len().min(self.horizon).max(1);
        let stratum =
            stratum_of(mean.iter().take(days).map(|m| f64::from(*m)).sum::<f64>() / days as f64);
        let mut states = self.table.lock();
        let state = states
            .entry(row.partition)
            .or_insert_with(|| CalibrationState::new(self.horizon));
        if !state.fits(self.horizon) {
            *state = CalibrationState::new(self.horizon);
        }
        let done = match self.snapshots.get_mut(row.sku) {
            _ if !row.track => false,
            Some(snapshot) => {
                self.scratch.clear();
                let done = compare(snapshot, row.at, row.units, &mut self.scratch);
                observe(
                    state,
                    snapshot.stratum,
                    &self.scratch,
                    self.alpha,
                    &self.settings,
                );
                done
            }
            None => true,
        };
        if self.settings.enabled {
            self.stretch(state.stratum(stratum), quantiles, mean);
        }
        drop(states);
        if done {
            // a finished band is never compared again (its total would be counted twice)
            self.snapshots.remove(row.sku);
        }
        if done && self.snapshots.len() < self.settings.max_tracked && starts_band(row) {
            self.keep(row, stratum, &raw, self.bands(quantiles, total));
        }
    }

    /// Keeps the band just published for `row` (and the one before the online layer).
    fn keep(&mut self, row: &OnlineRow<'_>, stratum: usize, raw: &Bands, published: Bands) {
        let steps = published
            .0
            .iter()
            .zip(&raw.0)
            .map(|(p, r)| [p[0], p[1], r[0], r[1]])
            .collect();
        let total = [published.1[0], published.1[1], raw.1[0], raw.1[1]];
        self.snapshots.insert(
            row.sku.clone(),
            Snapshot {
                origin: row.at,
                partition: row.partition,
                stratum,
                steps,
                total,
                compared: 0,
            },
        );
    }

    /// Each day's and the total's outer quantiles.
    fn bands(&self, quantiles: &[f32], total: &Total) -> Bands {
        let days = quantiles
            .chunks_exact(self.nq)
            .take(self.horizon)
            .map(|d| [d[0], d[self.nq - 1]])
            .collect();
        let q = &total.quantiles;
        let t = [
            q.first().copied().unwrap_or(0.0),
            q.last().copied().unwrap_or(0.0),
        ];
        (days, t)
    }

    /// Stretches the days by their step's widths.
    fn stretch(&self, tracks: &[Track], quantiles: &mut [f32], mean: &[f32]) {
        for (day, track) in quantiles.chunks_exact_mut(self.nq).zip(tracks) {
            let median = day[self.median];
            stretch(day, median, track.scales());
        }
        hold_means(quantiles, mean, self.nq);
        // The totals keep their offline calibration: their track is measured (the gauge's
        // "total" step) but not applied. Replayed on Online Retail, applying it narrowed the
        // horizon totals' coverage on the evaluation origins from 0.791 to 0.691: the rows the
        // engine rescores (SKUs with fresh events) are covered more often than the rest.
    }

    /// Sets the coverage gauges: per step (1..=H, then "total"), published and unadjusted.
    pub fn publish_metrics(&self) {
        for (k, (published, raw)) in self
            .table
            .coverage(self.horizon + 1)
            .into_iter()
            .enumerate()
        {
            if published.is_finite() {
                set_coverage(&step_label(k, self.horizon), published, raw);
            }
        }
    }
}

/// The gauges' `step` label of track `k`: "1".."H", then "total" (H + 1 values, never a SKU).
fn step_label(k: usize, horizon: usize) -> String {
    if k == horizon {
        "total".to_string()
    } else {
        (k + 1).to_string()
    }
}

fn set_coverage(step: &str, published: f64, raw: f64) {
    metrics::gauge!(INTERVAL_COVERAGE, "step" => step.to_string(), "kind" => "published")
        .set(published);
    metrics::gauge!(INTERVAL_COVERAGE, "step" => step.to_string(), "kind" => "unadjusted").set(raw);
}

/// Registers every coverage gauge of a `horizon`-step model as NaN ("nothing compared yet"), so
/// that a scrape shows the series from the start and a dashboard can tell "no data" from 0.
pub fn register_gauges(horizon: usize) {
    for k in 0..=horizon {
        set_coverage(&step_label(k, horizon), f64::NAN, f64::NAN);
    }
}
