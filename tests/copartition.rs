//! The engine refuses input topics that are missing or not co-partitioned, with a clear error.

mod common;

use common::*;
use trendcast::engine::RunningEngine;

#[test]
fn mismatched_partition_counts_are_refused() {
    let topics = Topics::new("copart");
    create_topics(
        &brokers(),
        &[
            (&topics.sales, 2),
            (&topics.clicks, 3),
            (&topics.output, 2),
            (&topics.dead_letter, 1),
        ],
    );
    let err = RunningEngine::start(&settings(&topics), None)
        .err()
        .expect("must refuse");
    let text = err.to_string();
    assert!(
        text.contains("has 2 partitions") && text.contains("has 3"),
        "{text}"
    );
    assert!(text.contains("co-partitioned"), "{text}");
}

#[test]
fn a_missing_input_topic_is_named() {
    let topics = Topics::new("copart-missing");
    create_topics(
        &brokers(),
        &[
            (&topics.sales, 2),
            (&topics.output, 2),
            (&topics.dead_letter, 1),
        ],
    );
    let err = RunningEngine::start(&settings(&topics), None)
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains(&topics.clicks), "{err}");
}
