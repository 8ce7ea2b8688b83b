//! `trendcast export-windows`: training windows and targets from an event log, made by the
//! serving code itself.
//!
//! The log is replayed offline, in event-time order, through the same admission (lateness) and
//! window store the engine uses. Whenever a bucket closes, every SKU whose window ending there
//! holds any data contributes one row: its window exactly as the scorer would copy it (all
//! features, in [`Feature::ALL`] order) and, as target, the units of the next `horizon` closed
//! buckets (max(0, net units), as the engine recorded them when each closed). Rows whose horizon
//! runs past the end of the log are left out. Offline, each topic counts as one partition.
//!
//! Output in `--out`: `windows.npy` (f32, `[rows, window, features]`), `targets.npy` (f32,
//! `[rows, horizon]`), `index.csv` (`row,sku,origin` with origin = end of the window's last
//! bucket, RFC 3339) and `meta.json`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;

use crate::datasets::EventRecord;
use trendcast_engine::vocab::EventTime;
use trendcast_engine::vocab::{ClickKind, Event, EventBody, Source};
use trendcast_engine::window::Admission;
use trendcast_engine::window::{
    rfc3339, BucketIndex, Feature, WindowSettings, WindowStore, FEATURE_COUNT,
};

/// Header length reserved for a `.npy` file, so the shape can be written at the end.
const NPY_HEADER: usize = 128;

/// A `.npy` file of f32 rows written as they come; the shape is filled in by [`NpyWriter::finish`].
struct NpyWriter {
    file: BufWriter<File>,
    row_shape: Vec<usize>,
    rows: usize,
}

impl NpyWriter {
    fn create(path: &Path, row_shape: Vec<usize>) -> Result<Self> {
        let mut file = BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        file.write_all(&[b' '; NPY_HEADER])?;
        Ok(Self {
            file,
            row_shape,
            rows: 0,
        })
    }

    fn push(&mut self, row: &[f32]) -> Result<()> {
        for v in row {
            self.file.write_all(&v.to_le_bytes())?;
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<usize> {
        let dims: Vec<String> = std::iter::once(self.rows)
            .chain(self.row_shape.iter().copied())
            .map(|d| d.to_string())
            .collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        // magic (6) + version (2) + header length (2) + dict, padded with spaces, ending in '\n'
        let mut header = Vec::with_capacity(NPY_HEADER);
        header.extend_from_slice(b"\x93NUMPY\x01\x00");
        header.extend_from_slice(&((NPY_HEADER - 10) as u16).to_le_bytes());
        header.extend_from_slice(dict.as_bytes());
        anyhow::ensure!(header.len() < NPY_HEADER, "npy header too long");
        header.resize(NPY_HEADER - 1, b' ');
        header.push(b'\n');
        self.file.flush()?;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| anyhow::anyhow!("flush: {e}"))?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()?;
        Ok(self.rows)
    }
}

/// The engine event of a log record (None for a click kind the engine does not know).
pub(crate) fn event_of(record: &EventRecord) -> Option<(Source, Event<'_>)> {
    Some(match record {
        EventRecord::Sale(s) => (
            Source::Sales,
            Event {
                sku: s.sku.as_str().into(),
                ts: EventTime::from_millis(s.ts),
                body: EventBody::Sale {
                    qty: s.qty,
                    unit_price: s.unit_price,
                },
            },
        ),
        EventRecord::Click(c) => {
            let kind = match c.kind.as_str() {
                "view" => ClickKind::View,
                "add_to_cart" => ClickKind::AddToCart,
                "wishlist" => ClickKind::Wishlist,
                _ => return None,
            };
            (
                Source::Clicks,
                Event {
                    sku: c.sku.as_str().into(),
                    ts: EventTime::from_millis(c.ts),
                    body: EventBody::Click(kind),
                },
            )
        }
    })
}

/// Rows waiting for their targets.
struct Origin {
    sku: Arc<str>,
    bucket: BucketIndex,
}

/// Writes `targets.npy` (the next `horizon` closed buckets' units of each row; NaN where they run
/// past `last`, the log's last closed bucket) and `index.csv` (each row's SKU and origin).
fn write_targets(
    out: &Path,
    window: &WindowSettings,
    horizon: usize,
    origins: &[Origin],
    units: &HashMap<(Arc<str>, BucketIndex), f32>,
    last: BucketIndex,
) -> Result<()> {
    let mut targets = NpyWriter::create(&out.join("targets.npy"), vec![horizon])?;
    let mut index = BufWriter::new(File::create(out.join("index.csv"))?);
    writeln!(index, "row,sku,origin,complete")?;
    let mut target = vec![0.0_f32; horizon];
    for (i, o) in origins.iter().enumerate() {
        let complete = o.bucket + horizon as i64 <= last;
        for (h, slot) in target.iter_mut().enumerate() {
            *slot = units
                .get(&(o.sku.clone(), o.bucket + 1 + h as i64))
                .copied()
                .unwrap_or(0.0);
        }
        if !complete {
            target.fill(f32::NAN);
        }
        targets.push(&target)?;
        writeln!(
            index,
            "{i},{},{},{}",
            o.sku,
            rfc3339(window.bucket.end(o.bucket)),
            complete
        )?;
    }
    targets.finish()?;
    index.flush()?;
    Ok(())
}

/// Writes `meta.json`: what the rows are and how they were made.
fn write_meta(
    out: &Path,
    window: &WindowSettings,
    horizon: usize,
    rows: usize,
    events: usize,
    rejected: u64,
) -> Result<()> {
    let meta = json!({
        "rows": rows,
        "window_len": window.buckets,
        "horizon": horizon,
        "features": Feature::ALL.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "bucket_width_secs": window.bucket.width_ms() / 1000,
        "allowed_lateness_ms": window.lateness_ms,
        "events": events,
        "events_rejected": rejected,
        "targets": "max(0, net units) of the next `horizon` closed buckets; NaN rows (complete=false) run past the log's end",
    });
    std::fs::write(out.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

/// Writes windows and targets for `events` into `out`; returns the row count.
pub fn export(
    mut events: Vec<EventRecord>,
    window: &WindowSettings,
    horizon: usize,
    out: &Path,
) -> Result<usize> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    events.sort_by_key(EventRecord::ts);
    let store = Arc::new(WindowStore::new(window.clone()));
    let mut admission = Admission::new(store.clone());
    let t = window.buckets;
    let features = Feature::ALL;
    let mut windows = NpyWriter::create(&out.join("windows.npy"), vec![t, FEATURE_COUNT])?;
    let mut origins: Vec<Origin> = Vec::new();
    let mut units: HashMap<(Arc<str>, BucketIndex), f32> = HashMap::new();
    let mut row = vec![0.0_f32; t * FEATURE_COUNT];
    let mut rejected = 0_u64;

    // Rows for every bucket in `from..=upto`, from the store as it is now.
    let mut on_close = |from: BucketIndex, upto: BucketIndex| -> Result<()> {
        let snapshot = store.snapshot();
        for b in from..=upto {
            for (sku, w) in &snapshot {
                w.write_window(b, t, &features, &mut row);
                if row.iter().all(|v| *v == 0.0) {
                    continue;
                }
                let u = w.bucket(b)[Feature::Units as usize];
                units.insert((sku.clone(), b), u.max(0.0));
                windows.push(&row)?;
                origins.push(Origin {
                    sku: sku.clone(),
                    bucket: b,
                });
            }
        }
        Ok(())
    };
    for record in &events {
        let Some((source, event)) = event_of(record) else {
            rejected += 1;
            continue;
        };
        // Buckets this event closes are written before it lands (in a later bucket).
        if let (Some(prev), Some(wm)) = (store.clock().closed_index(), store.clock().watermark()) {
            let next = store.clock().closed_for(wm.max(event.ts));
            if next > prev {
                on_close(prev + 1, next)?;
            }
        }
        if admission.admit(source, 0, &event).is_err() {
            rejected += 1;
        }
    }
    let before_flush = store.clock().closed_index();
    store.clock().flush();
    if let (Some(prev), Some(last)) = (before_flush, store.clock().closed_index()) {
        if last > prev {
            on_close(prev + 1, last)?;
        }
    }
    let closed = store.clock().closed_index();
    let rows = windows.finish()?;

    write_targets(
        out,
        window,
        horizon,
        &origins,
        &units,
        closed.unwrap_or(i64::MIN),
    )?;
    write_meta(out, window, horizon, rows, events.len(), rejected)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::SaleRecord;
    use trendcast_engine::window::BucketSpec;

    fn read_f32(path: &Path) -> Vec<f32> {
        let bytes = std::fs::read(path).expect("npy");
        bytes[NPY_HEADER..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn windows_and_targets_of_a_known_series() {
        let day = 86_400_000_i64;
        let day0 = 15_000 * day;
        // One SKU selling d + 1 units on day d, d = 0..12.
        let events = (0..12)
            .map(|d| {
                EventRecord::Sale(SaleRecord {
                    sku: "S".into(),
                    ts: day0 + d * day + 3_600_000 * 12,
                    qty: (d + 1) as f64,
                    unit_price: None,
                    order_id: None,
                })
            })
            .collect();
        let window = WindowSettings {
            bucket: BucketSpec::new(day),
            buckets: 3,
            lateness_ms: 3_600_000,
            max_skus: 10,
            shards: 0,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = export(events, &window, 2, dir.path()).expect("export");
        assert_eq!(rows, 12, "one row per closed day with data in the window");
        let w = read_f32(&dir.path().join("windows.npy"));
        let t = read_f32(&dir.path().join("targets.npy"));
        let units =
            |r: usize| -> Vec<f32> { (0..3).map(|b| w[(r * 3 + b) * FEATURE_COUNT]).collect() };
        // Row 5: window ending on day 5 holds days 3..=5; targets are days 6 and 7.
        assert_eq!(units(5), vec![4.0, 5.0, 6.0]);
        assert_eq!(&t[5 * 2..5 * 2 + 2], &[7.0, 8.0]);
        // The first row has zeros before the first sale; the last rows have no full horizon.
        assert_eq!(units(0), vec![0.0, 0.0, 1.0]);
        assert!(t[11 * 2].is_nan());
        let index = std::fs::read_to_string(dir.path().join("index.csv")).expect("index");
        assert!(index.lines().nth(6).is_some_and(|l| l.ends_with(",true")));
        assert!(index.lines().nth(12).is_some_and(|l| l.ends_with(",false")));
    }
}
