//! `trendcast check-config`: validate the configuration and the model (loads ONNX Runtime) and
//! print the resolved configuration.

use anyhow::{Context, Result};

use trendcast::config::{self, Settings};
use trendcast::engine::load_model;
use trendcast::telemetry;

/// Runs the command.
pub fn run(raw: &config::RawConfig, settings: Settings) -> Result<()> {
    telemetry::init_logging(&settings.telemetry);
    println!("{}", config::redacted_toml(raw));
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
