//! The operations endpoint: Prometheus metrics and the two orchestrator probes on one listener.
//!
//! - `GET /metrics`: the Prometheus text format;
//! - `GET /healthz`: liveness, 200 while every engine thread runs, else 503;
//! - `GET /readyz`: readiness, 200 once partitions are assigned, restored and being consumed,
//!   else 503.
//!
//! Both probes answer with a JSON [`Probe`] that says why, so `curl` shows an operator what the
//! orchestrator saw. The listener runs on the process's tokio runtime, apart from the engine's
//! threads: a blocked engine still answers (with 503), which is the point of a probe.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;

use super::health::{Health, Probe};

#[derive(Clone)]
struct Shared {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// The endpoint's routes.
fn router(metrics: PrometheusHandle, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, health })
}

/// Serves the endpoint on `listener` until the runtime stops; a failed connection is logged and
/// the listener goes on.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    health: Arc<Health>,
) {
    if let Err(e) = axum::serve(listener, router(metrics, health)).await {
        tracing::error!(error = %e, "the metrics and health endpoint stopped");
    }
}

async fn render_metrics(State(shared): State<Shared>) -> String {
    shared.metrics.render()
}

fn answer(probe: Probe) -> (StatusCode, Json<Probe>) {
    let status = if probe.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(probe))
}

async fn live(State(shared): State<Shared>) -> (StatusCode, Json<Probe>) {
    answer(shared.health.live())
}

async fn ready(State(shared): State<Shared>) -> (StatusCode, Json<Probe>) {
    answer(shared.health.ready())
}
