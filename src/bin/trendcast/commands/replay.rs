//! `trendcast replay`: produce a historical event log into the configured sales and clicks topics
//! (a load test).

use std::path::PathBuf;

use anyhow::{Context, Result};

use trendcast::config::Settings;
use trendcast::telemetry;

/// Produce a historical event log into the configured sales/clicks topics (a load test).
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Event log: engine JSONL or CSV, or the Online Retail / Retailrocket CSV (gzipped or not).
    #[arg(long)]
    pub input: PathBuf,
    /// auto, jsonl, csv, online-retail or retailrocket.
    #[arg(long, default_value = "auto")]
    pub format: trendcast::datasets::event_log::LogFormat,
    /// Event-time speed-up, e.g. 3600 for one hour of events per second; omit for as fast as possible.
    #[arg(long)]
    pub speed: Option<f64>,
    /// Steady rate in events per second (instead of event-time pacing).
    #[arg(long, conflicts_with = "speed")]
    pub rate: Option<f64>,
    /// Copies per real SKU: synthesises (clones-1) extra SKUs per real one, named <sku>~<k>.
    #[arg(long, default_value_t = 1)]
    pub clones: u32,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs the command.
pub fn run(args: ReplayArgs, settings: Settings) -> Result<()> {
    let ReplayArgs {
        input,
        format,
        speed,
        rate,
        clones,
        no_progress,
    } = args;
    telemetry::init_logging(&settings.telemetry);
    let log = trendcast::datasets::event_log::load(&input, format)
        .with_context(|| format!("reading {}", input.display()))?;
    eprintln!(
        "replay: {} events from {} lines of {} ({} skipped as invalid){}",
        log.events.len(),
        log.lines,
        input.display(),
        log.skipped,
        if clones > 1 {
            format!("; synthesising {} extra SKUs per real SKU", clones - 1)
        } else {
            String::new()
        }
    );
    let options = trendcast::replay::ReplayOptions {
        speed,
        rate,
        clones,
        progress: !no_progress,
    };
    let summary = trendcast::replay::run(&settings.kafka, log.events, &options)?;
    println!("{}", serde_json::json!({ "replay": summary }));
    Ok(())
}
