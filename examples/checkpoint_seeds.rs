//! Writes one encoded checkpoint record of each kind (and a version-1 window) as fuzzing seeds.
//! Run: cargo run --example checkpoint_seeds -- fuzz/seeds/decode_checkpoint

use trendcast::checkpoint::format::{encode, v1};
use trendcast::checkpoint::{PartitionCut, Record, WindowRecord};
use trendcast::ingest::{ClickKind, EventBody};
use trendcast::vocab::EventTime;
use trendcast::window::SkuWindow;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds/decode_checkpoint".into());
    std::fs::create_dir_all(&dir)?;
    let mut w = SkuWindow::new(30, 3);
    w.apply(
        15_000,
        &EventBody::Sale {
            qty: 4.0,
            unit_price: Some(2.5),
        },
    );
    w.apply(15_001, &EventBody::Click(ClickKind::View));
    let records = [
        Record::Window(WindowRecord {
            checkpoint: 9,
            partition: 3,
            cut: [120, 40].into(),
            sku: "85123A".into(),
            window: w,
        }),
        Record::Removed {
            checkpoint: 9,
            partition: 3,
            sku: "gone".into(),
        },
        Record::Cut(PartitionCut {
            checkpoint: 9,
            partition: 3,
            next_offsets: [120, 40].into(),
            watermarks: [EventTime::from_millis(1_296_000_000_000), EventTime::MIN].into(),
        }),
    ];
    for (i, r) in records.iter().enumerate() {
        std::fs::write(format!("{dir}/v2-{i}"), encode(r))?;
    }
    let old = v1::Record::Removed {
        checkpoint: 1,
        partition: 0,
        sku: "A".into(),
    };
    std::fs::write(format!("{dir}/v1-removed"), old.encode())?;
    Ok(())
}
