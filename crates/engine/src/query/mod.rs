//! The query API: "what is the forecast for SKU X now?" over HTTP, without consuming a topic.
//!
//! Every instance keeps a global view of the output topics ([`view`]), fed by its own reader
//! ([`reader`]) that assigns every partition and never joins a group, and answers from it
//! ([`api`], with an OpenAPI 3.1 document in [`openapi`]). The alternative, routing each query
//! to the instance that owns the SKU's partition (Kafka Streams' interactive queries), keeps
//! less in memory but makes every answer depend on the group's current assignment and on a
//! second hop during rebalances; with one small message per SKU a full copy is cheap
//! (`docs/ARCHITECTURE.md`, "Query API"). It also lets `trendcast serve` run read-only replicas
//! that own no partitions at all.
//!
//! The service runs on two threads of its own: the reader, and a single-threaded tokio runtime
//! for the HTTP listener, so it behaves the same under `trendcast run`, `trendcast serve` and
//! the tests.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub mod api;
pub mod openapi;
pub mod reader;
pub mod view;

pub use reader::ReaderState;
pub use view::{LatestView, Output};

use crate::config::{RegistrySettings, Settings};
use crate::kafka::KafkaSettings;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The listen address could not be bound.
    #[error("query API cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("query API thread could not start: {0}")]
    Thread(std::io::Error),
    /// The schema registry client could not be made (its CA certificates).
    #[error(transparent)]
    Registry(#[from] crate::publish::RegistryError),
}

/// The output topics of `settings`, with what each holds.
pub fn output_topics(settings: &Settings) -> Vec<(String, Output)> {
    let mut topics = vec![(settings.kafka.output_topic.clone(), Output::Forecasts)];
    if let Some(s) = &settings.signals {
        topics.push((s.restock_topic.clone(), Output::Restock));
        topics.push((s.new_product_topic.clone(), Output::NewProducts));
        if let Some(t) = &s.hot_topic {
            topics.push((t.clone(), Output::HotProducts));
        }
        if let Some(t) = &s.catalog_topic {
            topics.push((t.clone(), Output::Catalog));
        }
    }
    topics
}

/// A running query API.
pub struct QueryService {
    addr: SocketAddr,
    view: LatestView,
    state: Arc<ReaderState>,
    stop: Arc<AtomicBool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl QueryService {
    /// Binds `listen`, starts the reader of `topics` (Avro catalog entries read through
    /// `registry`, when given) and serves the API.
    pub fn start(
        kafka: &KafkaSettings,
        topics: Vec<(String, Output)>,
        registry: Option<&RegistrySettings>,
        listen: SocketAddr,
    ) -> Result<Self, QueryError> {
        let registry = registry.map(RegistrySettings::client).transpose()?;
        let listener = TcpListener::bind(listen).map_err(|source| QueryError::Bind {
            addr: listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| QueryError::Bind {
            addr: listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| QueryError::Bind { addr, source })?;
        let view = LatestView::default();
        let state = Arc::new(ReaderState::default());
        let stop = Arc::new(AtomicBool::new(false));
        let outputs = topics.iter().map(|(_, o)| *o).collect();
        let reader = {
            let (kafka, view, state, stop) =
                (kafka.clone(), view.clone(), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("query-view".into())
                .spawn(move || {
                    if let Err(e) = reader::run(&kafka, topics, registry, &view, &state, &stop) {
                        tracing::error!(error = %e, "the query view's reader stopped");
                    }
                })
                .map_err(QueryError::Thread)?
        };
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(api::ApiState {
            view: view.clone(),
            reader: state.clone(),
            outputs,
        });
        let server = match std::thread::Builder::new()
            .name("query-http".into())
            .spawn(move || serve(listener, app, signal))
        {
            Ok(server) => server,
            Err(e) => {
                // the reader must not outlive a service that failed to start
                stop.store(true, Ordering::Release);
                if reader.join().is_err() {
                    tracing::error!("the query view's reader panicked");
                }
                return Err(QueryError::Thread(e));
            }
        };
        tracing::info!(%addr, "query API listening");
        Ok(Self {
            addr,
            view,
            state,
            stop,
            shutdown: Some(shutdown),
            threads: vec![reader, server],
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The view it answers from.
    pub fn view(&self) -> &LatestView {
        &self.view
    }

    /// True once the view has read what the topics held at start.
    pub fn ready(&self) -> bool {
        self.state.caught_up()
    }

    /// True when the reader stopped on an error.
    pub fn failed(&self) -> bool {
        self.state.failed()
    }
}

impl Drop for QueryService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(tx) = self.shutdown.take() {
            // the server may already be gone: nothing to tell it then
            let _ = tx.send(());
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a query API thread panicked");
            }
        }
    }
}

/// Serves `app` on `listener` until `signal` fires.
fn serve(listener: TcpListener, app: axum::Router, signal: tokio::sync::oneshot::Receiver<()>) {
    // one thread: with two workers the bench's API phase answered 19-26 % more lookups, but
    // the engine beside it then ingested 0.63-0.75 of its rate without lookups (0.97 with one)
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "query API runtime could not start");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "query API listener");
                return;
            }
        };
        let shutdown = async {
            // a dropped sender also means stop
            let _ = signal.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "query API stopped");
        }
    });
}
