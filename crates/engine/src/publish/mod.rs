//! Publishing: trend updates and dead letters go out through one shared Kafka producer.
//!
//! Data path position: ingest → window → scoring → **publish**.

pub mod encode;
pub mod producer;
pub mod trend_update;

pub use producer::{headers, MessageKind, PublishError, Publisher};

/// Header on every output message naming its schema (a file under `schemas/`) and version, so a
/// consumer can tell versions apart without parsing the body (`schemas/README.md`).
pub const SCHEMA_HEADER: &str = "trendcast-schema";
/// [`SCHEMA_HEADER`] of a trend update.
pub const TREND_UPDATE_SCHEMA: &str = "trend_update/1";
/// [`SCHEMA_HEADER`] of a restock signal.
pub const RESTOCK_SIGNAL_SCHEMA: &str = "restock_signal/1";
/// [`SCHEMA_HEADER`] of a hot-products ranking.
pub const HOT_PRODUCTS_SCHEMA: &str = "hot_products/1";
/// [`SCHEMA_HEADER`] of a new-product forecast.
pub const NEW_PRODUCT_SCHEMA: &str = "new_product_forecast/1";
pub use trend_update::{Direction, HorizonStep, Trend, TrendUpdate};
