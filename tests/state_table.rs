//! The takeover tests of every state table (`trendcast::state`): what one host writes to a
//! changelog topic is what another host reads back, through a real broker, for window state and
//! signal state alike. (The restart tests, over the local log, are the unit tests of
//! `state::log`; the end-to-end restart and takeover of each component are in `recovery.rs` and
//! `signals.rs`.)

mod common;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use trendcast::checkpoint::{PartitionCut, Record, WindowRecord};
use trendcast::publish::{MessageKind, Publisher};
use trendcast::signals::records::{fold as fold_signals, SignalRecord};
use trendcast::signals::state::SkuSignals;
use trendcast::state::{ChangelogTopic, TableRecord};
use trendcast::telemetry::stats::EngineStats;
use trendcast::vocab::{EventBody, EventTime, PerSource};
use trendcast::window::SkuWindow;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Two checkpoints of partition 0 (the second one enqueued as many records in one go, so the
/// broker keeps them in shared batches) and one of partition 1 go out; a fresh reader, as a
/// host taking the partitions over would be, gets each partition's records back in order, and
/// a record it cannot decode is skipped and counted rather than ending the takeover.
fn hands_over<R: TableRecord + PartialEq + Debug>(
    name: &str,
    make: impl Fn(u16, u64) -> R,
    context: &R::Context,
) {
    let topics = Topics::create(name, 2);
    let kafka = settings(&topics).kafka;
    let topic = format!("{}-changelog", topics.sales);
    create_topics(&brokers(), &[(&topic, 2)]);
    let publisher = Publisher::new(&kafka, Arc::new(EngineStats::new())).expect("producer");
    let changelog = ChangelogTopic::new(&topic);
    let p0: Vec<R> = (0..200).map(|n| make(0, n)).collect();
    let p1: Vec<R> = (0..3).map(|n| make(1, n)).collect();
    let flush = || publisher.flush(READ_TIMEOUT).expect("acknowledged");
    changelog.write(&publisher, 0, &p0[..1]).expect("write");
    flush();
    changelog.write(&publisher, 0, &p0[1..]).expect("write");
    changelog.write(&publisher, 1, &p1).expect("write");
    flush();

    let read = |p| {
        changelog
            .read::<R>(&kafka, p, context, READ_TIMEOUT)
            .expect("read")
    };
    assert_eq!(read(0), (p0, 0), "partition 0 handed over");
    assert_eq!(read(1), (p1, 0), "partition 1 handed over");

    publisher
        .send_to(
            MessageKind::Changelog,
            &topic,
            Some(1),
            Some(b"x"),
            Some(b"not a record"),
            None,
        )
        .expect("enqueue");
    flush();
    let (records, bad) = read(1);
    assert_eq!(
        (records.len(), bad),
        (3, 1),
        "an undecodable record is skipped and counted"
    );
}

fn window_record(partition: u16, n: u64) -> Record {
    if n % 50 == 49 {
        return Record::Cut(PartitionCut {
            checkpoint: n,
            partition,
            next_offsets: [n as i64, 2 * n as i64].into(),
            watermarks: PerSource::both(EventTime::from_millis(n as i64 * 1_000)),
        });
    }
    let mut window = SkuWindow::new(4, partition);
    let sale = EventBody::Sale {
        qty: n as f64,
        unit_price: Some(2.5),
    };
    window.apply(100 + n as i64, &sale);
    Record::Window(WindowRecord {
        checkpoint: n / 50 + 1,
        partition,
        cut: [n as i64, 0].into(),
        sku: format!("SKU-{partition}-{n}"),
        window,
    })
}

fn signal_record(partition: u16, n: u64) -> SignalRecord {
    if n % 50 == 49 {
        return SignalRecord::Cut {
            next: [n as i64, -1, i64::from(partition)],
            newest_as_of_ms: Some(n as i64),
        };
    }
    SignalRecord::Sku {
        sku: format!("SKU-{partition}-{n}"),
        state: Box::new(SkuSignals {
            new_product_seq: n,
            ..SkuSignals::default()
        }),
    }
}

#[test]
fn window_state_is_handed_over_through_the_changelog() {
    hands_over("table-windows", window_record, &4);
}

#[test]
fn signal_state_is_handed_over_through_the_changelog() {
    hands_over("table-signals", signal_record, &());
    // what is handed over folds to the state that was written
    let records: Vec<SignalRecord> = (0..200).map(|n| signal_record(0, n)).collect();
    let state = fold_signals(records).expect("state");
    assert_eq!(state.next, [199, -1, 0]);
    assert_eq!(state.skus.len(), 196);
}
