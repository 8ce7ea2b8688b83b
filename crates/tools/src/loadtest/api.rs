//! (e) The query API under load: single and batch lookups per second and their latency,
//! measured by `wrk` (one process, keep-alive connections) against a running engine's API while
//! the engine ingests a steady stream, and the engine's ingest rate with and without the
//! lookups.
//!
//! The order is: prime the engine with the first part of the log as fast as it goes (so the
//! view holds forecasts for the SKUs asked for), then replay the rest at a steady rate in the
//! background and measure three windows of equal length one after the other: no lookups,
//! single-SKU lookups, batch lookups. Each window reports the events the engine consumed per
//! second, so "ingest keeps up while the API is under load" is a ratio within one run.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{phase_settings, wait_ready};
use crate::datasets::EventRecord;
use crate::replay::{self, clone_sku, ReplayOptions};
use trendcast_engine::config::Settings;
use trendcast_engine::engine::RunningEngine;
use trendcast_engine::kafka::KafkaSettings;
use trendcast_engine::query::{self, Output, QueryService};

/// SKUs per batch request.
const BATCH_SKUS: usize = 100;

/// How the API phase runs.
pub(super) struct ApiLoad<'a> {
    /// Events per second of the steady stream (half the engine's unloaded rate by default).
    pub rate: f64,
    /// Seconds per window.
    pub secs: f64,
    /// The `wrk` binary.
    pub wrk: &'a Path,
    /// wrk's open connections (its threads: 2).
    pub connections: u32,
    /// SKU clones of the log (at least; the phase clones more when the steady part would
    /// otherwise run out before its windows end).
    pub clones: u32,
    /// Partitions per input topic.
    pub partitions: i32,
}

/// Lua for wrk: each request asks for one SKU (or a batch of them) drawn from the file named by
/// `TRENDCAST_API_SKUS`.
const SINGLE_LUA: &str = r#"
local skus = {}
for line in io.lines(os.getenv("TRENDCAST_API_SKUS")) do skus[#skus + 1] = line end
request = function()
  return wrk.format("GET", "/v1/forecasts/" .. skus[math.random(#skus)])
end
"#;

const BATCH_LUA: &str = r#"
local skus = {}
for line in io.lines(os.getenv("TRENDCAST_API_SKUS")) do skus[#skus + 1] = line end
local n = tonumber(os.getenv("TRENDCAST_API_BATCH"))
request = function()
  local t, seen = {}, {}
  while #t < n do
    local i = math.random(#skus)
    if not seen[i] then seen[i] = true; t[#t + 1] = '"' .. skus[i] .. '"' end
  end
  return wrk.format("POST", "/v1/forecasts:batch", {["Content-Type"] = "application/json"},
    '{"skus":[' .. table.concat(t, ",") .. ']}')
end
"#;

/// Runs the phase over `events` (the log's real events, cloned `load.clones` times).
pub(super) fn api_run(base: &Settings, events: &[EventRecord], load: &ApiLoad) -> Result<Value> {
    if !(load.rate.is_finite() && load.rate > 0.0) {
        bail!("the API run needs a rate: run the throughput phase or pass --latency-rates");
    }
    let settings = phase_settings(base, "api", load.partitions)?;
    let k = settings.kafka.clone();
    let service = QueryService::start(
        &k,
        query::output_topics(&settings),
        settings.schema_registry.as_ref(),
        "127.0.0.1:0".parse().context("loopback address")?,
    )?;
    let engine = RunningEngine::start(&settings, None).context("engine start")?;
    wait_ready(&engine, Duration::from_secs(120))?;
    // prime with 40 % of the log (enough closed days that most SKUs have a forecast), then the
    // steady part: three windows and a margin
    let prime = events.len() * 2 / 5;
    let clones = clones_needed(events.len() - prime, load);
    let load = &ApiLoad { clones, ..*load };
    let steady_end = prime + steady_real(clones, load);
    if steady_end > events.len() {
        bail!(
            "the input is too short for {} s at {} events/s",
            steady_secs(load),
            load.rate
        );
    }
    let fast = ReplayOptions {
        speed: None,
        rate: None,
        clones,
        progress: false,
    };
    let primed = replay::run(&k, events[..prime].to_vec(), &fast)?;
    wait_for(&engine, primed.events, Duration::from_secs(300))?;
    let skus = answered_skus(&service, &events[..prime], load.clones);
    if skus.len() < BATCH_SKUS {
        bail!(
            "the view answers for {} SKUs after priming; a batch asks for {BATCH_SKUS} distinct ones",
            skus.len()
        );
    }
    let list = tempfile_with(&skus.join("\n"))?;
    let steady = spawn_steady(&k, events[prime..steady_end].to_vec(), load);
    // let the steady stream reach the engine and settle before the first window
    wait_for(&engine, primed.events + 1, Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(2));
    let before = primed.events;
    let [idle, single, batch] = three_windows(&engine, &service, list.path(), load)?;
    let produced = steady
        .join()
        .map_err(|_| anyhow::anyhow!("the steady replay thread panicked"))??;
    engine.shutdown(Duration::from_secs(60))?;
    drop(service);
    Ok(json!({
        "offered_rate_events_per_s": load.rate.round(),
        "achieved_offered_rate_events_per_s": produced.rate_per_s,
        "primed_events": before,
        "sku_clones": clones,
        "skus_asked": skus.len(),
        "connections": load.connections,
        "window_s": load.secs,
        "engine_consumed_events_per_s": {
            "no_lookups": idle.0,
            "single_lookups": single.0,
            "batch_lookups": batch.0,
        },
        "ingest_with_single_over_without": single.0 / idle.0,
        "ingest_with_batch_over_without": batch.0 / idle.0,
        "single": single.1,
        "batch": batch.1,
    }))
}

/// The three equal windows, one after the other: no lookups, single lookups, batch lookups;
/// each with the engine's consumed events per second and wrk's report.
fn three_windows(
    engine: &RunningEngine,
    service: &QueryService,
    skus: &Path,
    load: &ApiLoad,
) -> Result<[(f64, Value); 3]> {
    let window = Duration::from_secs_f64(load.secs);
    let url = format!("http://{}", service.addr());
    let idle = consumed_during(engine, window, || Ok(Value::Null))?;
    let single = consumed_during(engine, window, || wrk(load, &url, SINGLE_LUA, skus, 1))?;
    let batch = consumed_during(engine, window, || {
        wrk(load, &url, BATCH_LUA, skus, BATCH_SKUS)
    })?;
    Ok([idle, single, batch])
}

/// Seconds of the steady stream: three windows, the 2 s settling, each wrk run's start and end,
/// and a margin.
fn steady_secs(load: &ApiLoad) -> f64 {
    3.0 * load.secs + 10.0
}

/// Real events of the steady stream when each is replayed `clones` times.
fn steady_real(clones: u32, load: &ApiLoad) -> usize {
    ((load.rate * steady_secs(load)) as u64).div_ceil(u64::from(clones.max(1))) as usize
}

/// The SKU clones that make the `left` real events after priming last the steady stream: at
/// least `load.clones`, more when the rate is high (a faster engine's half load would otherwise
/// run out of input before the last window; each clone is a SKU of its own, so the view grows
/// with it, as a larger catalogue would).
fn clones_needed(left: usize, load: &ApiLoad) -> u32 {
    let mut clones = load.clones.max(1);
    while steady_real(clones, load) > left && clones < u32::MAX / 2 {
        clones *= 2;
    }
    clones
}

/// Replays `part` at the steady rate on a thread of its own.
fn spawn_steady(
    kafka: &KafkaSettings,
    part: Vec<EventRecord>,
    load: &ApiLoad,
) -> std::thread::JoinHandle<Result<replay::ReplaySummary, replay::ReplayError>> {
    let kafka = kafka.clone();
    let options = ReplayOptions {
        speed: None,
        rate: Some(load.rate),
        clones: load.clones,
        progress: false,
    };
    std::thread::spawn(move || replay::run(&kafka, part, &options))
}

/// Waits until the engine has consumed `n` events.
fn wait_for(engine: &RunningEngine, n: u64, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    while engine.stats().total_consumed() < n {
        if engine.has_failed() || started.elapsed() > timeout {
            bail!(
                "the engine consumed {} of {n} primed events",
                engine.stats().total_consumed()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Distinct SKUs of `events` (and their clones) that the view answers for, in a form safe in a
/// URL path and a JSON string without escaping.
fn answered_skus(service: &QueryService, events: &[EventRecord], clones: u32) -> Vec<String> {
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '~' | '-' | '_' | '.'))
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in events {
        for k in 0..clones {
            let sku = clone_sku(e.sku(), k);
            if plain(&sku)
                && seen.insert(sku.clone())
                && service.view().latest(Output::Forecasts, &sku).is_some()
            {
                out.push(sku);
            }
        }
    }
    out
}

/// A file in the temporary folder, removed when dropped (wrk reads its script and SKU list from
/// files).
struct TempText(PathBuf);

impl TempText {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempText {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            tracing::debug!(path = %self.0.display(), error = %e, "temporary file not removed");
        }
    }
}

fn tempfile_with(text: &str) -> Result<TempText> {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "trendcast-bench-api-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = TempText(path);
    let mut f = std::fs::File::create(file.path())
        .with_context(|| format!("creating {}", file.path().display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", file.path().display()))?;
    Ok(file)
}

/// Runs `work` and returns the engine's consumed events per second meanwhile, with its result.
fn consumed_during(
    engine: &RunningEngine,
    window: Duration,
    work: impl FnOnce() -> Result<Value>,
) -> Result<(f64, Value)> {
    let start = engine.stats().total_consumed();
    let started = Instant::now();
    let value = work()?;
    let rest = window.saturating_sub(started.elapsed());
    std::thread::sleep(rest);
    let rate = (engine.stats().total_consumed() - start) as f64 / started.elapsed().as_secs_f64();
    Ok((rate.round(), value))
}

/// One wrk run with `script`; lookups per second count `per_request` SKUs per request.
fn wrk(load: &ApiLoad, url: &str, script: &str, skus: &Path, per_request: usize) -> Result<Value> {
    let lua = tempfile_with(script)?;
    let out = Command::new(load.wrk)
        .args(["-t2", "--latency"])
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.secs.round().max(1.0)))
        .arg("-s")
        .arg(lua.path())
        .arg(url)
        .env("TRENDCAST_API_SKUS", skus)
        .env("TRENDCAST_API_BATCH", per_request.to_string())
        .output()
        .with_context(|| format!("running {}", load.wrk.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let requests = wrk_figure(&text, "Requests/sec:").context("wrk's Requests/sec")?;
    let latency = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p).map(str::trim).and_then(millis))
    };
    let errors: f64 = wrk_figure(&text, "Non-2xx or 3xx responses:").unwrap_or(0.0);
    // timed-out requests are left out of wrk's latency figures: a run with any is not reported
    if errors > 0.0 || text.contains("Socket errors:") {
        bail!("wrk saw failed requests, so its figures would flatter the API:\n{text}");
    }
    Ok(json!({
        "requests_per_s": requests.round(),
        "lookups_per_s": (requests * per_request as f64).round(),
        "skus_per_request": per_request,
        "latency_ms": {"p50": latency("50%"), "p90": latency("90%"), "p99": latency("99%")},
    }))
}

/// The number after `label` on its line of wrk's report.
fn wrk_figure(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
}

/// A wrk duration ("812.00us", "1.23ms", "2.01s") in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(v) = text.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_durations_and_figures() {
        assert_eq!(millis("812.00us"), Some(0.812));
        assert_eq!(millis("1.50ms"), Some(1.5));
        assert_eq!(millis("2.00s"), Some(2000.0));
        assert_eq!(millis("12"), None);
        let report = "Running 5s test\n  Latency Distribution\n     50%  210.00us\n     99%    3.10ms\n  1000 requests in 5.00s\nRequests/sec:  51234.56\nTransfer/sec: 10MB\n";
        assert_eq!(wrk_figure(report, "Requests/sec:"), Some(51234.56));
        assert_eq!(wrk_figure(report, "Non-2xx or 3xx responses:"), None);
    }
}
