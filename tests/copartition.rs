//! The engine refuses input topics that are missing or not co-partitioned, with a clear error, and
//! instances starting together share the changelog one of them creates.

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

/// Instances of one group starting together all find or create the changelog: one creates it,
/// the others lose the race on the broker and must not fail their start for it.
#[test]
fn instances_starting_together_all_get_the_changelog() {
    let topics = Topics::create("changelog-race", 2);
    let settings = settings(&topics);
    let changelog = unique("race-changelog");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| trendcast::kafka::ensure_changelog(&settings.kafka, &changelog, 2)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for r in results {
        r.expect("every instance has the changelog");
    }
    assert_eq!(
        trendcast::kafka::partition_count(&settings.kafka, &changelog).expect("exists"),
        2
    );
}
