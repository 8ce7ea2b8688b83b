//! The core vocabulary every part of the engine speaks: input sources, event bodies, the
//! reasons input is rejected, event time and the engine clock, and the Confluent wire format's
//! framing.
//!
//! It sits below everything else on purpose. Window state, checkpoints, telemetry and the
//! offline tools all need these types, and they used to import them from `ingest`, which itself
//! imports window state, checkpoints and telemetry: a cycle that made every folder depend on
//! every other. Here they depend on nothing but `serde` and `serde_json`
//! (`tests/module_graph.rs` keeps the module graph acyclic).

pub mod clock;
pub mod event;
pub mod wire;

pub use clock::{EngineMs, EventTime};
pub use event::{
    classify, ClickKind, Event, EventBody, PerSource, RejectReason, Rejection, Source,
};

/// One day in milliseconds: the daily bucket's width, the evaluation protocol's step and the
/// new-product forecasts' day. Event times are UTC epoch milliseconds, so every day has this many.
pub const DAY_MS: i64 = 86_400_000;

/// Quantile levels every trendcast forecast carries, and the evaluation scores.
pub const QUANTILE_LEVELS: [f64; 3] = [0.1, 0.5, 0.9];
