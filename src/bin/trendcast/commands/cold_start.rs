//! `trendcast cold-start`: evaluate forecasts for new products (no sales yet) from products with
//! similar text, against the global and category means of earlier launches.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::quiet;
use trendcast::config::Settings;
use trendcast::telemetry;

/// Evaluate forecasts for new products (no sales yet) from products with similar text,
/// against the global and category means of earlier launches
#[derive(Debug, clap::Args)]
pub struct ColdStartArgs {
    /// Event log (as for `evaluate`); the UCI Online Retail CSV also yields the catalog
    #[arg(long)]
    pub events: PathBuf,
    /// Format of the log
    #[arg(long, default_value = "auto")]
    pub format: trendcast::datasets::event_log::LogFormat,
    /// Catalog JSONL (schemas/catalog_entry.schema.json); derived from the log when it is
    /// the Online Retail CSV
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Folder of the converted text model (model.onnx, tokenizer.json, text_model.json)
    #[arg(long, env = "TRENDCAST_TEXT_MODEL_DIR")]
    pub text_model: PathBuf,
    /// Days since launch forecast
    #[arg(long, default_value_t = 14)]
    pub horizon: usize,
    /// Days of launches evaluated (ending where the last full launch curve starts)
    #[arg(long, default_value_t = 91)]
    pub eval_days: i64,
    /// Days of launches before those, used to choose the method's settings
    #[arg(long, default_value_t = 91)]
    pub valid_days: i64,
    /// Also write the Markdown report here (it is always printed)
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the report as JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the derived catalog (JSONL) here
    #[arg(long)]
    pub write_catalog: Option<PathBuf>,
    /// Write the launch library (every launch curve with its embedding, and the chosen k
    /// and a) for live new-product forecasts (`signals.launch_library`)
    #[arg(long)]
    pub write_library: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: ColdStartArgs, mut settings: Settings) -> Result<()> {
    let ColdStartArgs {
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
    } = args;
    quiet(&mut settings);
    telemetry::init_logging(&settings.telemetry);
    let (log, entries) = log_and_catalog(&events, format, catalog)?;
    if let Some(path) = &write_catalog {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        trendcast::datasets::catalog::write_jsonl(&entries, &mut out)?;
        std::io::Write::flush(&mut out)?;
    }
    let mut embedder = trendcast::catalog::TextEmbedder::load(
        &text_model,
        settings.scoring.onnxruntime_library.as_deref(),
        settings.scoring.intra_threads,
    )?;
    let options = trendcast::evaluate::cold_start::ColdStartOptions {
        horizon,
        eval_days,
        valid_days,
        ..Default::default()
    };
    let (result, library) = trendcast::evaluate::cold_start::evaluate(
        log,
        &entries,
        &mut embedder,
        &settings.window,
        &options,
    )?;
    let text = trendcast::evaluate::cold_start::markdown(&result);
    if let Some(path) = &report {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
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

/// The event log and the catalog: read from `--catalog`, or derived from the Online Retail CSV.
fn log_and_catalog(
    events: &std::path::Path,
    format: trendcast::datasets::event_log::LogFormat,
    catalog: Option<PathBuf>,
) -> Result<(
    Vec<trendcast::datasets::EventRecord>,
    Vec<trendcast::catalog::CatalogEntry>,
)> {
    use trendcast::datasets::catalog as entry;
    use trendcast::datasets::event_log::{self, LogFormat};
    Ok(match (catalog, format) {
        (Some(path), _) => {
            let (entries, bad) =
                entry::read_jsonl(&path).with_context(|| format!("reading {}", path.display()))?;
            if bad > 0 {
                eprintln!("cold-start: {bad} malformed catalog lines skipped");
            }
            let log = event_log::load(events, format)
                .with_context(|| format!("reading {}", events.display()))?;
            (log.events, entries)
        }
        (None, LogFormat::Auto | LogFormat::OnlineRetail) => {
            let or = trendcast::datasets::online_retail::load(events).with_context(|| {
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
    })
}
