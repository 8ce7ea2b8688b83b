//! Admission of a decoded event into window state: the lateness rule, then the store.
//!
//! Shared by the Kafka ingest loop and offline tools, so a log replayed offline lands in
//! exactly the same buckets as it would through Kafka.

use std::collections::HashMap;
use std::sync::Arc;

use super::event::{Event, RejectReason, Rejection, Source};
use crate::window::{is_late, BucketIndex, StoreOutcome, WindowStore};

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

    /// Applies `event` read from `partition` of `source`. On success returns the SKU and the
    /// bucket from which it now awaits scoring, when the scorer has to be told.
    pub fn admit(
        &mut self,
        source: Source,
        partition: i32,
        event: &Event<'_>,
    ) -> Result<Option<(Arc<str>, BucketIndex)>, Rejection> {
        let settings = self.store.settings();
        let wm = self
            .watermarks
            .entry((source, partition))
            .or_insert(i64::MIN);
        if *wm != i64::MIN && is_late(settings.bucket, settings.lateness_ms, *wm, event.ts_ms) {
            return Err(Rejection::new(
                RejectReason::Late,
                format!(
                    "event time {} ms is past its bucket's allowed lateness (partition event time {} ms)",
                    event.ts_ms, *wm
                ),
            ));
        }
        *wm = (*wm).max(event.ts_ms);
        match self.store.apply(&event.sku, event.ts_ms, &event.body) {
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
