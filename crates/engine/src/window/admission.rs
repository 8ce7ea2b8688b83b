//! Admission of a decoded event into window state: the lateness rule, then the store. It lives
//! with the window state it guards, below ingest, so checkpoints and the offline tools use it
//! without depending on the Kafka consumer.
//!
//! Shared by the Kafka ingest loop and offline tools, so a log replayed offline lands in
//! exactly the same buckets as it would through Kafka.

use std::collections::HashMap;
use std::sync::Arc;

use super::{is_late, BucketIndex, StoreOutcome, WindowStore};
use crate::vocab::{Event, EventTime, RejectReason, Rejection, Source};

/// Applies events to a store, judging lateness per input partition.
#[derive(Debug)]
pub struct Admission {
    store: Arc<WindowStore>,
    /// Largest event time seen per (source, partition).
    watermarks: HashMap<(Source, i32), EventTime>,
}

impl Admission {
    /// Admission into `store`.
    pub fn new(store: Arc<WindowStore>) -> Self {
        Self {
            store,
            watermarks: HashMap::new(),
        }
    }

    /// The store events go into.
    pub fn store(&self) -> &Arc<WindowStore> {
        &self.store
    }

    /// Largest admitted event time of `source`'s `partition`.
    pub fn watermark(&self, source: Source, partition: i32) -> Option<EventTime> {
        self.watermarks.get(&(source, partition)).copied()
    }

    /// Sets the lateness state of one input partition (restoring a checkpoint).
    pub fn set_watermark(&mut self, source: Source, partition: i32, ts: EventTime) {
        if ts == EventTime::MIN {
            self.watermarks.remove(&(source, partition));
        } else {
            self.watermarks.insert((source, partition), ts);
        }
    }

    /// Applies `event` read from `partition` of `source`. On success returns the SKU and the
    /// bucket from which it now awaits scoring, when the scorer has to be told.
    pub fn admit(
        &mut self,
        source: Source,
        partition: i32,
        event: &Event<'_>,
    ) -> Result<Option<(Arc<str>, BucketIndex)>, Rejection> {
        self.judge(source, partition, event.ts)?;
        self.apply(partition, event)
    }

    /// The lateness rule alone: refuses an event whose bucket closed for its input partition,
    /// and otherwise advances that partition's event time.
    pub fn judge(
        &mut self,
        source: Source,
        partition: i32,
        ts: EventTime,
    ) -> Result<(), Rejection> {
        let settings = self.store.settings();
        let wm = self
            .watermarks
            .entry((source, partition))
            .or_insert(EventTime::MIN);
        if *wm != EventTime::MIN && is_late(settings.bucket, settings.lateness_ms, *wm, ts) {
            return Err(Rejection::new(
                RejectReason::Late,
                format!(
                    "event time {} ms is past its bucket's allowed lateness (partition event time {} ms)",
                    ts.millis(),
                    wm.millis()
                ),
            ));
        }
        *wm = (*wm).max(ts);
        Ok(())
    }

    /// Applies an event that passed [`Admission::judge`] to the store.
    pub fn apply(
        &self,
        partition: i32,
        event: &Event<'_>,
    ) -> Result<Option<(Arc<str>, BucketIndex)>, Rejection> {
        let tag = u16::try_from(partition).unwrap_or(u16::MAX);
        match self.store.apply(&event.sku, tag, event.ts, &event.body) {
            StoreOutcome::Applied { notify } => Ok(notify),
            StoreOutcome::Expired => Err(Rejection::new(
                RejectReason::Late,
                "the event's bucket has already left the SKU's window",
            )),
            StoreOutcome::Full => Err(Rejection::new(
                RejectReason::Capacity,
                "window.max_skus reached and no SKU could be evicted",
            )),
        }
    }
}
