//! Publishing: trend updates and dead letters go out through one shared Kafka producer.
//!
//! Data path position: ingest → window → scoring → **publish**.

pub mod avro;
pub mod encode;
pub mod producer;
pub mod registry;
pub mod trend_update;

pub use producer::{headers, MessageKind, OutputFrame, PublishError, Publisher};
pub use registry::{RegisteredSchema, RegistryAccess, RegistryError, SchemaRegistry};

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
pub use trend_update::{Direction, HorizonStep, HorizonTotal, Trend, TrendUpdate};

/// One output message's schema: the file under `schemas/` (compiled in), the name it goes by
/// (the API document's component, the header's prefix) and its [`SCHEMA_HEADER`] value.
#[derive(Debug, Clone, Copy)]
pub struct OutputSchema {
    /// `trend_update`, `restock_signal`, `new_product_forecast` or `hot_products`.
    pub name: &'static str,
    /// The header value: name and version.
    pub header: &'static str,
    /// The JSON Schema's text.
    pub text: &'static str,
    /// The text of its Avro form (`schemas/avro/`), for `[schema_registry] output_format =
    /// "avro"`.
    pub avro: &'static str,
}

/// The trend update's schema.
pub const TREND_UPDATE: OutputSchema = OutputSchema {
    name: "trend_update",
    header: TREND_UPDATE_SCHEMA,
    text: include_str!("../../../../schemas/trend_update.schema.json"),
    avro: include_str!("../../../../schemas/avro/trend_update.avsc"),
};
/// The restock signal's schema.
pub const RESTOCK_SIGNAL: OutputSchema = OutputSchema {
    name: "restock_signal",
    header: RESTOCK_SIGNAL_SCHEMA,
    text: include_str!("../../../../schemas/restock_signal.schema.json"),
    avro: include_str!("../../../../schemas/avro/restock_signal.avsc"),
};
/// The new-product forecast's schema.
pub const NEW_PRODUCT_FORECAST: OutputSchema = OutputSchema {
    name: "new_product_forecast",
    header: NEW_PRODUCT_SCHEMA,
    text: include_str!("../../../../schemas/new_product_forecast.schema.json"),
    avro: include_str!("../../../../schemas/avro/new_product_forecast.avsc"),
};
/// The hot-products ranking's schema.
pub const HOT_PRODUCTS: OutputSchema = OutputSchema {
    name: "hot_products",
    header: HOT_PRODUCTS_SCHEMA,
    text: include_str!("../../../../schemas/hot_products.schema.json"),
    avro: include_str!("../../../../schemas/avro/hot_products.avsc"),
};

/// Every output message's schema.
pub const OUTPUT_SCHEMAS: [OutputSchema; 4] = [
    TREND_UPDATE,
    RESTOCK_SIGNAL,
    NEW_PRODUCT_FORECAST,
    HOT_PRODUCTS,
];
