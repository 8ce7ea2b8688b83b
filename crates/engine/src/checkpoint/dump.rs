//! `trendcast dump-state`: the per-SKU window state held in a checkpoint folder, as JSON lines.
//!
//! Equivalence tests compare two dumps byte for byte, so the output is canonical: SKUs sorted,
//! and for each SKU the buckets of the window ending at the newest bucket any partition has
//! reached (the state a forecast made now would see), non-zero buckets only. Scoring bookkeeping
//! (when a SKU was last scored) is left out: it depends on timing, not on the input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::format::CheckpointError;
use super::restore::fold;
use crate::state::PartitionLog;
use crate::vocab::{EventTime, Source};
use crate::window::{rfc3339, Feature, WindowSettings};

/// Writes the state in `dir` (one consumer group's checkpoint folder) to `out`; returns the
/// number of SKUs written.
pub fn dump(
    dir: &Path,
    window: &WindowSettings,
    out: &mut impl Write,
) -> Result<usize, CheckpointError> {
    if !dir.is_dir() {
        return Err(CheckpointError::Io {
            what: format!("reading {}", dir.display()),
            message: "no such checkpoint folder (it is <checkpoint.dir>/<group id>)".into(),
        });
    }
    let log = PartitionLog::open(dir)?;
    let capacity = window.ring_capacity();
    let mut skus = BTreeMap::new();
    let mut newest = EventTime::MIN;
    for p in log.partitions()? {
        let (records, problem) = log.read(p, &capacity)?;
        if let Some(e) = problem {
            tracing::warn!(partition = p, error = %e, "checkpoint log ends early");
        }
        let restored = fold(p, records);
        if let Some(c) = &restored.cut {
            newest = newest.max(c.watermarks.iter().copied().max().unwrap_or(EventTime::MIN));
        }
        for (sku, (w, _)) in restored.windows {
            skus.insert(sku, w);
        }
    }
    let spec = window.bucket;
    let last = if newest == EventTime::MIN {
        0
    } else {
        spec.index_of(newest)
    };
    let io = |e: std::io::Error| CheckpointError::Io {
        what: "writing the dump".into(),
        message: e.to_string(),
    };
    let mut written = 0;
    for (sku, w) in &skus {
        let buckets: Vec<_> = (last - window.buckets as i64 + 1..=last)
            .filter_map(|b| {
                let f = w.bucket(b);
                f.iter().any(|v| *v != 0.0).then(|| {
                    let features: BTreeMap<&str, f32> = Feature::ALL
                        .iter()
                        .map(|x| (x.name(), f[*x as usize]))
                        .collect();
                    json!({"start": rfc3339(spec.start(b)), "features": features})
                })
            })
            .collect();
        if buckets.is_empty() {
            continue;
        }
        let line = json!({
            "sku": sku,
            "partition": w.partition(),
            "heads": {
                "sales": w.source_head(Source::Sales).map(|b| rfc3339(spec.start(b))),
                "clicks": w.source_head(Source::Clicks).map(|b| rfc3339(spec.start(b))),
            },
            "buckets": buckets,
        });
        writeln!(out, "{line}").map_err(io)?;
        written += 1;
    }
    Ok(written)
}
