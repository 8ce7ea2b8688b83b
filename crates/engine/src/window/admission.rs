//! Admission of a decoded event into window state: the lateness rule, then the store. It lives
//! with the window state it guards, below ingest, so checkpoints and the offline tools use it
//! without depending on the Kafka consumer.
//!
//! Shared by the Kafka ingest loop and offline tools, so a log replayed offline lands in
//! exactly the same buckets as it would through Kafka.

use std::collections::HashMap;
use std::sync::Arc;

use super::{is_late, BucketIndex, StoreOutcome, WindowStore};
use crate::vocab::{Event, RejectReason, Rejection, Source};

/// Applies events to a store, judging lateness per input partition.
#[derive(Debug)]
pub struct Admission {
    store: Arc<WindowStore>,
    /// Largest event time seen per (source, partition).
    watermarks: HashMap<(Source, i32), i64>,
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
    pub fn watermark(&self, source: Source, partition: i32) -> Option<i64> {
        self.watermarks.get(&(source, partition)).copied()
    }

    /// Sets the lateness state of one input partition (restoring a checkpoint).
    pub fn set_watermark(&mut self, source: Source, partition: i32, ts_ms: i64) {
        if ts_ms == i64::MIN {
            self.watermarks.remove(&(source, partition));
        } else {
            self.watermarks.insert((source, partition), ts_ms);
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
        self.judge(source, partition, event.ts_ms)?;
        self.apply(partition, event)
    }

    /// The lateness rule alone: refuses an event whose bucket closed for its input partition,
    /// and otherwise advances that partition's event time.
    pub fn judge(&mut self, source: Source, partition: i32, ts_ms: i64) -> Result<(), Rejection> {
        let settings = self.store.settings();
        let wm = self
            .watermarks
            .entry((source, partition))
            .or_insert(i64::MIN);
        if *wm != i64::MIN && is_late(settings.bucket, settings.lateness_ms, *wm, ts_ms) {
            return Err(Rejection::new(
                RejectReason::Late,
                format!(
                    "event time {ts_ms} ms is past its bucket's allowed lateness (partition event time {} ms)",
                    *wm
                ),
            ));
        }
        *wm = (*wm).max(ts_ms);
        Ok(())
    }

    /// Applies an event that passed [`Admission::judge`] to the store.
    pub fn apply(
        &self,
        partition: i32,
        event: &Event<'_>,
    ) -> Result<Option<(Arc<str>, BucketIndex)>, Rejection> {
        let tag = u16::try_from(partition).unwrap_or(u16::MAX);
        match self.store.apply(&event.sku, tag, event.ts_ms, &event.body) {
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
