//! One queue per input partition, read furthest behind in event time first.
//!
//! Why: buckets close by the event-time frontier, the slowest of the owned input partitions
//! (see `alignment`). librdkafka's consumer queue is one FIFO fed by every partition's fetches,
//! and against Tansu it hands the partitions over in long runs, one after another. Measured on
//! the load run's input (2,155,656 events, 4 partitions, `examples/partition_skew.rs`): reading
//! the consumer queue, 75 % of the messages arrived more than a day ahead of the frontier, and
//! the engine held them back or paused their partitions (`holdback`); each resume then needs a
//! rewind on Tansu, and the frontier moved in jumps that closed many days at once while ingest
//! waited for the scorer. Reading each partition from its own queue (librdkafka's
//! `rd_kafka_queue_get_partition`, rdkafka's `split_partition_queue`) and always from the one
//! furthest behind, fewer than 0.01 % arrived ahead, and the count-only read ran 2.1x as fast
//! (434,100 against 206,720 messages/s), as every partition's fetches fill their queues at once.
//!
//! A partition ahead of the hold line is not read at all: its messages wait in librdkafka's
//! bounded prefetch queue (`queued.min.messages`, `queued.max.messages.kbytes`), which stops
//! fetching when full. That is backpressure without a pause, so without the rewind a resume
//! costs on Tansu. The hold-back buffer and pausing stay for messages that still come through
//! the consumer queue (those fetched before a split, and any partition that could not be split).
//!
//! The queues are split in the rebalance callback, right after the assignment and before the
//! partitions' state is restored, so that hardly anything is fetched into the consumer queue
//! first (split after the restore, a 20,000-message test log had been prefetched whole, in
//! runs, and 75 % of it was held back). Order within a partition: what was fetched before its
//! split is on the consumer queue, and later messages go to its own, so after every split the
//! consumer queue is drained first (`draining`); a message read out of order anyway is a gap to
//! the offset guard, which rewinds. librdkafka keeps a split across fetch restarts (the queue is
//! marked as forwarded by the application, `RD_KAFKA_Q_F_FWD_APP`); splitting again after every
//! rebalance hands back the same librdkafka queue for a partition that stayed.
//!
//! Each queue holds a strong reference to the consumer, and the queues live in the consumer's
//! context (the rebalance callback splits them): [`PartitionQueues::clear`] must run before the
//! consumer can be dropped (`Ingest`'s `Drop` does it).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;

use super::consumer::IngestContext;
use super::event::Source;

/// An input (source, partition) pair.
pub type Pair = (Source, u16);

/// The split queues of the assigned input partitions.
#[derive(Default)]
pub struct PartitionQueues {
    queues: Vec<(Pair, PartitionQueue<IngestContext>)>,
    /// True from a split until the consumer queue came back empty: what it holds was fetched
    /// before the split and goes first.
    draining: bool,
}

impl PartitionQueues {
    /// True when no partition has its own queue (nothing assigned yet): read the consumer queue.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// True while the consumer queue still holds messages fetched before the last split: read
    /// it first.
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// The consumer queue came back empty: the partition queues are next.
    pub fn drained(&mut self) {
        self.draining = false;
    }

    /// Drops every queue (and with them their references to the consumer).
    pub fn clear(&mut self) {
        self.queues.clear();
    }

    /// Splits every assigned input partition into its own queue (after a rebalance). `pair_of`
    /// names the pair of a topic's partition (`None`: not an input topic).
    pub fn split(
        &mut self,
        consumer: &Arc<BaseConsumer<IngestContext>>,
        pair_of: impl Fn(&str, i32) -> Option<Pair>,
    ) {
        self.draining = true;
        // the old handles are dropped first: a new split of the same partition takes over
        // the same librdkafka queue, so nothing buffered in it is lost
        self.queues.clear();
        let assignment = match consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "assignment unknown: reading the consumer queue");
                return;
            }
        };
        for e in assignment.elements() {
            let Some(pair) = pair_of(e.topic(), e.partition()) else {
                continue;
            };
            match consumer.split_partition_queue(e.topic(), e.partition()) {
                Some(queue) => self.queues.push((pair, queue)),
                None => tracing::warn!(
                    topic = e.topic(),
                    partition = e.partition(),
                    "partition queue not split: read through the consumer queue"
                ),
            }
        }
        tracing::debug!(queues = self.queues.len(), "partition queues split");
    }

    /// The first message waiting in the queues of `order`, tried in that order without waiting
    /// and skipping the pairs in `empty`; each queue found empty is added to `empty`. A caller
    /// reading a batch passes the same `empty` for the whole batch, so a queue with nothing
    /// (an input with no traffic, a partition whose next fetch is in flight) is polled once per
    /// batch rather than before every message: each poll reads the clock twice and takes
    /// librdkafka's queue lock.
    pub fn poll_first(
        &self,
        order: &[Pair],
        empty: &mut Vec<Pair>,
    ) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        for pair in order {
            if empty.contains(pair) {
                continue;
            }
            let Some(queue) = self.queue(*pair) else {
                continue;
            };
            match queue.poll(Duration::ZERO) {
                Some(polled) => return Some(polled),
                None => empty.push(*pair),
            }
        }
        None
    }

    /// Waits up to `timeout` for a message of `pair`.
    pub fn wait(&self, pair: Pair, timeout: Duration) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        self.queue(pair)?.poll(timeout)
    }

    fn queue(&self, pair: Pair) -> Option<&PartitionQueue<IngestContext>> {
        self.queues.iter().find(|(p, _)| *p == pair).map(|(_, q)| q)
    }
}
