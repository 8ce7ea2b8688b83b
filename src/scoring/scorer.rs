//! The scorer thread: decides which SKUs to score, batches their windows, runs the model and
//! hands trend updates to the publisher.
//!
//! It runs on its own OS thread, never on the async reactor: a model call is CPU work that can
//! take milliseconds. Ingest tells it which SKUs changed (and from which bucket) over a channel;
//! the scorer keeps them in a queue ordered by bucket and takes a SKU once that bucket has
//! closed. A SKU is scored at most once per `min_rescore_interval` within one closed bucket
//! (late updates), and always when a bucket it has data in closes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::{BatchForecast, Model, ModelError};
use super::trend::{derive, TrendSettings};
use super::ScoringSettings;
use crate::publish::{HorizonStep, MessageKind, Publisher, TrendUpdate};
use crate::telemetry::EngineStats;
use crate::window::{rfc3339, BucketIndex, Feature, ScoreDecision, WindowStore};

/// Batches scored per turn of the loop before the channel is read again.
pub const BATCHES_PER_TURN: usize = 4;

/// Header on trend updates: producer create time (epoch ms) of the input event whose arrival
/// closed the bucket the update is for. `now − header` is the event→update latency.
pub const TRIGGER_HEADER: &str = "trendcast-trigger-created-ms";

/// Messages to the scorer.
#[derive(Debug)]
pub enum ScorerMsg {
    /// `sku` has unscored changes from bucket `from` on.
    Dirty(Arc<str>, BucketIndex),
    /// Score everything that is ready now, then acknowledge.
    Flush(SyncSender<()>),
    /// A bucket closed: wake up and score what it made ready.
    Closed,
}

/// Receives every published update (used by the demo's live table and by tests).
pub type UpdateObserver = Box<dyn FnMut(&TrendUpdate) + Send>;

/// The scoring loop's state.
pub struct Scorer {
    store: Arc<WindowStore>,
    model: Model,
    publisher: Publisher,
    output_topic: String,
    stats: Arc<EngineStats>,
    settings: ScoringSettings,
    trend: TrendSettings,
    observer: Option<UpdateObserver>,
    clock: Instant,
    /// SKUs waiting for bucket `key` to close.
    pending: BTreeMap<BucketIndex, Vec<Arc<str>>>,
    /// SKUs throttled until an engine-clock time.
    deferred: BinaryHeap<Reverse<(i64, Arc<str>)>>,
    /// SKUs whose bucket has closed, waiting to be scored (duplicates are harmless: a second
    /// look finds the SKU clean).
    ready: VecDeque<Arc<str>>,
    input: Vec<f32>,
    batch: Vec<(Arc<str>, u64)>,
    units_slot: usize,
    /// Quantile levels as output keys ("0.1", "0.5", ...).
    level_keys: Vec<String>,
    /// `name@version`.
    model_id: String,
}

/// Errors that stop the scorer.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The publisher refused a message.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

impl Scorer {
    /// A scorer over `store`, publishing to `output_topic`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<WindowStore>,
        model: Model,
        publisher: Publisher,
        output_topic: String,
        stats: Arc<EngineStats>,
        settings: ScoringSettings,
        trend: TrendSettings,
        observer: Option<UpdateObserver>,
    ) -> Self {
        let per = model.window_values();
        let units_slot = model
            .manifest()
            .features
            .iter()
            .position(|f| *f == Feature::Units)
            .unwrap_or(0);
        let level_keys = model
            .manifest()
            .manifest
            .quantiles
            .iter()
            .map(f64::to_string)
            .collect();
        let model_id = model.manifest().manifest.id();
        Self {
            level_keys,
            model_id,
            input: vec![0.0; per * settings.batch_size],
            batch: Vec::with_capacity(settings.batch_size),
            store,
            model,
            publisher,
            output_topic,
            stats,
            settings,
            trend,
            observer,
            clock: Instant::now(),
            pending: BTreeMap::new(),
            ready: VecDeque::new(),
            deferred: BinaryHeap::new(),
            units_slot,
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.elapsed().as_millis() as i64
    }

    fn enqueue(&mut self, sku: Arc<str>, from: BucketIndex) {
        self.pending.entry(from).or_default().push(sku);
    }

    /// Runs until every sender of `rx` is gone, then scores what is ready and returns.
    ///
    /// Each turn takes at most [`BATCHES_PER_TURN`] batches off the ready queue before reading the
    /// channel again, and publishes the queue's length as the scoring backlog: ingest pauses its
    /// partitions while the backlog is too long.
    pub fn run(mut self, rx: Receiver<ScorerMsg>) -> Result<(), ScorerError> {
        let mut flush_acks = Vec::new();
        let mut disconnected = false;
        loop {
            if !disconnected {
                let wait = if self.ready.is_empty() {
                    self.settings.batch_delay
                } else {
                    Duration::ZERO
                };
                match rx.recv_timeout(wait) {
                    Ok(msg) => {
                        self.accept(msg, &mut flush_acks);
                        while let Ok(msg) = rx.try_recv() {
                            self.accept(msg, &mut flush_acks);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => disconnected = true,
                }
            }
            self.collect_ready();
            self.score_some()?;
            self.stats.set_scoring_backlog(self.ready.len());
            if self.ready.is_empty() {
                for ack in flush_acks.drain(..) {
                    let _ = ack.send(());
                }
                if disconnected {
                    return Ok(());
                }
            }
        }
    }

    fn accept(&mut self, msg: ScorerMsg, acks: &mut Vec<SyncSender<()>>) {
        match msg {
            ScorerMsg::Dirty(sku, from) => self.enqueue(sku, from),
            ScorerMsg::Flush(ack) => acks.push(ack),
            ScorerMsg::Closed => {}
        }
    }

    /// Moves SKUs whose pending bucket has closed, or whose throttle has expired, to the ready queue.
    fn collect_ready(&mut self) {
        let Some(closed) = self.store.closed_index() else {
            return;
        };
        let now = self.now_ms();
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > closed {
                break;
            }
            self.ready.extend(entry.remove());
        }
        while let Some(Reverse((at, _))) = self.deferred.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, sku))) = self.deferred.pop() {
                self.ready.push_back(sku);
            }
        }
    }

    /// Scores up to [`BATCHES_PER_TURN`] batches from the ready queue.
    fn score_some(&mut self) -> Result<(), ScorerError> {
        let Some(closed) = self.store.closed_index() else {
            return Ok(());
        };
        let now = self.now_ms();
        let min_interval = self.settings.min_rescore_interval.as_millis() as i64;
        let per = self.model.window_values();
        let mut batches = 0;
        while batches < BATCHES_PER_TURN {
            let Some(sku) = self.ready.pop_front() else {
                break;
            };
            let slot = self.batch.len() * per;
            let features = &self.model.manifest().features;
            let (decision, still_dirty) = self.store.prepare(
                &sku,
                closed,
                now,
                min_interval,
                features,
                &mut self.input[slot..slot + per],
            );
            match decision {
                ScoreDecision::Score { seq } => {
                    if let Some(from) = still_dirty {
                        self.enqueue(sku.clone(), from);
                    }
                    self.batch.push((sku, seq));
                    if self.batch.len() == self.settings.batch_size {
                        self.score_batch(closed)?;
                        batches += 1;
                    }
                }
                ScoreDecision::Defer { retry_at_ms } => {
                    self.deferred.push(Reverse((retry_at_ms, sku)))
                }
                ScoreDecision::Clean => {
                    if let Some(from) = still_dirty {
                        self.enqueue(sku, from);
                    }
                }
            }
        }
        if !self.batch.is_empty() {
            self.score_batch(closed)?;
        }
        Ok(())
    }

    fn score_batch(&mut self, closed: BucketIndex) -> Result<(), ScorerError> {
        let n = self.batch.len();
        let started = Instant::now();
        let origin_day = crate::window::epoch_day(self.store.spec().start_ms(closed + 1));
        let origin_days = vec![origin_day; n];
        let forecast = self.model.score(&self.input, &origin_days, n)?;
        self.stats.scored_batch(n, started.elapsed());
        let batch = std::mem::take(&mut self.batch);
        let labels = self.labels(closed);
        let trigger_ms = self.store.close_trigger(closed);
        let trigger = trigger_ms.map(|ms| ms.to_string());
        for (i, (sku, seq)) in batch.iter().enumerate() {
            let update = self.build_update(i, sku, *seq, &labels, &forecast);
            let payload = serde_json::to_vec(&update).unwrap_or_default();
            let headers = trigger
                .as_ref()
                .map(|t| crate::publish::headers(&[(TRIGGER_HEADER, t.as_bytes())]));
            self.publisher.send(
                MessageKind::TrendUpdate { trigger_ms },
                &self.output_topic,
                Some(sku.as_bytes()),
                Some(&payload),
                headers,
            )?;
            if let Some(observer) = self.observer.as_mut() {
                observer(&update);
            }
        }
        self.batch = batch;
        self.batch.clear();
        Ok(())
    }

    fn build_update(
        &self,
        i: usize,
        sku: &str,
        seq: u64,
        labels: &BatchLabels,
        forecast: &BatchForecast,
    ) -> TrendUpdate {
        let resolved = self.model.manifest();
        let m = &resolved.manifest;
        let nf = resolved.features.len();
        let nq = m.quantiles.len();
        let per_out = m.horizon * nq;
        let q = &forecast.quantiles[i * per_out..(i + 1) * per_out];
        let window =
            &self.input[i * self.model.window_values()..(i + 1) * self.model.window_values()];
        let recent_len = m.horizon.min(m.window_len);
        let recent: Vec<f32> = window
            .chunks_exact(nf)
            .skip(m.window_len - recent_len)
            .map(|bucket| bucket[self.units_slot])
            .collect();
        let p_up = forecast.p_up.as_ref().and_then(|p| p.get(i).copied());
        let trend = derive(
            &self.trend,
            &recent,
            &m.quantiles,
            q,
            resolved.median_index,
            p_up,
        );
        let horizon = q
            .chunks_exact(nq)
            .zip(&labels.steps)
            .map(|(row, (start, end))| HorizonStep {
                start: start.clone(),
                end: end.clone(),
                quantiles: self
                    .level_keys
                    .iter()
                    .cloned()
                    .zip(row.iter().copied())
                    .collect(),
            })
            .collect();
        TrendUpdate {
            sku: sku.to_string(),
            as_of: labels.as_of.clone(),
            model: self.model_id.clone(),
            seq,
            horizon,
            trend,
        }
    }
}

/// Timestamps shared by every update of one batch (formatted once, not per SKU).
struct BatchLabels {
    as_of: String,
    steps: Vec<(String, String)>,
}

impl Scorer {
    fn labels(&self, closed: BucketIndex) -> BatchLabels {
        let spec = self.store.spec();
        let horizon = self.model.manifest().manifest.horizon as i64;
        BatchLabels {
            as_of: rfc3339(spec.end_ms(closed)),
            steps: (1..=horizon)
                .map(|h| {
                    (
                        rfc3339(spec.start_ms(closed + h)),
                        rfc3339(spec.end_ms(closed + h)),
                    )
                })
                .collect(),
        }
    }
}

/// Asks the scorer to score what is ready and waits for it (up to `timeout`).
pub fn flush_scorer(tx: &std::sync::mpsc::Sender<ScorerMsg>, timeout: Duration) -> bool {
    let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
    if tx.send(ScorerMsg::Flush(ack_tx)).is_err() {
        return false;
    }
    ack_rx.recv_timeout(timeout).is_ok()
}
