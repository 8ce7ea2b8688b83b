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

use super::calibration::CalibrationTable;
use super::distribution::{mean_from_quantiles, Coherent, DistributionRule, Total};
use super::model::{BatchForecast, Model, ModelError};
use super::online::{OnlineLayer, OnlineRow};
use super::trend::{recent_level, RowForecast, TrendConfig, TrendRule};
use super::{ScoringBacklog, ScoringSettings};
use crate::publish::encode::{EncodedLabels, RowValues, TotalValues, UpdateEncoder};
use crate::publish::{
    HorizonStep, HorizonTotal, MessageKind, Publisher, TrendUpdate, SCHEMA_HEADER,
    TREND_UPDATE_SCHEMA,
};
use crate::telemetry::EngineStats;
use crate::vocab::EngineMs;
use crate::window::{rfc3339, BucketIndex, Feature, ScoreDecision, WindowStore};

/// Batches copied per call of `copy_ready` (and scored before the loop reads the channel again).
pub const BATCHES_PER_TURN: usize = 16;

/// Header on trend updates: producer create time (epoch ms) of the input event whose arrival
/// closed the bucket the update is for. `now − header` is the event→update latency.
pub const TRIGGER_HEADER: &str = "trendcast-trigger-created-ms";

/// Messages to the scorer.
#[derive(Debug)]
pub enum ScorerMsg {
    /// `sku` has unscored changes from bucket `from` on.
    Dirty(Arc<str>, BucketIndex),
    /// Take every SKU whose bucket has closed (with `force`, throttled ones too, ignoring
    /// `min_rescore_interval`), walking each forward bucket by bucket, then acknowledge at
    /// `until`. Ingest sends it before a bucket closes (so no bucket is skipped; `Copied`) and
    /// before a checkpoint (`Published`).
    Flush {
        /// Acknowledged once nothing closed is left to take, at `until`.
        ack: SyncSender<()>,
        /// Also score throttled SKUs now.
        force: bool,
        /// How far the closed windows must have gone before the acknowledgement.
        until: FlushPoint,
    },
}

/// How far a [`ScorerMsg::Flush`] waits.
///
/// The close barrier only has to keep ingest from sliding a ring past a bucket that a window
/// not yet copied still needs; once every closed window is copied into the scorer's input,
/// ingest may go on while the model runs, the updates are encoded and handed to the producer.
/// A checkpoint needs more: every update the saved state counts as made must be with the
/// producer before the producer is flushed and the offsets are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPoint {
    /// Every closed window has been copied for scoring.
    Copied,
    /// Every closed window has been scored and its update handed to the publisher.
    Published,
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
    /// How each row's outputs become one distribution (`scoring/distribution.rs`).
    distribution: DistributionRule,
    /// The online interval calibration (`scoring/online.rs`).
    online: OnlineLayer,
    /// When the coverage gauges were last set.
    metrics_at: Instant,
    observer: Option<UpdateObserver>,
    /// Published for ingest's backpressure.
    backlog: ScoringBacklog,
    clock: Instant,
    /// SKUs waiting for bucket `key` to close.
    pending: BTreeMap<BucketIndex, Vec<Arc<str>>>,
    /// The newest closed bucket `collect_ready` has moved SKUs to the ready queue for.
    collected_close: Option<BucketIndex>,
    /// SKUs throttled until an engine-clock time.
    deferred: BinaryHeap<Reverse<(EngineMs, Arc<str>)>>,
    /// SKUs whose bucket has closed, waiting to be scored (duplicates are harmless: a second
    /// look finds the SKU clean).
    ready: VecDeque<Arc<str>>,
    /// Windows copied for scoring, one row of `window_values` each, up to
    /// [`BATCHES_PER_TURN`] batches: a snapshot, so ingest may slide the rings once it is taken.
    input: Vec<f32>,
    /// The copied rows: SKU, sequence number, scored bucket.
    batch: Vec<(Arc<str>, u64, BucketIndex)>,
    /// Force the next scorings past the throttle (a forced flush is waiting).
    force: bool,
    /// Flushes waiting for an acknowledgement, with how far each waits.
    waiting: Vec<(SyncSender<()>, FlushPoint)>,
    units_slot: usize,
    /// Quantile levels as output keys ("0.1", "0.5", ...).
    level_keys: Vec<String>,
    /// `name@version`.
    model_id: String,
    /// Writes each update's JSON from the model output (the fast path; see `publish::encode`).
    encoder: UpdateEncoder,
    /// The JSON of the update being published, reused across updates.
    payload: Vec<u8>,
    /// The latest row's window units, reused across rows.
    units: Vec<f32>,
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
    /// A trend update could not be encoded as JSON.
    #[error("a trend update could not be encoded")]
    Encode(#[from] serde_json::Error),
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
        trend: TrendConfig,
        observer: Option<UpdateObserver>,
        backlog: ScoringBacklog,
        calibration: CalibrationTable,
    ) -> Result<Self, ScorerError> {
        let trend = TrendRule::for_model(&trend, &model.manifest().manifest);
        let width = store.spec().width_ms().max(1) as u128;
        let lead = settings
            .lead_time
            .map(|d| d.as_millis().div_ceil(width) as usize);
        let m = &model.manifest().manifest;
        let distribution = DistributionRule::for_model(m, trend, lead);
        let online = OnlineLayer::new(
            settings.online,
            &m.quantiles,
            distribution.median_index(),
            m.horizon,
            calibration,
        );
        crate::scoring::online::register_gauges(m.horizon);
        let per = model.window_values();
        let units_slot = model
            .manifest()
            .features
            .iter()
            .position(|f| *f == Feature::Units)
            .unwrap_or(0);
        let level_keys: Vec<String> = model
            .manifest()
            .manifest
            .quantiles
            .iter()
            .map(f64::to_string)
            .collect();
        let model_id = model.manifest().manifest.id();
        let encoder = UpdateEncoder::new(&model_id, &level_keys)?;
        Ok(Self {
            level_keys,
            model_id,
            encoder,
            payload: Vec::new(),
            units: Vec::new(),
            distribution,
            online,
            metrics_at: Instant::now(),
            input: Vec::with_capacity(per * settings.batch_size * BATCHES_PER_TURN),
            batch: Vec::with_capacity(settings.batch_size * BATCHES_PER_TURN),
            store,
            model,
            publisher,
            output_topic,
            stats,
            settings,
            observer,
            backlog,
            clock: Instant::now(),
            pending: BTreeMap::new(),
            ready: VecDeque::new(),
            deferred: BinaryHeap::new(),
            collected_close: None,
            units_slot,
            force: false,
            waiting: Vec::new(),
        })
    }

    /// The engine clock's reading: milliseconds since this scorer started (see [`EngineMs`]).
    fn now(&self) -> EngineMs {
        EngineMs::from_millis(self.clock.elapsed().as_millis() as i64)
    }

    fn enqueue(&mut self, sku: Arc<str>, from: BucketIndex) {
        self.pending.entry(from).or_default().push(sku);
    }

    /// Runs until every sender of `rx` is gone, then scores what is ready and returns.
    ///
    /// Each turn copies at most [`BATCHES_PER_TURN`] batches of windows off the ready queue,
    /// acknowledges the flushes that wait only for the copy, scores the copies, and reads the
    /// channel again. It publishes the queue's length as the scoring backlog: ingest pauses its
    /// partitions while the backlog is too long.
    pub fn run(mut self, rx: Receiver<ScorerMsg>) -> Result<(), ScorerError> {
        let mut disconnected = false;
        loop {
            // a refused update stops the engine now, not at the next update
            self.publisher.check_refused()?;
            if !disconnected {
                let wait = if self.ready.is_empty() {
                    self.settings.batch_delay
                } else {
                    Duration::ZERO
                };
                match rx.recv_timeout(wait) {
                    Ok(msg) => {
                        self.accept(msg);
                        self.drain(&rx);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => disconnected = true,
                }
            }
            self.copy_closed();
            self.score_copied(&rx)?;
            // throttles may have run out meanwhile
            self.collect_ready();
            self.backlog.set(self.ready.len());
            self.backlog.set_throttled(self.deferred.len());
            self.backlog.set_collected_close(self.collected_close);
            self.stats.set_scoring_backlog(self.ready.len());
            if self.ready.is_empty() {
                self.force = false;
                self.acknowledge(FlushPoint::Published);
                if disconnected {
                    return Ok(());
                }
            }
        }
    }

    /// Accepts every message already waiting (none of them blocks).
    fn drain(&mut self, rx: &Receiver<ScorerMsg>) {
        while let Ok(msg) = rx.try_recv() {
            self.accept(msg);
        }
    }

    /// Copies the windows of closed SKUs and, once no closed SKU is left uncopied, releases the
    /// close barriers waiting for that.
    fn copy_closed(&mut self) {
        // copy_ready collects what has closed whenever its queue runs dry, so first too
        self.copy_ready();
        // a full copy may leave closed SKUs queued: only an empty queue means all are copied
        self.collect_ready();
        if self.ready.is_empty() {
            self.acknowledge(FlushPoint::Copied);
        }
    }

    /// Acknowledges the flushes waiting for `point` (a `Published` flush is also past `Copied`).
    fn acknowledge(&mut self, point: FlushPoint) {
        self.waiting.retain(|(ack, until)| {
            let reached = *until == point || point == FlushPoint::Published;
            if reached {
                // a waiter that gave up has dropped its receiver: nothing to tell it
                let _ = ack.send(());
            }
            !reached
        });
    }

    fn accept(&mut self, msg: ScorerMsg) {
        match msg {
            ScorerMsg::Dirty(sku, from) => self.enqueue(sku, from),
            ScorerMsg::Flush { ack, force, until } => {
                if force {
                    self.force = true;
                    while let Some(Reverse((_, sku))) = self.deferred.pop() {
                        self.ready.push_back(sku);
                    }
                }
                self.waiting.push((ack, until))
            }
        }
    }

    /// Moves SKUs whose pending bucket has closed, or whose throttle has expired, to the ready queue.
    fn collect_ready(&mut self) {
        let Some(closed) = self.store.clock().closed_index() else {
            return;
        };
        self.collected_close = Some(closed);
        let now = self.now();
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

    /// Copies the windows of ready SKUs into `input` (after the rows already there), walking each
    /// forward bucket by bucket, until the ready queue is empty or [`BATCHES_PER_TURN`] more
    /// batches are copied.
    fn copy_ready(&mut self) {
        let Some(mut closed) = self.store.clock().closed_index() else {
            return;
        };
        let mut now = self.now();
        let min_interval = self.settings.min_rescore_interval.as_millis() as i64;
        let per = self.model.window_values();
        let limit = self.batch.len() + self.settings.batch_size * BATCHES_PER_TURN;
        while self.batch.len() < limit {
            let Some(sku) = self.ready.pop_front() else {
                // walking forward re-queues SKUs at buckets that may already be closed; what is
                // collected now is judged by the clock and the close that let it through (never
                // older ones, or a SKU could bounce between the queues)
                self.collect_ready();
                now = self.now();
                closed = self.store.clock().closed_index().unwrap_or(closed);
                if self.ready.is_empty() {
                    break;
                }
                continue;
            };
            let slot = self.batch.len() * per;
            self.input.resize(slot + per, 0.0);
            let features = &self.model.manifest().features;
            let (decision, still_dirty) = self.store.prepare(
                &sku,
                closed,
                now,
                min_interval,
                self.force,
                features,
                &mut self.input[slot..slot + per],
            );
            match decision {
                ScoreDecision::Score { at, seq } => {
                    if let Some(from) = still_dirty {
                        self.enqueue(sku.clone(), from);
                    }
                    self.batch.push((sku, seq, at));
                }
                ScoreDecision::Defer { retry_at } => self.deferred.push(Reverse((retry_at, sku))),
                ScoreDecision::Clean => {
                    if let Some(from) = still_dirty {
                        self.enqueue(sku, from);
                    }
                }
            }
        }
        self.input.truncate(self.batch.len() * per);
    }

    /// Scores the copied windows, `batch_size` rows at a time, and publishes their updates.
    /// Between batches it reads the channel: a close barrier that arrives meanwhile needs only
    /// the newly closed windows copied (appended to the rows), not these scored.
    fn score_copied(&mut self, rx: &Receiver<ScorerMsg>) -> Result<(), ScorerError> {
        let per = self.model.window_values();
        let limit = self.settings.batch_size * BATCHES_PER_TURN;
        let mut start = 0;
        while start < self.batch.len() {
            let n = self.settings.batch_size.min(self.batch.len() - start);
            self.score_batch(start, n)?;
            start += n;
            if start >= limit {
                // drop the scored rows so that a long run of closes does not grow the copy
                self.batch.drain(..start);
                self.input.drain(..start * per);
                start = 0;
            }
            self.drain(rx);
            if self.waiting.iter().any(|(_, u)| *u == FlushPoint::Copied) {
                self.copy_closed();
            }
            self.backlog
                .set(self.ready.len() + self.batch.len() - start);
        }
        self.batch.clear();
        self.input.clear();
        Ok(())
    }

    /// Scores copied rows `start..start + n` in one model call and publishes their updates.
    fn score_batch(&mut self, start: usize, n: usize) -> Result<(), ScorerError> {
        let started = Instant::now();
        let spec = self.store.spec();
        let per = self.model.window_values();
        let rows = start..start + n;
        let origin_days: Vec<f32> = self.batch[rows.clone()]
            .iter()
            .map(|(_, _, at)| crate::window::epoch_day(spec.start(at + 1)))
            .collect();
        let mut forecast =
            self.model
                .score(&self.input[start * per..(start + n) * per], &origin_days, n)?;
        self.stats.scored_batch(n, started.elapsed());
        self.fill_mean(&mut forecast, n);
        let batch = std::mem::take(&mut self.batch);
        // rows of one batch mostly share a bucket: format its labels once per run of rows
        let mut current: Option<(BucketIndex, BatchLabels, Option<i64>, Option<String>)> = None;
        for (i, (sku, seq, at)) in batch[rows].iter().enumerate() {
            if current.as_ref().is_none_or(|(b, ..)| b != at) {
                let trigger_ms = self.store.closes().trigger_of(*at);
                let trigger = trigger_ms.map(|ms| ms.to_string());
                current = Some((*at, self.labels(*at)?, trigger_ms, trigger));
            }
            let Some((_, labels, trigger_ms, trigger)) = current.as_ref() else {
                continue;
            };
            let coherent = self.cohere_row(start + i, i, sku, *at, &mut forecast);
            self.encode_row(i, sku, *seq, labels, &forecast, &coherent)?;
            let schema = (SCHEMA_HEADER, TREND_UPDATE_SCHEMA.as_bytes());
            let headers = Some(match trigger {
                Some(t) => crate::publish::headers(&[schema, (TRIGGER_HEADER, t.as_bytes())]),
                None => crate::publish::headers(&[schema]),
            });
            self.publisher.send(
                MessageKind::TrendUpdate {
                    trigger_ms: *trigger_ms,
                },
                &self.output_topic,
                Some(sku.as_bytes()),
                Some(&self.payload),
                headers,
            )?;
            if let Some(mut observer) = self.observer.take() {
                observer(&self.build_update(i, sku, *seq, labels, &forecast, coherent));
                self.observer = Some(observer);
            }
        }
        self.batch = batch;
        if self.metrics_at.elapsed() >= Duration::from_secs(1) {
            self.online.publish_metrics();
            self.metrics_at = Instant::now();
        }
        Ok(())
    }

    /// Gives a model without a mean output one (`distribution::mean_from_quantiles`), so that
    /// every update publishes a daily mean.
    fn fill_mean(&self, forecast: &mut BatchForecast, n: usize) {
        if forecast.mean.is_none() {
            let m = &self.model.manifest().manifest;
            let days = n * m.horizon * m.quantiles.len();
            let q = forecast.quantiles.get(..days).unwrap_or(&[]);
            forecast.mean = Some(mean_from_quantiles(&m.quantiles, q));
        }
    }

    /// Row `i`'s slices of a batch's outputs: `horizon × levels` quantiles and `horizon` means.
    fn row_outputs<'f>(&self, i: usize, forecast: &'f BatchForecast) -> RowOutputs<'f> {
        let m = &self.model.manifest().manifest;
        let per_out = m.horizon * m.quantiles.len();
        RowOutputs {
            quantiles: forecast
                .quantiles
                .get(i * per_out..(i + 1) * per_out)
                .unwrap_or(&[]),
            mean: forecast
                .mean
                .as_ref()
                .and_then(|v| v.get(i * m.horizon..(i + 1) * m.horizon)),
        }
    }

    /// Makes copied row `row` (row `i` of `forecast`) one distribution (docs/TRENDS.md), in
    /// place, then applies the online calibration; returns its trend and totals.
    fn cohere_row(
        &mut self,
        row: usize,
        i: usize,
        sku: &Arc<str>,
        at: BucketIndex,
        forecast: &mut BatchForecast,
    ) -> Coherent {
        let resolved = self.model.manifest();
        let m = &resolved.manifest;
        let nf = resolved.features.len();
        let per = self.model.window_values();
        let window = &self.input[row * per..(row + 1) * per];
        self.units.clear();
        self.units.extend(
            window
                .chunks_exact(nf)
                .map(|bucket| bucket[self.units_slot]),
        );
        let recent = recent_level(&self.units[m.window_len - m.horizon.min(m.window_len)..]);
        let per_out = m.horizon * m.quantiles.len();
        let BatchForecast {
            quantiles,
            mean,
            direction,
            p_up,
        } = forecast;
        let (Some(q), Some(mean)) = (
            quantiles.get_mut(i * per_out..(i + 1) * per_out),
            mean.as_mut()
                .and_then(|v| v.get_mut(i * m.horizon..(i + 1) * m.horizon)),
        ) else {
            return self
                .distribution
                .cohere(recent, &mut [], &mut [], &no_head());
        };
        let heads = RowForecast {
            direction: direction.as_ref().and_then(|d| d.get(i * 3..i * 3 + 3)),
            p_up: p_up.as_ref().and_then(|p| p.get(i).copied()),
            ..no_head()
        };
        let coherent = self.distribution.cohere(recent, q, mean, &heads);
        let online_row = OnlineRow {
            sku,
            partition: self.store.partition_of(sku).unwrap_or(0),
            at,
            units: &self.units,
            track: true,
        };
        self.online.apply(&online_row, q, mean, &coherent.total);
        coherent
    }

    /// Writes row `i`'s update into `self.payload`.
    fn encode_row(
        &mut self,
        i: usize,
        sku: &str,
        seq: u64,
        labels: &BatchLabels,
        forecast: &BatchForecast,
        coherent: &Coherent,
    ) -> Result<(), ScorerError> {
        let outputs = self.row_outputs(i, forecast);
        fn values(t: &Total) -> TotalValues<'_> {
            TotalValues {
                buckets: t.buckets,
                mean: t.mean,
                quantiles: &t.quantiles,
            }
        }
        let row = RowValues {
            sku,
            seq,
            quantiles: outputs.quantiles,
            mean: outputs.mean,
            trend: &coherent.trend,
            total: Some(values(&coherent.total)),
            lead_time_total: coherent.lead.as_ref().map(values),
        };
        Ok(self
            .encoder
            .encode(&mut self.payload, &labels.encoded, &row)?)
    }

    /// Row `i`'s update as a value, for the observer (the published bytes are its JSON).
    fn build_update(
        &self,
        i: usize,
        sku: &str,
        seq: u64,
        labels: &BatchLabels,
        forecast: &BatchForecast,
        coherent: Coherent,
    ) -> TrendUpdate {
        let nq = self.level_keys.len();
        let outputs = self.row_outputs(i, forecast);
        let horizon = outputs
            .quantiles
            .chunks_exact(nq)
            .zip(&labels.steps)
            .enumerate()
            .map(|(h, (row, (start, end)))| HorizonStep {
                start: start.clone(),
                end: end.clone(),
                quantiles: self.keyed(row),
                mean: outputs.mean.and_then(|v| v.get(h).copied()),
            })
            .collect();
        let total = |t: &Total| HorizonTotal {
            buckets: t.buckets,
            mean: t.mean,
            quantiles: self.keyed(&t.quantiles),
        };
        TrendUpdate {
            sku: sku.to_string(),
            as_of: labels.as_of.clone(),
            model: self.model_id.clone(),
            seq,
            horizon,
            total: Some(total(&coherent.total)),
            lead_time_total: coherent.lead.as_ref().map(total),
            trend: coherent.trend,
        }
    }

    /// Values in level order, keyed by their level's text.
    fn keyed(&self, values: &[f32]) -> std::collections::BTreeMap<String, f32> {
        self.level_keys
            .iter()
            .cloned()
            .zip(values.iter().copied())
            .collect()
    }
}

/// A row's model outputs without quantiles, mean or heads (the heads are filled in by the
/// caller).
fn no_head() -> RowForecast<'static> {
    RowForecast {
        levels: &[],
        quantiles: &[],
        mean: None,
        direction: None,
        p_up: None,
    }
}

/// One row's slices of a batch's outputs.
struct RowOutputs<'f> {
    quantiles: &'f [f32],
    mean: Option<&'f [f32]>,
}

/// Timestamps shared by every update of one batch (formatted once, not per SKU).
struct BatchLabels {
    as_of: String,
    steps: Vec<(String, String)>,
    /// The same, escaped once for the encoder.
    encoded: EncodedLabels,
}

impl Scorer {
    fn labels(&self, closed: BucketIndex) -> Result<BatchLabels, ScorerError> {
        let spec = self.store.spec();
        let horizon = self.model.manifest().manifest.horizon as i64;
        let as_of = rfc3339(spec.end(closed));
        let steps: Vec<(String, String)> = (1..=horizon)
            .map(|h| {
                (
                    rfc3339(spec.start(closed + h)),
                    rfc3339(spec.end(closed + h)),
                )
            })
            .collect();
        let encoded = EncodedLabels::new(&as_of, &steps)?;
        Ok(BatchLabels {
            as_of,
            steps,
            encoded,
        })
    }
}

/// Sends the scorer a [`ScorerMsg::Flush`] marker: take everything closed (with `force`,
/// throttled SKUs too) and answer on the returned receiver once everything queued before the
/// marker has gone as far as `until`. `None` when the scorer is gone. The caller decides how to
/// wait: in place ([`flush_scorer`]) or on later turns of its loop (the periodic checkpoint).
pub fn send_marker(
    tx: &std::sync::mpsc::Sender<ScorerMsg>,
    force: bool,
    until: FlushPoint,
) -> Option<std::sync::mpsc::Receiver<()>> {
    let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
    let msg = ScorerMsg::Flush {
        ack: ack_tx,
        force,
        until,
    };
    tx.send(msg).ok().map(|()| ack_rx)
}

/// Sends a marker ([`send_marker`]) and waits (up to `timeout`) for its answer. False when the
/// scorer is gone or did not answer in time.
pub fn flush_scorer(
    tx: &std::sync::mpsc::Sender<ScorerMsg>,
    force: bool,
    until: FlushPoint,
    timeout: Duration,
) -> bool {
    send_marker(tx, force, until).is_some_and(|answer| answer.recv_timeout(timeout).is_ok())
}
