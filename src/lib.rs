//! trendcast: a streaming demand- and trend-forecast engine.
//!
//! This package is the `trendcast` binary and a thin facade over the two library crates of the
//! workspace, so that one name reaches every module:
//!
//! * `trendcast-engine` (the live path): [`ingest`] → [`window`] → [`scoring`] → [`publish`] →
//!   [`signals`] → [`query`], with [`checkpoint`], [`config`], [`telemetry`] and [`kafka`] beside
//!   it, [`vocab`] below everything, [`catalog`] for product text, and [`engine`] wiring them;
//! * `trendcast-tools` (offline): [`datasets`], [`replay`], [`export`], [`evaluate`], [`demo`],
//!   [`loadtest`] and [`report`].
//!
//! Each module's documentation lives in its crate.

#![warn(missing_docs)]

pub use trendcast_engine::{
    catalog, checkpoint, config, engine, ingest, kafka, publish, query, scoring, signals, state,
    telemetry, vocab, window,
};
pub use trendcast_tools::{datasets, demo, evaluate, export, loadtest, replay, report};
