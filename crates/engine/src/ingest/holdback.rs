//! Messages held back from input partitions that run ahead of the event-time frontier.
//!
//! Alignment (see `alignment`) must keep every partition within `lead` of the frontier, or
//! windows slide past buckets no close has reached. It first did so by pausing such partitions
//! in the consumer and resuming them once the frontier caught up. A replay reads a day of one
//! partition in milliseconds, so that meant a pause and a resume per partition per bucket, and
//! each resume starts a fetch inside one of the broker's record batches, which Tansu 0.6.0 does
//! not serve (docs/RELIABILITY.md): the offset guard had to rewind after every resume, and the
//! load run fell to 1,612 events/s.
//!
//! So, as Kafka Streams buffers records per partition and pauses a partition only when its
//! buffer is full (`buffered.records.per.partition`), a partition ahead of the frontier is held
//! here instead: its messages are kept in arrival order, unread by ingest, and handed back once
//! the frontier reaches it. Only when one partition's queue reaches [`HOLD_LIMIT`] is it paused in
//! the consumer. Memory: each held message keeps its own copy of payload, key and topic name.
//! Held messages are not applied, so the checkpointed offsets stay before them and a restart
//! reads them again: nothing is lost, and nothing is applied twice.

use std::collections::{HashMap, VecDeque};

use rdkafka::message::OwnedMessage;

use super::event::Source;

/// Messages held per (source, partition) before that partition is paused in the consumer; it
/// is resumed once its queue is down to half. librdkafka's own prefetch queue holds up to as
/// many per partition by default (`queued.min.messages`). 20,000 was tried first: in the
/// 2M-event load run the consumer delivered one partition's first message only after about
/// 400,000 of the others', so every partition overflowed, and each pause cost a rewind on Tansu
/// (23,837 events/s against 59,006 with this bound, one run each).
pub const HOLD_LIMIT: usize = 100_000;

/// Held messages per (source, partition), in arrival order.
#[derive(Debug, Default)]
pub struct HoldBack {
    queues: HashMap<(Source, u16), VecDeque<OwnedMessage>>,
    total: usize,
}

impl HoldBack {
    /// True when `key` has held messages (a new message must queue behind them).
    pub fn holding(&self, key: (Source, u16)) -> bool {
        self.queues.get(&key).is_some_and(|q| !q.is_empty())
    }

    /// Messages held in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Messages held for `key`.
    pub fn len(&self, key: (Source, u16)) -> usize {
        self.queues.get(&key).map_or(0, VecDeque::len)
    }

    /// Holds `msg` behind the others of `key`.
    pub fn push(&mut self, key: (Source, u16), msg: OwnedMessage) {
        self.queues.entry(key).or_default().push_back(msg);
        self.total += 1;
    }

    /// The oldest held message of `key`.
    pub fn pop(&mut self, key: (Source, u16)) -> Option<OwnedMessage> {
        let msg = self.queues.get_mut(&key)?.pop_front()?;
        self.total -= 1;
        Some(msg)
    }

    /// Pairs with held messages.
    pub fn keys(&self) -> Vec<(Source, u16)> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Drops what is held for revoked partitions (their new owner reads it from the committed
    /// offsets, which are before it).
    pub fn release(&mut self, partitions: &[u16]) {
        self.queues.retain(|(_, p), _| !partitions.contains(p));
        self.total = self.queues.values().map(VecDeque::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Message, Timestamp};

    fn msg(partition: i32, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            None,
            None,
            "sales".into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    #[test]
    fn keeps_arrival_order_per_pair_and_releases_revoked_partitions() {
        let mut h = HoldBack::default();
        let (a, b) = ((Source::Sales, 0), (Source::Sales, 1));
        assert!(!h.holding(a));
        h.push(a, msg(0, 5));
        h.push(b, msg(1, 9));
        h.push(a, msg(0, 6));
        assert_eq!((h.total(), h.len(a)), (3, 2));
        assert_eq!(h.pop(a).map(|m| m.offset()), Some(5));
        h.release(&[1]);
        assert_eq!(h.keys(), vec![a]);
        assert_eq!(h.total(), 1);
        assert_eq!(h.pop(a).map(|m| m.offset()), Some(6));
        assert!(h.pop(a).is_none());
        assert!(!h.holding(a));
    }
}
