//! trendcast-tools: the offline tools built on the engine library (`trendcast-engine`).
//!
//! They read what the engine reads and go through the same code: [`replay`] publishes a
//! historical log to the input topics, [`export`] copies windows out through the engine's
//! admission and window store for training, [`evaluate`] scores them with the serving code
//! against baselines (and evaluates new-product forecasts), [`datasets`] reads the bundled real
//! logs, [`demo`] runs the whole pipeline on them, [`loadtest`] measures it under load, and
//! [`report`] renders the trend report people read; [`update_check`] checks what a replay
//! publishes (coherence, interval coverage).
//!
//! Nothing on the live path depends on this crate.

#![warn(missing_docs)]

pub mod datasets;
pub mod demo;
pub mod evaluate;
pub mod export;
pub mod loadtest;
pub mod replay;
pub mod report;
pub mod update_check;
