//! `trendcast report`: the HTML trend report (and its tables as CSV), from an event log replayed
//! through the embedded broker and the full engine, or from the topics of a running engine.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::demo::with_demo_signals;
use trendcast::config::{self, Settings};
use trendcast::datasets::catalog::online_retail_catalog;
use trendcast::report::{self, collect, ProductText, ReportInputs, ReportOptions};
use trendcast::scoring::manifest::ResolvedManifest;
use trendcast::scoring::trend::{TrendRule, TrendSettings, DEFAULT_FLAT_BAND, DEFAULT_LEVEL_FLOOR};
use trendcast::telemetry;

/// Write the trend report (one HTML file; its tables as CSV on request)
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Online Retail log to replay through an embedded broker and the full engine (as the demo
    /// does); the report is made from what the engine published
    #[arg(long, default_value = "data/online-retail/online_retail.csv.gz")]
    pub events: PathBuf,
    /// Read the configured cluster's topics instead (sales, trend updates, restock signals,
    /// catalog and new-product forecasts): a running engine's outputs
    #[arg(long)]
    pub from_topics: bool,
    /// Replay only the first N events of the log (0 = all)
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// The HTML file to write
    #[arg(long, default_value = "trend-report.html")]
    pub out: PathBuf,
    /// Also write the tables as CSV files into this folder
    #[arg(long)]
    pub csv_dir: Option<PathBuf>,
    /// Rows in the rising and falling tables
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Weekly origins in the calibration panel
    #[arg(long, default_value_t = 4)]
    pub calibration_weeks: usize,
    /// With a log: the converted text model (scripts/env.sh ensure_text_model), so that each
    /// product's catalog entry goes out at its first sale and new products get text-based
    /// forecasts (docs/COLD_START.md); needs --launch-library
    #[arg(long, requires = "launch_library")]
    pub text_model: Option<PathBuf>,
    /// With a log: the launch library (`trendcast cold-start --write-library`)
    #[arg(long, requires = "text_model")]
    pub launch_library: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: ReportArgs, raw: &config::RawConfig, settings: Settings) -> Result<()> {
    if args.from_topics {
        telemetry::init_logging(&settings.telemetry);
        let inputs = collect::from_topics(&settings)?;
        let source = format!("topics on {}", settings.kafka.brokers);
        return write(&args, &settings, inputs, source);
    }
    let mut raw = raw.clone();
    if let (Some(model), Some(library)) = (&args.text_model, &args.launch_library) {
        let s = &mut raw.signals;
        if s.catalog_topic.trim().is_empty() {
            s.catalog_topic = "catalog".into();
        }
        s.text_model = model.display().to_string();
        s.launch_library = library.display().to_string();
    }
    let settings = with_demo_signals(&raw, settings)?;
    telemetry::init_logging(&settings.telemetry);
    let options = trendcast::demo::DemoOptions {
        data: args.events.clone(),
        limit: args.limit,
        top: args.top,
        initial_stock_days: 28.0,
        quiet: true,
    };
    eprintln!(
        "report: replaying {} through the engine",
        args.events.display()
    );
    trendcast::demo::run_then(settings, &options, |replayed| {
        let mut inputs = collect::from_topics(replayed.settings)?;
        for entry in online_retail_catalog(replayed.descriptions) {
            inputs
                .products
                .entry(entry.sku.clone())
                .or_insert_with(|| ProductText::from_entry(&entry));
        }
        let source = format!("{} replayed through the engine", args.events.display());
        write(&args, replayed.settings, inputs, source)
    })
}

fn write(
    args: &ReportArgs,
    settings: &Settings,
    inputs: ReportInputs,
    source: String,
) -> Result<()> {
    let options = ReportOptions {
        top: args.top,
        calibration_weeks: args.calibration_weeks,
        window_buckets: settings.window.buckets,
        min_volume: settings.signals.as_ref().map_or(5.0, |s| s.hot.min_volume),
        trend: trend_definition(settings),
        source,
        ..ReportOptions::default()
    };
    let report = report::build(&inputs, &options);
    std::fs::write(&args.out, report::html::render(&report))
        .with_context(|| format!("could not write {}", args.out.display()))?;
    eprintln!(
        "report: {} ({} rising, {} falling, {} categories, {} new products, {} restock alerts, {} calibration origins)",
        args.out.display(),
        report.rising.len(),
        report.falling.len(),
        report.categories.len(),
        report.new_products.len(),
        report.restock.len(),
        report.calibration.origins.len()
    );
    if let Some(dir) = &args.csv_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        let files = report::csv_out::write_all(&report, dir)?;
        eprintln!("report: {} CSV files in {}", files.len(), dir.display());
    }
    Ok(())
}

/// The trend definition the engine applies (docs/TRENDS.md): `[trend]` where set, else the one
/// the configured model's direction classifier was trained for. Without a readable manifest
/// (a report made elsewhere than the engine runs), `[trend]` or the defaults, with a warning.
fn trend_definition(settings: &Settings) -> TrendSettings {
    match ResolvedManifest::load(&settings.scoring.manifest, &settings.window) {
        Ok(resolved) => TrendRule::for_model(&settings.trend, &resolved.manifest).settings,
        Err(e) => {
            tracing::warn!(error = %e, "report: judging calls with [trend] or the default definition");
            TrendSettings {
                flat_band: settings.trend.flat_band.unwrap_or(DEFAULT_FLAT_BAND),
                level_floor: settings.trend.level_floor.unwrap_or(DEFAULT_LEVEL_FLOOR),
            }
        }
    }
}
