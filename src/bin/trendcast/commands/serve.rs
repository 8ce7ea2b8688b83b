//! `trendcast serve`: the query API without an engine, a read-only replica. It owns no
//! partitions and joins no group: its view reads every partition of the output topics, so it
//! answers for every SKU whatever engines run elsewhere, and can be scaled on its own.

use std::time::Duration;

use anyhow::{Context, Result};

use super::wait_for_signal;
use trendcast::config::Settings;
use trendcast::query::{self, QueryService};
use trendcast::telemetry;

/// Runs the command until SIGINT/SIGTERM, or until the view's reader stops (exit non-zero).
pub fn run(settings: Settings) -> Result<()> {
    telemetry::init_logging(&settings.telemetry);
    let listen = settings
        .api_listen
        .context("trendcast serve needs [api] listen (or TRENDCAST_API__LISTEN)")?;
    let service = QueryService::start(
        &settings.kafka,
        query::output_topics(&settings),
        settings.schema_registry.as_ref(),
        listen,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            r = wait_for_signal() => r,
            _ = reader_failed(&service) => anyhow::bail!("the query view's reader stopped"),
        }
    })
}

async fn reader_failed(service: &QueryService) {
    while !service.failed() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
