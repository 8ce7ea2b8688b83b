//! Wiring: builds the components from [`Settings`] and runs them on their threads.
//!
//! ```text
//!  sales ─┐                         ┌─> scorer thread ──(batches)──> ONNX Runtime
//!         ├─> ingest thread ──> WindowStore (dashmap)        │
//!  clicks ┘        │   (Dirty sku) ─────┘                     └─> Publisher ──> trend-updates
//!                  └─(rejects)──────────────────────────────────> Publisher ──> dead-letter
//! ```
//!
//! Start-up fails fast (before any thread starts) on a missing ONNX Runtime library, a manifest
//! that does not fit the configuration, a model that does not match its manifest, or input
//! topics that are missing or not co-partitioned.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{OutputFormat, Settings};
use crate::ingest::{Ingest, IngestError};
use crate::publish::{
    OutputFrame, PublishError, Publisher, SchemaRegistry, HOT_PRODUCTS, NEW_PRODUCT_FORECAST,
    RESTOCK_SIGNAL, TREND_UPDATE,
};
use crate::scoring::calibration::CalibrationTable;
use crate::scoring::scorer::ScorerError;
use crate::scoring::{
    flush_scorer, FlushPoint, ManifestError, Model, ModelError, ResolvedManifest, Scorer,
    ScorerMsg, ScoringBacklog, UpdateObserver,
};
use crate::signals::processor::SignalStats;
use crate::signals::{Signals, SignalsError};
use crate::telemetry::{EngineStats, Health, LatencySamples};
use crate::window::WindowStore;

/// Errors starting or stopping the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model manifest was refused.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The producer could not be created.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Ingest failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The scorer failed.
    #[error(transparent)]
    Scorer(#[from] ScorerError),
    /// The input topics are missing or not co-partitioned.
    #[error(transparent)]
    Topics(#[from] crate::kafka::TopicError),
    /// The signals component failed.
    #[error(transparent)]
    Signals(#[from] crate::signals::SignalsError),
    /// The output schemas could not be registered (`[schema_registry] frame_outputs`).
    #[error("the schema registry could not be used")]
    Registry(#[from] crate::publish::RegistryError),
    /// An output's Avro schema does not parse (`[schema_registry] output_format = "avro"`).
    #[error(transparent)]
    OutputSchema(#[from] crate::publish::avro::AvroEncodeError),
    /// A thread could not be started or panicked.
    #[error("engine thread {0} failed")]
    Thread(&'static str),
}

/// A running engine: an ingest thread and a scorer thread sharing one window store.
pub struct RunningEngine {
    stop: Arc<AtomicBool>,
    ingest: Option<JoinHandle<Result<(), IngestError>>>,
    scorer: Option<JoinHandle<Result<(), ScorerError>>>,
    signals: Option<JoinHandle<Result<(), SignalsError>>>,
    signal_stats: Option<Arc<SignalStats>>,
    scorer_tx: Option<Sender<ScorerMsg>>,
    store: Arc<WindowStore>,
    stats: Arc<EngineStats>,
    publisher: Publisher,
    model_id: String,
    provider: &'static str,
    health: Arc<Health>,
    backlog: ScoringBacklog,
}

/// Loads and checks the model named by `settings` (without starting anything else).
pub fn load_model(settings: &Settings) -> Result<Model, EngineError> {
    let manifest = ResolvedManifest::load(&settings.scoring.manifest, &settings.window)?;
    Ok(Model::load(manifest, &settings.scoring)?)
}

/// Checks that the inputs are co-partitioned (and not too many) and that the changelog fits them,
/// creating it when missing.
fn check_topics(settings: &Settings) -> Result<(), EngineError> {
    let partitions = crate::kafka::check_copartitioned(&settings.kafka)?;
    tracing::info!(partitions, "input topics are co-partitioned");
    if partitions > usize::from(u16::MAX) {
        return Err(EngineError::Topics(crate::kafka::TopicError {
            topic: settings.kafka.sales_topic.clone(),
            reason: format!(
                "{partitions} partitions; at most {} are supported",
                u16::MAX
            ),
        }));
    }
    if let Some(topic) = &settings.checkpoint.changelog_topic {
        crate::kafka::ensure_changelog(&settings.kafka, topic, partitions)?;
    }
    Ok(())
}

/// The signals component, when configured: created before any thread starts, so a refused
/// signals setup leaves nothing running.
fn signals_component(
    settings: &Settings,
    publisher: &Publisher,
) -> Result<Option<Signals>, EngineError> {
    let Some(s) = &settings.signals else {
        return Ok(None);
    };
    let component = Signals::new(
        &settings.kafka,
        s.clone(),
        settings.checkpoint.dir.as_deref(),
        publisher.clone(),
    )?
    .read_avro_through(input_registry(settings)?);
    Ok(Some(component))
}

/// The registry Avro input values are read through, when `[schema_registry] url` is set.
fn input_registry(settings: &Settings) -> Result<Option<SchemaRegistry>, EngineError> {
    let Some(r) = settings.schema_registry.as_ref() else {
        return Ok(None);
    };
    Ok(Some(r.client()?))
}

/// Registers the schema of every output topic this engine publishes to under `<topic>-value`
/// (`crate::publish::registry`), its JSON Schema or its Avro form by `output_format`, and
/// returns how each topic's values are framed; nothing when outputs are not framed.
fn register_outputs(settings: &Settings) -> Result<HashMap<String, OutputFrame>, EngineError> {
    let Some(r) = settings
        .schema_registry
        .as_ref()
        .filter(|r| r.frame_outputs)
    else {
        return Ok(HashMap::new());
    };
    let registry = r.client()?;
    let mut outputs = vec![(settings.kafka.output_topic.clone(), TREND_UPDATE)];
    if let Some(s) = &settings.signals {
        outputs.push((s.restock_topic.clone(), RESTOCK_SIGNAL));
        outputs.push((s.new_product_topic.clone(), NEW_PRODUCT_FORECAST));
        if let Some(hot) = &s.hot_topic {
            outputs.push((hot.clone(), HOT_PRODUCTS));
        }
    }
    let mut frames = HashMap::new();
    for (topic, schema) in outputs {
        let subject = format!("{topic}-value");
        let (schema_id, avro) = match r.output_format {
            OutputFormat::Json => (registry.register_json(&subject, schema.text)?, None),
            OutputFormat::Avro => {
                let parsed = crate::publish::avro::parse(schema.name, schema.avro)?;
                let id = registry.register_avro(&subject, schema.avro)?;
                (id, Some(Arc::new(parsed)))
            }
        };
        tracing::info!(
            subject,
            id = schema_id,
            schema = schema.header,
            format = ?r.output_format,
            "output schema registered"
        );
        frames.insert(topic, OutputFrame { schema_id, avro });
    }
    Ok(frames)
}

/// Starts engine thread `name` ("trendcast-<name>") running `work`, marked running in `health`
/// until `work` returns or panics.
fn spawn<T: Send + 'static>(
    name: &'static str,
    health: &Arc<Health>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, EngineError> {
    let health = health.clone();
    std::thread::Builder::new()
        .name(format!("trendcast-{name}"))
        .spawn(move || {
            let _running = health.thread_running(name);
            work()
        })
        .map_err(|_| EngineError::Thread(name))
}

impl RunningEngine {
    /// Loads the model, creates the clients and starts the threads.
    pub fn start(
        settings: &Settings,
        observer: Option<UpdateObserver>,
    ) -> Result<Self, EngineError> {
        Self::start_with_health(settings, observer, Arc::new(Health::new()))
    }

    /// [`Self::start`], recording liveness and readiness in `health` (which the caller may
    /// already serve, so probes answer while the model loads).
    pub fn start_with_health(
        settings: &Settings,
        observer: Option<UpdateObserver>,
        health: Arc<Health>,
    ) -> Result<Self, EngineError> {
        let model = load_model(settings)?;
        check_topics(settings)?;
        let model_id = model.manifest().manifest.id();
        let provider = model.provider();
        let stats = Arc::new(EngineStats::new());
        let store = Arc::new(WindowStore::new(settings.window.clone()));
        let frames = register_outputs(settings)?;
        let publisher = Publisher::new(&settings.kafka, stats.clone())?.framed(&frames);
        let signals = signals_component(settings, &publisher)?;
        let (scorer_tx, scorer_rx) = channel();
        let backlog = ScoringBacklog::default();
        let calibration = CalibrationTable::default();
        let ingest = Ingest::new(
            &settings.kafka,
            settings.validation.clone(),
            settings.backpressure,
            settings.idle_partition_hold,
            settings.checkpoint.clone(),
            store.clone(),
            publisher.clone(),
            stats.clone(),
            health.clone(),
            scorer_tx.clone(),
            backlog.clone(),
            input_registry(settings)?,
            calibration.clone(),
        )?;
        let scorer = Scorer::new(
            store.clone(),
            model,
            publisher.clone(),
            settings.kafka.output_topic.clone(),
            stats.clone(),
            settings.scoring.clone(),
            settings.trend,
            observer,
            backlog.clone(),
            calibration,
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let scorer = spawn("scorer", &health, move || scorer.run(scorer_rx))?;
        let ingest_stop = stop.clone();
        let ingest = spawn("ingest", &health, move || ingest.run(&ingest_stop))?;
        let (signals, signal_stats) = match signals {
            Some(component) => {
                let stats = component.stats();
                let signals_stop = stop.clone();
                let handle = spawn("signals", &health, move || component.run(&signals_stop))?;
                (Some(handle), Some(stats))
            }
            None => (None, None),
        };
        tracing::info!(model = %model_id, provider, signals = signals.is_some(), "engine started");
        Ok(Self {
            stop,
            ingest: Some(ingest),
            scorer: Some(scorer),
            signals,
            signal_stats,
            scorer_tx: Some(scorer_tx),
            store,
            stats,
            publisher,
            model_id,
            provider,
            health,
            backlog,
        })
    }

    /// Windows ready but not yet scored, as the scorer last published it.
    pub fn scoring_backlog(&self) -> usize {
        self.backlog.get()
    }

    /// Liveness and readiness, as the health probes report them.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Window state.
    pub fn store(&self) -> &Arc<WindowStore> {
        &self.store
    }

    /// `name@version` of the model.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Execution provider in use.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// From now on, keeps each trend update's latency for a load test to read back (see
    /// [`LatencySamples`]; the same recorder on every call).
    pub fn keep_latency_samples(&self) -> Arc<LatencySamples> {
        self.publisher.keep_latency_samples()
    }

    /// Messages the producer has not had acknowledged yet.
    pub fn publisher_in_flight(&self) -> i32 {
        self.publisher.in_flight()
    }

    /// Counters of the signals component, when it runs.
    pub fn signal_stats(&self) -> Option<&Arc<SignalStats>> {
        self.signal_stats.as_ref()
    }

    /// The first of the engine's threads found to have exited, by name ("ingest", "scorer",
    /// "signals"); `None` while all run. Threads exit only at shutdown, so any exit before it is
    /// a failure; [`Self::shutdown`] then returns its error.
    pub fn exited_thread(&self) -> Option<&'static str> {
        fn finished<T>(h: &Option<JoinHandle<T>>) -> bool {
            h.as_ref().is_some_and(|h| h.is_finished())
        }
        if finished(&self.ingest) {
            Some("ingest")
        } else if finished(&self.scorer) {
            Some("scorer")
        } else if finished(&self.signals) {
            Some("signals")
        } else {
            None
        }
    }

    /// True once a thread has exited (on error or panic).
    pub fn has_failed(&self) -> bool {
        self.exited_thread().is_some()
    }

    /// Ends a finite replay: closes every bucket, scores what that makes ready, and waits for
    /// the broker to acknowledge everything published.
    pub fn finish_replay(&self, timeout: Duration) -> Result<(), EngineError> {
        self.store.clock().flush();
        if let Some(tx) = &self.scorer_tx {
            if !flush_scorer(tx, false, FlushPoint::Published, timeout) {
                return Err(EngineError::Thread("scorer"));
            }
        }
        self.publisher.flush(timeout)?;
        Ok(())
    }

    /// Stops consuming, lets the scorer score what is ready, flushes the producer and joins.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), EngineError> {
        self.stop.store(true, Ordering::Release);
        let ingest = self.ingest.take().map(|h| h.join());
        self.scorer_tx.take();
        let scorer = self.scorer.take().map(|h| h.join());
        let signals = self.signals.take().map(|h| h.join());
        let flushed = self.publisher.flush(timeout);
        match ingest {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(EngineError::Thread("ingest")),
            None => {}
        }
        match scorer {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(EngineError::Thread("scorer")),
            None => {}
        }
        match signals {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(EngineError::Thread("signals")),
            None => {}
        }
        flushed?;
        Ok(())
    }
}

impl Drop for RunningEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.scorer_tx.take();
        if let Some(h) = self.ingest.take() {
            let _ = h.join();
        }
        if let Some(h) = self.scorer.take() {
            let _ = h.join();
        }
        if let Some(h) = self.signals.take() {
            let _ = h.join();
        }
    }
}
