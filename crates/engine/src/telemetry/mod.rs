//! Telemetry: `tracing` logs and Prometheus metrics.
//!
//! Metric names follow `trendcast_<what>_<unit>[_total]`; labels are bounded (source topic,
//! reject reason, eviction reason, and the input partition of the per-partition lag, bounded by
//! the topics' partition counts), never a SKU. [`stats::EngineStats`] holds one typed handle
//! per metric plus the plain counters the demo summary and the tests read.

pub mod endpoint;
pub mod health;
pub mod latency;
pub mod stats;

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

pub use health::Health;
pub use latency::{LatencySample, LatencySamples};
pub use stats::EngineStats;

/// Resident set size of this process in bytes (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logs and metrics settings (from `[telemetry]`).
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// Log format.
    pub log_format: LogFormat,
    /// `tracing` filter directive.
    pub log_level: String,
    /// Prometheus listen address, if enabled.
    pub metrics_listen: Option<SocketAddr>,
}

/// Installs the global `tracing` subscriber (logs go to stderr). `RUST_LOG` overrides the
/// configured level. Safe to call twice: the second call does nothing.
pub fn init_logging(settings: &TelemetrySettings) {
    // ONNX Runtime logs every arena reservation at info; keep it at warn unless asked.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("ort=warn,{}", settings.log_level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Errors starting the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The Prometheus recorder could not be installed.
    #[error("could not install the Prometheus recorder")]
    Recorder(#[source] metrics_exporter_prometheus::BuildError),
    /// The address could not be bound.
    #[error("could not listen on {addr} for metrics and health probes")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Bucket bounds (seconds) of every latency and duration histogram: 1 ms to 5 min, covering a
/// scoring batch (ms), event-to-update latency (ms to s) and checkpoints and restores (s to min).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Bucket bounds of the scoring batch size (windows).
const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the Prometheus recorder, describes every metric, and serves `/metrics`, `/healthz`
/// and `/readyz` on `[telemetry] metrics_listen` (see [`endpoint`]). Does nothing when no
/// address is configured. Must run inside the tokio runtime, before the engine registers its
/// metrics.
pub async fn serve_endpoint(
    settings: &TelemetrySettings,
    health: std::sync::Arc<Health>,
) -> Result<(), EndpointError> {
    let Some(addr) = settings.metrics_listen else {
        return Ok(());
    };
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    // histograms, not summaries: buckets aggregate across instances, quantiles do not
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(stats::SCORING_BATCH_SIZE.into()),
                BATCH_BUCKETS,
            )
        })
        .and_then(|b| b.install_recorder())
        .map_err(EndpointError::Recorder)?;
    stats::describe();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EndpointError::Bind { addr, source })?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(endpoint::serve(listener, handle, health));
    tracing::info!(%addr, "metrics (/metrics) and health probes (/healthz, /readyz) listening");
    Ok(())
}
