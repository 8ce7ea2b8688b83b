//! trendcast: a streaming demand- and trend-forecast engine.
//!
//! Retail platforms publish sales and click events to Kafka; trendcast keeps a sliding window
//! of event-time buckets per SKU, scores changed windows in batches with an ONNX model, and
//! publishes per-SKU trend updates (quantile forecasts, direction, strength).
//!
//! The modules follow the data path — [`ingest`] → [`window`] → [`scoring`] → [`publish`] →
//! [`signals`] (restock signals and hot-product rankings derived from the published updates) →
//! [`query`] (the HTTP query API over a global view of the output topics) —
//! with [`config`], [`telemetry`] and [`kafka`] beside it, [`vocab`] (sources, events, reject
//! reasons) below everything, [`engine`] wiring them together, and
//! [`datasets`] / [`demo`] for the bundled real data, and [`report`] for the trend report people
//! read.

#![warn(missing_docs)]

pub mod catalog;
pub mod checkpoint;
pub mod config;
pub mod datasets;
pub mod demo;
pub mod engine;
pub mod evaluate;
pub mod export;
pub mod ingest;
pub mod kafka;
pub mod loadtest;
pub mod publish;
pub mod query;
pub mod replay;
pub mod report;
pub mod scoring;
pub mod signals;
pub mod telemetry;
pub mod vocab;
pub mod window;
