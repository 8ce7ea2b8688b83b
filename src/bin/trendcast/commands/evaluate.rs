//! `trendcast evaluate`: score a model on an event log through the serving code (rolling origins,
//! daily buckets) and compare it with other forecasters in one Markdown report.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{parse_baseline, quiet};
use trendcast::config::Settings;
use trendcast::telemetry;

/// Score a model on an event log through the serving code (rolling origins, daily buckets)
/// and compare it with other forecasters' forecast tables in one Markdown report
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Event log (JSONL or CSV in the engine's event schema, or the UCI Online Retail CSV;
    /// optionally gzipped)
    #[arg(long)]
    pub events: PathBuf,
    /// Format of the log
    #[arg(long, default_value = "auto")]
    pub format: trendcast::datasets::event_log::LogFormat,
    /// The model's manifest
    #[arg(long, default_value = "models/trendcast-demand/manifest.json")]
    pub model: PathBuf,
    /// Forecast days per origin
    #[arg(long, default_value_t = 14)]
    pub horizon: usize,
    /// Rolling origins, 7 days apart, the last ending its horizon on the last full day
    #[arg(long, default_value_t = 4)]
    pub origins: usize,
    /// Distinct sale days before the first origin that make a SKU a series
    #[arg(long, default_value_t = 30)]
    pub min_sale_days: usize,
    /// Another forecaster's table `sku,origin,date,q0.1,q0.5,q0.9` (optionally with a trailing
    /// `mean` column), as NAME=PATH (repeatable)
    #[arg(long = "baseline", value_parser = parse_baseline)]
    pub baselines: Vec<(String, PathBuf)>,
    /// Days before the first origin from which the engine's daily scorings are replayed, so the
    /// online interval calibration (`[scoring.calibration]`) has learnt what it would have by
    /// the origins
    #[arg(long, default_value_t = 91)]
    pub online_warmup_days: i64,
    /// Only events before this day (YYYY-MM-DD): the log as it stood then, e.g. to score the
    /// validation origins
    #[arg(long, value_parser = parse_day)]
    pub until: Option<i64>,
    /// Score without the manifest's offline interval multipliers and fit new ones on these
    /// origins (validation origins only); the report prints them as the manifest's
    /// `distribution` object
    #[arg(long)]
    pub fit_conformal: bool,
    /// Correlation of one row's daily errors, instead of the manifest's
    #[arg(long)]
    pub correlation: Option<f64>,
    /// Write the model's forecasts here (CSV `sku,origin,date,q0.1,q0.5,q0.9`, plus `mean` for a
    /// model with a mean output)
    #[arg(long)]
    pub forecasts: Option<PathBuf>,
    /// Also write the Markdown report here (it is always printed)
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: EvaluateArgs, mut settings: Settings) -> Result<()> {
    let EvaluateArgs {
        events,
        format,
        model,
        horizon,
        origins,
        min_sale_days,
        baselines,
        online_warmup_days,
        until,
        fit_conformal,
        correlation,
        forecasts,
        report,
    } = args;
    quiet(&mut settings);
    telemetry::init_logging(&settings.telemetry);
    let mut log = trendcast::datasets::event_log::load(&events, format)
        .with_context(|| format!("reading {}", events.display()))?;
    if let Some(day) = until {
        log.events.retain(|e| e.ts() < day * 86_400_000);
    }
    let options = trendcast::evaluate::EvaluateOptions {
        model,
        horizon,
        origins,
        min_sale_days,
        baselines,
        online_warmup_days,
        fit_conformal,
        correlation,
    };
    let evaluation = trendcast::evaluate::evaluate(log.events, &settings, &options)?;
    if let Some(path) = &forecasts {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        evaluation.forecasts.write(&mut out)?;
        std::io::Write::flush(&mut out)?;
    }
    let text = trendcast::evaluate::report::markdown(&evaluation);
    if let Some(path) = &report {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{text}");
    Ok(())
}

/// A `YYYY-MM-DD` day as days since the Unix epoch.
fn parse_day(text: &str) -> Result<i64, String> {
    trendcast::evaluate::forecasts::day_of(text)
        .filter(|_| text.len() == 10)
        .ok_or_else(|| format!("{text:?} is not a YYYY-MM-DD day"))
}
