//! Publishing: trend updates and dead letters go out through one shared Kafka producer.
//!
//! Data path position: ingest → window → scoring → **publish**.

pub mod encode;
pub mod producer;
pub mod trend_update;

pub use producer::{headers, MessageKind, PublishError, Publisher};
pub use trend_update::{Direction, HorizonStep, Trend, TrendUpdate};
