//! `trendcast report` on the bundled Online Retail log, opened in a real headless browser
//! (Debian's `chromium`, `TRENDCAST_CHROMIUM` from scripts/test.sh): the command replays the
//! first 150,000 events through the embedded broker and the full engine, writes the HTML and the
//! CSV tables, and the browser's screenshot of the page is not blank while its DOM holds every
//! SKU the CSV tables list. (That the tables are right is tested on planted trends in
//! tests/planted_trends.rs, from a real broker's topics.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{ort_library, root};

/// The SKUs (first column) of a CSV table the report wrote, in its order.
fn skus_in(csv: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(csv).expect("CSV table");
    reader
        .records()
        .map(|r| r.expect("CSV row")[0].to_string())
        .collect()
}

fn chromium() -> Command {
    let binary = std::env::var("TRENDCAST_CHROMIUM").expect(
        "TRENDCAST_CHROMIUM is not set: run the tests through scripts/test.sh (ensure_chromium)",
    );
    let mut c = Command::new(binary);
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ]);
    c
}

/// Share of pixels that are not (near) white, and the number of distinct colours.
fn ink(png_file: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).expect("screenshot"));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let inked = pixels
        .iter()
        .filter(|p| p[..3].iter().any(|&c| c < 200))
        .count();
    let colours: BTreeSet<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    (inked as f64 / pixels.len() as f64, colours.len())
}

#[test]
fn the_report_renders_in_a_headless_browser_with_every_listed_sku() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    let tables = dir.path().join("csv");
    let out = Command::new(env!("CARGO_BIN_EXE_trendcast"))
        .current_dir(root())
        .env("ORT_DYLIB_PATH", ort_library())
        .args(["report", "--limit", "150000", "--out"])
        .arg(&html)
        .arg("--csv-dir")
        .arg(&tables)
        .output()
        .expect("run trendcast report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rising = skus_in(&tables.join("rising.csv"));
    let falling = skus_in(&tables.join("falling.csv"));
    assert!(
        rising.len() >= 10 && falling.len() >= 10,
        "{rising:?} {falling:?}"
    );
    let calibration = skus_in(&tables.join("calibration.csv"));
    assert_eq!(
        calibration.len(),
        4,
        "four weekly origins judged: {calibration:?}"
    );

    let shot = dir.path().join("report.png");
    let run = chromium()
        .arg("--window-size=1280,1600")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (share, colours) = ink(&shot);
    assert!(
        share > 0.02 && colours > 20,
        "blank-looking screenshot: {share:.4} inked, {colours} colours"
    );

    let dom = chromium()
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium --dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<h1>Trend report</h1>"),
        "{}",
        &dom[..dom.len().min(500)]
    );
    // the page shows the 30 soonest restock alerts, the CSV every one in the same order
    let restock = skus_in(&tables.join("restock_alerts.csv"));
    for sku in rising.iter().chain(&falling).chain(restock.iter().take(30)) {
        assert!(
            dom.contains(&format!("data-sku=\"{sku}\"")),
            "{sku} is not in the rendered page"
        );
    }
}
