//! Folding a checkpoint log back into state.

use std::collections::HashMap;

use super::format::{PartitionCut, Record};
use crate::scoring::calibration::CalibrationState;
use crate::vocab::PerSource;
use crate::window::SkuWindow;

/// A partition's state as read back from a checkpoint log.
#[derive(Debug, Default)]
pub struct Restored {
    /// The last complete checkpoint's cut; `None` when no checkpoint completed.
    pub cut: Option<PartitionCut>,
    /// The newest window of each SKU, with the cut it was written at.
    pub windows: HashMap<String, (SkuWindow, PerSource<i64>)>,
    /// The newest online interval calibration written.
    pub calibration: Option<CalibrationState>,
    /// Records read.
    pub records: usize,
}

impl Restored {
    /// Windows written after the last cut, with the offsets below which their SKU's events
    /// are already applied (ingest skips those).
    pub fn ahead_of_cut(&self) -> Vec<(String, PerSource<i64>)> {
        let base = self.cut.as_ref().map(|c| c.next_offsets);
        self.windows
            .iter()
            .filter(|(_, (_, cut))| match base {
                Some(b) => cut.iter().zip(b.iter()).any(|(c, b)| c > b),
                None => true,
            })
            .map(|(sku, (_, cut))| (sku.clone(), *cut))
            .collect()
    }

    /// The next offset of each source to resume from (-1 = from the group's position).
    pub fn next_offsets(&self) -> PerSource<i64> {
        self.cut
            .as_ref()
            .map_or(PerSource::both(-1), |c| c.next_offsets)
    }
}

/// Folds records in log order: the newest record of a SKU wins, the newest cut gives the
/// offsets. Records of other partitions are ignored.
pub fn fold(partition: u16, records: impl IntoIterator<Item = Record>) -> Restored {
    let mut out = Restored::default();
    for record in records {
        if record.partition() != partition {
            continue;
        }
        out.records += 1;
        match record {
            Record::Window(w) => {
                out.windows.insert(w.sku, (w.window, w.cut));
            }
            Record::Removed { sku, .. } => {
                out.windows.remove(&sku);
            }
            Record::Cut(c) => out.cut = Some(c),
            Record::Calibration { state, .. } => out.calibration = Some(state),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::WindowRecord;
    use crate::vocab::EventTime;

    fn win(sku: &str, checkpoint: u64, cut: [i64; 2]) -> Record {
        Record::Window(WindowRecord {
            checkpoint,
            partition: 1,
            cut: cut.into(),
            sku: sku.into(),
            window: SkuWindow::new(4, 1),
        })
    }

    fn cut(checkpoint: u64, next: [i64; 2]) -> Record {
        Record::Cut(PartitionCut {
            checkpoint,
            partition: 1,
            next_offsets: next.into(),
            watermarks: PerSource::both(EventTime::from_millis(0)),
        })
    }

    #[test]
    fn newest_wins_and_a_torn_tail_is_skipped_per_sku() {
        let records = vec![
            win("a", 1, [10, 0]),
            win("b", 1, [10, 0]),
            cut(1, [10, 0]),
            win("a", 2, [20, 5]),
            Record::Removed {
                checkpoint: 2,
                partition: 1,
                sku: "b".into(),
            },
            cut(2, [20, 5]),
            // checkpoint 3 torn by a crash: "c" written, no cut
            win("c", 3, [30, 5]),
        ];
        let r = fold(1, records);
        assert_eq!(r.next_offsets(), [20, 5].into());
        let mut keys: Vec<_> = r.windows.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec!["a", "c"]);
        assert_eq!(r.ahead_of_cut(), vec![("c".to_string(), [30, 5].into())]);
        assert!(fold(2, vec![win("a", 1, [1, 1])]).windows.is_empty());
    }
}
