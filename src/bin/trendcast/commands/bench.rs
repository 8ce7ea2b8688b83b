//! `trendcast bench`: the end-to-end load run (bare consumer vs engine vs Python peer, latency,
//! memory per SKU).

use anyhow::Result;

use super::quiet;
use trendcast::config::Settings;
use trendcast::telemetry;

/// Runs the command.
pub fn run(options: trendcast::loadtest::BenchOptions, mut settings: Settings) -> Result<()> {
    quiet(&mut settings);
    telemetry::init_logging(&settings.telemetry);
    let report = trendcast::loadtest::run(&settings, &options)?;
    println!("{report}");
    Ok(())
}
