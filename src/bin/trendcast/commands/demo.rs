//! `trendcast demo`: replay the bundled Online Retail log through an embedded broker and the full
//! engine.

use std::path::PathBuf;

use anyhow::Result;

use super::quiet;
use trendcast::config::{self, Settings};
use trendcast::telemetry;

/// Replay the bundled Online Retail log through an embedded broker and the full engine.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Online Retail CSV (gzipped or not).
    #[arg(long, default_value = "data/online-retail/online_retail.csv.gz")]
    pub data: PathBuf,
    /// Use only the first N events (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Rows per table of top rising SKUs.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Days of mean daily demand on hand at each SKU's first sale, in the simulated warehouse
    /// that feeds the inventory topic (restocked only by the engine's own restock signals)
    #[arg(long, default_value_t = 28.0)]
    pub initial_stock_days: f64,
}

/// Runs the command.
pub fn run(args: DemoArgs, raw: &config::RawConfig, settings: Settings) -> Result<()> {
    let DemoArgs {
        data,
        limit,
        top,
        initial_stock_days,
    } = args;
    let settings = with_demo_signals(raw, settings)?;
    telemetry::init_logging(&settings.telemetry);
    let options = trendcast::demo::DemoOptions {
        data,
        limit,
        top,
        initial_stock_days,
        quiet: false,
    };
    trendcast::demo::run(settings, &options)
}

/// The settings of a demo replay: the signals component on its own topics whatever the config
/// says, no metrics endpoint, warnings only.
pub fn with_demo_signals(raw: &config::RawConfig, mut settings: Settings) -> Result<Settings> {
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
    Ok(settings)
}
