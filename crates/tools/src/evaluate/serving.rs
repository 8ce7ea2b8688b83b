//! The days an evaluation scores, as the engine would have scored them.
//!
//! The online interval calibration learns from the engine's own earlier forecasts, so an
//! evaluation that only scored the origins would report intervals the engine never publishes.
//! From a warm-up start (`--online-warmup-days` before the first origin) to the last origin, each
//! day scores the windows the engine scores at that close: every series with data the day
//! before (the engine scores a SKU at each closed bucket it has data in). Those rows feed the
//! online layer; on an origin every series is scored too, and those rows are what the metrics
//! read. Only events before a day are visible to its windows.

use std::sync::Arc;

use anyhow::Result;

use super::protocol::{DailyHistory, Protocol};
use crate::datasets::EventRecord;
use trendcast_engine::scoring::Model;
use trendcast_engine::vocab::{EventTime, DAY_MS};
use trendcast_engine::window::{Admission, WindowSettings, WindowStore};

/// One scored row of a day: which series, and whether the engine would have scored it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayRow {
    /// Index into the series.
    pub series: usize,
    /// The series had data the day before (the engine scores it, so it feeds the online layer).
    pub tracked: bool,
}

/// One day's windows (row-major, the model's feature order).
pub(crate) struct DayWindows {
    /// Days since 1970-01-01 (UTC) of the first forecast day.
    pub day: i64,
    /// Whether the day is an evaluation origin.
    pub origin: bool,
    /// The rows, in the order of `values`.
    pub rows: Vec<DayRow>,
    /// The windows.
    pub values: Vec<f32>,
}

/// The replay's outcome: per day its windows, every SKU's daily history, and the series.
pub(crate) struct Replayed {
    pub days: Vec<DayWindows>,
    pub history: DailyHistory,
    pub series: Vec<Arc<str>>,
}

/// The series: SKUs with sales on `min_sale_days` days before the first origin (a first pass
/// over the events before it, through the same admission).
fn series_of(
    events: &[EventRecord],
    window: &WindowSettings,
    protocol: &Protocol,
) -> Vec<Arc<str>> {
    let store = Arc::new(WindowStore::new(window.clone()));
    let mut admission = Admission::new(store);
    let mut history = DailyHistory::default();
    let first = protocol.first_origin() * DAY_MS;
    for record in events.iter().take_while(|r| r.ts() < first) {
        let Some((source, event)) = crate::export::event_of(record) else {
            continue;
        };
        if admission.admit(source, 0, &event).is_ok() {
            history.add(record.sku(), event.ts.millis(), &event.body);
        }
    }
    history.series(protocol.first_origin(), protocol.min_sale_days)
}

/// Replays `events` (sorted by time) through admission and a window store, copying each day's
/// windows just before the first event of that day.
pub(crate) fn replay(
    events: &[EventRecord],
    window: &WindowSettings,
    protocol: &Protocol,
    model: &Model,
    warmup_days: i64,
) -> Result<Replayed> {
    let series = series_of(events, window, protocol);
    let store = Arc::new(WindowStore::new(window.clone()));
    let mut admission = Admission::new(store.clone());
    let mut history = DailyHistory::default();
    let features = model.manifest().features.clone();
    let per = model.window_values();
    let last_origin = protocol.origins.last().copied().unwrap_or(0);
    let mut next = protocol.first_origin() - warmup_days.max(0);
    let mut days = Vec::new();
    let take = |day: i64, history: &DailyHistory, days: &mut Vec<DayWindows>| {
        let origin = protocol.origins.contains(&day);
        let last = window.bucket.index_of(EventTime::from_millis(day * DAY_MS)) - 1;
        let rows: Vec<DayRow> = series
            .iter()
            .enumerate()
            .map(|(i, sku)| DayRow {
                series: i,
                tracked: history.has_day(sku, day - 1),
            })
            .filter(|r| r.tracked || origin)
            .collect();
        let mut values = vec![0.0_f32; rows.len() * per];
        for (k, r) in rows.iter().enumerate() {
            // a SKU the store does not hold has an all-zero window, as in the engine
            let out = &mut values[k * per..(k + 1) * per];
            store.write_window(&series[r.series], last, &features, out);
        }
        days.push(DayWindows {
            day,
            origin,
            rows,
            values,
        });
    };
    for record in events {
        while next <= last_origin && record.ts() >= next * DAY_MS {
            take(next, &history, &mut days);
            next += 1;
        }
        let Some((source, event)) = crate::export::event_of(record) else {
            continue;
        };
        if admission.admit(source, 0, &event).is_ok() {
            history.add(record.sku(), event.ts.millis(), &event.body);
        }
    }
    while next <= last_origin {
        take(next, &history, &mut days);
        next += 1;
    }
    Ok(Replayed {
        days,
        history,
        series,
    })
}
