//! The `trendcast` command: a thin layer over the library. Each subcommand lives in
//! `commands/<name>.rs`; this file parses the command line, loads the configuration (two stages:
//! raw TOML and environment, then validated settings) and dispatches.

mod commands;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use commands::*;
use trendcast::config::{self, Settings};
use trendcast::telemetry::LogFormat;

/// Streaming demand- and trend-forecast engine.
#[derive(Debug, Parser)]
#[command(name = "trendcast", version, about)]
struct Cli {
    /// Configuration file (TOML); `TRENDCAST_<SECTION>__<KEY>` variables override it.
    #[arg(long, global = true, env = "TRENDCAST_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume, score and publish until SIGINT/SIGTERM.
    Run,
    /// Serve the query API from the output topics alone (a read-only replica; needs [api] listen).
    Serve,
    /// Validate the configuration and the model (loads ONNX Runtime); prints the resolved config.
    CheckConfig,
    /// Produce a historical event log into the configured sales/clicks topics (a load test).
    Replay(replay::ReplayArgs),
    /// The end-to-end load run: bare consumer vs engine vs Python peer, latency, memory per SKU.
    Bench(trendcast::loadtest::BenchOptions),
    /// Write training windows and targets from an event log, through the engine's window code.
    ExportWindows(export_windows::ExportWindowsArgs),
    /// Score a model on an event log through the serving code (rolling origins, daily buckets)
    /// and compare it with other forecasters' forecast tables in one Markdown report
    Evaluate(evaluate::EvaluateArgs),
    /// Evaluate forecasts for new products (no sales yet) from products with similar text,
    /// against the global and category means of earlier launches
    ColdStart(cold_start::ColdStartArgs),
    /// Print the per-SKU window state of a checkpoint folder as JSON lines (canonical: sorted by
    /// SKU, the window ending at the newest bucket reached, non-zero buckets only).
    DumpState(dump_state::DumpStateArgs),
    /// Replay the bundled Online Retail log through an embedded broker and the full engine.
    Demo(demo::DemoArgs),
    /// Write the trend report (one HTML file; its tables as CSV on request), from a log replayed
    /// through the engine or from a running engine's topics.
    Report(report::ReportArgs),
}

fn settings(cli: &Cli) -> Result<(config::RawConfig, Settings)> {
    let raw = config::load_raw(cli.config.as_deref())?;
    let mut settings = Settings::resolve(&raw)?;
    if cli.json_logs {
        settings.telemetry.log_format = LogFormat::Json;
    }
    Ok((raw, settings))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trendcast: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let (raw, settings) = settings(&cli)?;
    match cli.command {
        Command::Run => run::run(settings),
        Command::Serve => serve::run(settings),
        Command::CheckConfig => check_config::run(&raw, settings),
        Command::Replay(args) => replay::run(args, settings),
        Command::Bench(options) => bench::run(options, settings),
        Command::ExportWindows(args) => export_windows::run(args, settings),
        Command::Evaluate(args) => evaluate::run(args, settings),
        Command::ColdStart(args) => cold_start::run(args, settings),
        Command::DumpState(args) => dump_state::run(args, settings),
        Command::Demo(args) => demo::run(args, &raw, settings),
        Command::Report(args) => report::run(args, &raw, settings),
    }
}
