//! `trendcast export-windows`: write training windows and targets from an event log, through the
//! engine's window code.

use std::path::PathBuf;

use anyhow::{Context, Result};

use trendcast::config::Settings;
use trendcast::telemetry;

/// Write training windows and targets from an event log, through the engine's window code.
#[derive(Debug, clap::Args)]
pub struct ExportWindowsArgs {
    /// Event log: engine JSONL or CSV, or the Online Retail / Retailrocket CSV.
    #[arg(long)]
    pub events: PathBuf,
    /// auto, jsonl, csv, online-retail or retailrocket.
    #[arg(long, default_value = "auto")]
    pub format: trendcast::datasets::event_log::LogFormat,
    /// Buckets per target (the model's horizon).
    #[arg(long, default_value_t = 7)]
    pub horizon: usize,
    /// Output folder (windows.npy, targets.npy, index.csv, meta.json).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs the command.
pub fn run(args: ExportWindowsArgs, settings: Settings) -> Result<()> {
    let ExportWindowsArgs {
        events,
        format,
        horizon,
        out,
    } = args;
    telemetry::init_logging(&settings.telemetry);
    let log = trendcast::datasets::event_log::load(&events, format)
        .with_context(|| format!("reading {}", events.display()))?;
    let rows = trendcast::export::export(log.events, &settings.window, horizon, &out)?;
    println!(
        "{}",
        serde_json::json!({"export": {"rows": rows, "out": out.display().to_string(), "skipped_lines": log.skipped}})
    );
    Ok(())
}
