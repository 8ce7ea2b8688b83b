//! trendcast-engine: what a running trendcast engine is made of.
//!
//! Retail platforms publish sales and click events to Kafka; the engine keeps a sliding window
//! of event-time buckets per SKU, scores changed windows in batches with an ONNX model, and
//! publishes per-SKU trend updates (quantile forecasts, direction, strength).
//!
//! The modules follow the data path — [`ingest`] → [`window`] → [`scoring`] → [`publish`] →
//! [`signals`] (restock signals, hot-product rankings and, with [`catalog`], new-product
//! forecasts derived from the published updates) → [`query`] (the HTTP query API over a global
//! view of the output topics) — with [`checkpoint`] (window state in the keyed per-partition
//! tables of [`state`], which signals use too), [`config`], [`telemetry`] and [`kafka`] beside
//! it, [`vocab`] (sources, events, reject reasons, event time and the engine clock) below
//! everything, and [`engine`] wiring them together.
//!
//! The offline tools (datasets, replay, export, evaluate, demo, load test, trend report) live in
//! the `trendcast-tools` crate on top of this one; this crate cannot import them, so a running
//! engine links none of the offline evaluators.

#![warn(missing_docs)]

pub mod catalog;
pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod ingest;
pub mod kafka;
pub mod publish;
pub mod query;
pub mod scoring;
pub mod signals;
pub mod state;
pub mod telemetry;
pub mod vocab;
pub mod window;
