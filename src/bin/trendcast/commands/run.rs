//! `trendcast run`: consume, score and publish until SIGINT/SIGTERM, or until an engine thread
//! stops (then exit non-zero, so that an orchestrator restarts the process).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::wait_for_signal;
use trendcast::config::Settings;
use trendcast::engine::RunningEngine;
use trendcast::query::{self, QueryService};
use trendcast::telemetry;

/// Runs the command.
pub fn run(settings: Settings) -> Result<()> {
    telemetry::init_logging(&settings.telemetry);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let health = Arc::new(telemetry::Health::new());
        telemetry::serve_endpoint(&settings.telemetry, health.clone()).await?;
        // before the engine, so that a listen address in use fails the start with nothing to undo;
        // it answers while the engine drains at shutdown and is stopped after it
        let query = match settings.api_listen {
            Some(listen) => Some(QueryService::start(
                &settings.kafka,
                query::output_topics(&settings),
                settings.schema_registry.as_ref(),
                listen,
            )?),
            None => None,
        };
        let engine = RunningEngine::start_with_health(&settings, None, health)
            .context("engine failed to start")?;
        let failed = tokio::select! {
            r = wait_for_signal() => { r?; None }
            thread = watch_threads(&engine) => Some(thread),
        };
        match failed {
            None => tracing::info!("shutting down: stop consuming, score what is ready, flush, commit"),
            Some(thread) => tracing::error!(
                thread,
                "an engine thread stopped: shutting down (checkpointing what is consistent) and exiting non-zero"
            ),
        }
        let result = tokio::task::spawn_blocking(move || engine.shutdown(Duration::from_secs(30)))
            .await
            .context("shutdown task failed")?;
        drop(query);
        match (failed, result) {
            (_, Err(e)) => Err(e).context("the engine stopped with an error"),
            (Some(thread), Ok(())) => anyhow::bail!("the engine's {thread} thread stopped unexpectedly"),
            (None, Ok(())) => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    })
}

/// Returns the name of the first engine thread that exits; threads run until shutdown, so an
/// exit here is a failure, and `trendcast run` must not stay up without it (an orchestrator
/// restarts a process that exits, not one that idles).
async fn watch_threads(engine: &RunningEngine) -> &'static str {
    loop {
        if let Some(thread) = engine.exited_thread() {
            return thread;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
