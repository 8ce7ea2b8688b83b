//! The ceiling of the query API's HTTP stack on this machine: an axum server with the API's own
//! runtime (one current-thread tokio runtime, or `--threads N` workers) answering every
//! `GET /v1/forecasts/{sku}` with the same fixed body, no view, no lock, no engine. What a load
//! generator measures against it is the most lookups per second that axum, hyper, the kernel's
//! loopback and the load generator itself leave on these cores: the query API can do no better.
//!
//! ```sh
//! cargo run --release --example http_ceiling -- --listen 127.0.0.1:18080 --body-bytes 1500
//! wrk -t2 -c32 -d10s --latency http://127.0.0.1:18080/v1/forecasts/85123A
//! ```
//!
//! The server stops after `--secs` (default 60) seconds.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use axum::Router;

struct Args {
    listen: String,
    body_bytes: usize,
    threads: usize,
    secs: u64,
}

fn args() -> Result<Args> {
    let mut parsed = Args {
        listen: "127.0.0.1:18080".into(),
        body_bytes: 1_500,
        threads: 1,
        secs: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => parsed.listen = value,
            "--body-bytes" => parsed.body_bytes = value.parse().context("--body-bytes")?,
            "--threads" => parsed.threads = value.parse().context("--threads")?,
            "--secs" => parsed.secs = value.parse().context("--secs")?,
            other => bail!("unknown flag {other} (--listen, --body-bytes, --threads, --secs)"),
        }
    }
    Ok(parsed)
}

fn main() -> Result<()> {
    let args = args()?;
    // a JSON object of the size of a published trend update
    let filler = "x".repeat(args.body_bytes.saturating_sub(12));
    let body = Bytes::from(format!("{{\"filler\":\"{filler}\"}}"));
    let app = Router::new().route(
        "/v1/forecasts/{sku}",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        eprintln!("serving on {} for {} s", args.listen, args.secs);
        let stop = tokio::time::sleep(Duration::from_secs(args.secs));
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .context("serving")
    })
}
