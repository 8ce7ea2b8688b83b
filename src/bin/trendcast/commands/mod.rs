//! One module per subcommand, each with its arguments and a `run` function; `main.rs` only
//! parses the command line and dispatches.

pub mod bench;
pub mod check_config;
pub mod cold_start;
pub mod demo;
pub mod dump_state;
pub mod evaluate;
pub mod export_windows;
pub mod replay;
pub mod report;
pub mod run;
pub mod serve;

use std::path::PathBuf;

use trendcast::config::Settings;

/// `NAME=PATH` of a `--baseline`.
pub fn parse_baseline(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got `{text}`")),
    }
}

/// Self-contained runs (demo, bench, offline tools) serve no metrics and log warnings only,
/// unless asked.
pub fn quiet(settings: &mut Settings) {
    settings.telemetry.metrics_listen = None;
    if std::env::var_os("RUST_LOG").is_none() && settings.telemetry.log_level == "info" {
        settings.telemetry.log_level = "warn".into();
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    use anyhow::Context;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
