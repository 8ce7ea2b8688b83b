//! `trendcast dump-state`: print the per-SKU window state of a checkpoint folder as JSON lines.

use std::path::PathBuf;

use anyhow::Result;

use trendcast::config::Settings;
use trendcast::telemetry;

/// Print the per-SKU window state of a checkpoint folder as JSON lines (canonical: sorted by
/// SKU, the window ending at the newest bucket reached, non-zero buckets only).
#[derive(Debug, clap::Args)]
pub struct DumpStateArgs {
    /// Checkpoint folder of one consumer group: <checkpoint.dir>/<group id>.
    #[arg(long)]
    pub dir: PathBuf,
}

/// Runs the command.
pub fn run(args: DumpStateArgs, settings: Settings) -> Result<()> {
    let DumpStateArgs { dir } = args;
    telemetry::init_logging(&settings.telemetry);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let n = trendcast::checkpoint::dump::dump(&dir, &settings.window, &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!("dump-state: {n} SKUs from {}", dir.display());
    Ok(())
}
