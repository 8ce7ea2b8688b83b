//! The `trendcast` command: a thin layer over the library.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use trendcast::config::{self, Settings};
use trendcast::engine::{load_model, RunningEngine};
use trendcast::telemetry::{self, LogFormat};

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
    /// Validate the configuration and the model (loads ONNX Runtime); prints the resolved config.
    CheckConfig,
    /// Produce a historical event log into the configured sales/clicks topics (a load test).
    Replay {
        /// Event log: engine JSONL or CSV, or the Online Retail / Retailrocket CSV (gzipped or not).
        #[arg(long)]
        input: PathBuf,
        /// auto, jsonl, csv, online-retail or retailrocket.
        #[arg(long, default_value = "auto")]
        format: trendcast::datasets::event_log::LogFormat,
        /// Event-time speed-up, e.g. 3600 for one hour of events per second; omit for as fast as possible.
        #[arg(long)]
        speed: Option<f64>,
        /// Steady rate in events per second (instead of event-time pacing).
        #[arg(long, conflicts_with = "speed")]
        rate: Option<f64>,
        /// Copies per real SKU: synthesises (clones-1) extra SKUs per real one, named <sku>~<k>.
        #[arg(long, default_value_t = 1)]
        clones: u32,
        /// Hide the progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// The end-to-end load run: bare consumer vs engine vs Python peer, latency, memory per SKU.
    Bench(trendcast::loadtest::BenchOptions),
    /// Write training windows and targets from an event log, through the engine's window code.
    ExportWindows {
        /// Event log: engine JSONL or CSV, or the Online Retail / Retailrocket CSV.
        #[arg(long)]
        events: PathBuf,
        /// auto, jsonl, csv, online-retail or retailrocket.
        #[arg(long, default_value = "auto")]
        format: trendcast::datasets::event_log::LogFormat,
        /// Buckets per target (the model's horizon).
        #[arg(long, default_value_t = 7)]
        horizon: usize,
        /// Output folder (windows.npy, targets.npy, index.csv, meta.json).
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a model on an event log through the serving code (rolling origins, daily buckets)
    /// and compare it with other forecasters' forecast tables in one Markdown report
    Evaluate {
        /// Event log (JSONL or CSV in the engine's event schema, or the UCI Online Retail CSV;
        /// optionally gzipped)
        #[arg(long)]
        events: PathBuf,
        /// Format of the log
        #[arg(long, default_value = "auto")]
        format: trendcast::datasets::event_log::LogFormat,
        /// The model's manifest
        #[arg(long, default_value = "models/trendcast-demand/manifest.json")]
        model: PathBuf,
        /// Forecast days per origin
        #[arg(long, default_value_t = 14)]
        horizon: usize,
        /// Rolling origins, 7 days apart, the last ending its horizon on the last full day
        #[arg(long, default_value_t = 4)]
        origins: usize,
        /// Distinct sale days before the first origin that make a SKU a series
        #[arg(long, default_value_t = 30)]
        min_sale_days: usize,
        /// Another forecaster's table `sku,origin,date,q0.1,q0.5,q0.9` (optionally with a trailing
        /// `mean` column), as NAME=PATH (repeatable)
        #[arg(long = "baseline", value_parser = parse_baseline)]
        baselines: Vec<(String, PathBuf)>,
        /// Write the model's forecasts here (CSV `sku,origin,date,q0.1,q0.5,q0.9`, plus `mean` for a
        /// model with a mean output)
        #[arg(long)]
        forecasts: Option<PathBuf>,
        /// Also write the Markdown report here (it is always printed)
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Evaluate forecasts for new products (no sales yet) from products with similar text,
    /// against the global and category means of earlier launches
    ColdStart {
        /// Event log (as for `evaluate`); the UCI Online Retail CSV also yields the catalog
        #[arg(long)]
        events: PathBuf,
        /// Format of the log
        #[arg(long, default_value = "auto")]
        format: trendcast::datasets::event_log::LogFormat,
        /// Catalog JSONL (schemas/catalog_entry.schema.json); derived from the log when it is
        /// the Online Retail CSV
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Folder of the converted text model (model.onnx, tokenizer.json, text_model.json)
        #[arg(long, env = "TRENDCAST_TEXT_MODEL_DIR")]
        text_model: PathBuf,
        /// Days since launch forecast
        #[arg(long, default_value_t = 14)]
        horizon: usize,
        /// Days of launches evaluated (ending where the last full launch curve starts)
        #[arg(long, default_value_t = 91)]
        eval_days: i64,
        /// Days of launches before those, used to choose the method's settings
        #[arg(long, default_value_t = 91)]
        valid_days: i64,
        /// Also write the Markdown report here (it is always printed)
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the report as JSON here
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the derived catalog (JSONL) here
        #[arg(long)]
        write_catalog: Option<PathBuf>,
        /// Write the launch library (every launch curve with its embedding, and the chosen k
        /// and a) for live new-product forecasts (`signals.launch_library`)
        #[arg(long)]
        write_library: Option<PathBuf>,
    },
    /// Print the per-SKU window state of a checkpoint folder as JSON lines (canonical: sorted by
    /// SKU, the window ending at the newest bucket reached, non-zero buckets only).
    DumpState {
        /// Checkpoint folder of one consumer group: <checkpoint.dir>/<group id>.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Replay the bundled Online Retail log through an embedded broker and the full engine.
    Demo {
        /// Online Retail CSV (gzipped or not).
        #[arg(long, default_value = "data/online-retail/online_retail.csv.gz")]
        data: PathBuf,
        /// Use only the first N events (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Rows per table of top rising SKUs.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Days of mean daily demand on hand at each SKU's first sale, in the simulated warehouse
        /// that feeds the inventory topic (restocked only by the engine's own restock signals)
        #[arg(long, default_value_t = 28.0)]
        initial_stock_days: f64,
    },
}

/// Self-contained runs (demo, bench) serve no metrics and log warnings only, unless asked.
/// `NAME=PATH` of a `--baseline`.
fn parse_baseline(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got `{text}`")),
    }
}

fn quiet(settings: &mut Settings) {
    settings.telemetry.metrics_listen = None;
    if std::env::var_os("RUST_LOG").is_none() && settings.telemetry.log_level == "info" {
        settings.telemetry.log_level = "warn".into();
    }
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
    let (raw, mut settings) = settings(&cli)?;
    match cli.command {
        Command::CheckConfig => {
            telemetry::init_logging(&settings.telemetry);
            println!("{}", config::redacted_toml(&raw));
            let model = load_model(&settings).context("model check failed")?;
            println!(
                "# ok: model {} ({} execution provider), {} features, window {} buckets, horizon {}",
                model.manifest().manifest.id(),
                model.provider(),
                model.manifest().features.len(),
                model.manifest().manifest.window_len,
                model.manifest().manifest.horizon
            );
            Ok(())
        }
        Command::Demo {
            data,
            limit,
            top,
            initial_stock_days,
        } => {
            // the demo runs the signals component on its own topics whatever the config says
            let mut with_signals = raw.clone();
            let s = &mut with_signals.signals;
            s.enabled = true;
            if s.inventory_topic.trim().is_empty() {
                s.inventory_topic = "inventory".into();
            }
            if s.hot_products_topic.trim().is_empty() {
                s.hot_products_topic = "hot-products".into();
            }
            settings.signals = Settings::resolve(&with_signals)?.signals;
            quiet(&mut settings);
            telemetry::init_logging(&settings.telemetry);
            let options = trendcast::demo::DemoOptions {
                data,
                limit,
                top,
                initial_stock_days,
            };
            trendcast::demo::run(settings, &options)
        }
        Command::Replay {
            input,
            format,
            speed,
            rate,
            clones,
            no_progress,
        } => {
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
        Command::Bench(options) => {
            quiet(&mut settings);
            telemetry::init_logging(&settings.telemetry);
            let report = trendcast::loadtest::run(&settings, &options)?;
            println!("{report}");
            Ok(())
        }
        Command::Evaluate {
            events,
            format,
            model,
            horizon,
            origins,
            min_sale_days,
            baselines,
            forecasts,
            report,
        } => {
            quiet(&mut settings);
            telemetry::init_logging(&settings.telemetry);
            let log = trendcast::datasets::event_log::load(&events, format)
                .with_context(|| format!("reading {}", events.display()))?;
            let options = trendcast::evaluate::EvaluateOptions {
                model,
                horizon,
                origins,
                min_sale_days,
                baselines,
            };
            let evaluation = trendcast::evaluate::evaluate(log.events, &settings, &options)?;
            if let Some(path) = &forecasts {
                let mut out = std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                );
                evaluation.forecasts.write(&mut out)?;
                std::io::Write::flush(&mut out)?;
            }
            let text = trendcast::evaluate::report::markdown(&evaluation);
            if let Some(path) = &report {
                std::fs::write(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            print!("{text}");
            Ok(())
        }
        Command::ColdStart {
            events,
            format,
            catalog,
            text_model,
            horizon,
            eval_days,
            valid_days,
            report,
            json,
            write_catalog,
            write_library,
        } => {
            quiet(&mut settings);
            telemetry::init_logging(&settings.telemetry);
            use trendcast::catalog::entry;
            use trendcast::datasets::event_log::{self, LogFormat};
            let (log, entries) = match (catalog, format) {
                (Some(path), _) => {
                    let (entries, bad) = entry::read_jsonl(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    if bad > 0 {
                        eprintln!("cold-start: {bad} malformed catalog lines skipped");
                    }
                    let log = event_log::load(&events, format)
                        .with_context(|| format!("reading {}", events.display()))?;
                    (log.events, entries)
                }
                (None, LogFormat::Auto | LogFormat::OnlineRetail) => {
                    let or =
                        trendcast::datasets::online_retail::load(&events).with_context(|| {
                            format!(
                                "reading {} as the Online Retail CSV (other logs need --catalog)",
                                events.display()
                            )
                        })?;
                    let entries = entry::online_retail_catalog(&or.descriptions);
                    let log = or
                        .events
                        .into_iter()
                        .map(trendcast::datasets::EventRecord::Sale)
                        .collect();
                    (log, entries)
                }
                (None, _) => anyhow::bail!("--catalog is needed for logs other than Online Retail"),
            };
            if let Some(path) = &write_catalog {
                let mut out = std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                );
                entry::write_jsonl(&entries, &mut out)?;
                std::io::Write::flush(&mut out)?;
            }
            let mut embedder = trendcast::catalog::TextEmbedder::load(
                &text_model,
                settings.scoring.onnxruntime_library.as_deref(),
                settings.scoring.intra_threads,
            )?;
            let options = trendcast::catalog::cold_start::ColdStartOptions {
                horizon,
                eval_days,
                valid_days,
                ..Default::default()
            };
            let (result, library) = trendcast::catalog::cold_start::evaluate(
                log,
                &entries,
                &mut embedder,
                &settings.window,
                &options,
            )?;
            let text = trendcast::catalog::cold_start::markdown(&result);
            if let Some(path) = &report {
                std::fs::write(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = &json {
                std::fs::write(path, serde_json::to_string_pretty(&result)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = &write_library {
                library.save(path)?;
                eprintln!(
                    "cold-start: launch library of {} products (k = {}, a = {}) written to {}",
                    library.products.len(),
                    library.k,
                    library.mix,
                    path.display()
                );
            }
            print!("{text}");
            Ok(())
        }
        Command::DumpState { dir } => {
            telemetry::init_logging(&settings.telemetry);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = trendcast::checkpoint::dump::dump(&dir, &settings.window, &mut out)?;
            std::io::Write::flush(&mut out)?;
            eprintln!("dump-state: {n} SKUs from {}", dir.display());
            Ok(())
        }
        Command::ExportWindows {
            events,
            format,
            horizon,
            out,
        } => {
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
        Command::Run => {
            telemetry::init_logging(&settings.telemetry);
            run(settings)
        }
    }
}

fn run(settings: Settings) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        let health = Arc::new(telemetry::Health::new());
        telemetry::serve_endpoint(&settings.telemetry, health.clone()).await?;
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

async fn wait_for_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
