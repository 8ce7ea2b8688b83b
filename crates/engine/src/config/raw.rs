//! The configuration file as written by a user: plain, serde-decoded, unknown keys rejected.
//!
//! Stage one of two (as in ripgrep): this module only decodes and names every key. Stage two,
//! [`super::resolved`], checks values and turns them into typed components.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole configuration file (`config/default.toml` documents every key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Kafka connection, topics and pass-through client properties.
    pub kafka: RawKafka,
    /// Input decoding and validation limits.
    pub ingest: RawIngest,
    /// Event-time buckets and per-SKU windows.
    pub window: RawWindow,
    /// Model, batching and re-scoring cadence.
    pub scoring: RawScoring,
    /// Trend derivation from the forecast quantiles.
    pub trend: RawTrend,
    /// Logs and metrics.
    pub telemetry: RawTelemetry,
    /// Checkpoints of window state and input offsets.
    pub checkpoint: RawCheckpoint,
    /// `[signals]`.
    pub signals: RawSignals,
    /// `[api]`: the HTTP query API.
    pub api: RawApi,
    /// `[schema_registry]`: Avro inputs and framed outputs (the Confluent wire format).
    pub schema_registry: RawSchemaRegistry,
}

/// `[schema_registry]`: a Confluent Schema Registry (`crates/engine/src/publish/registry.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSchemaRegistry {
    /// Base URL (`http://host:8081` or `https://…`); empty = none.
    pub url: String,
    /// PEM file of CA certificates to trust besides the system's (a registry whose certificate
    /// a private CA signed); empty = the system's only.
    pub ca_location: String,
    /// `user:password` sent as HTTP basic auth (an API key and its secret, as Confluent clients'
    /// `basic.auth.user.info`); empty = none. Better set through
    /// `TRENDCAST_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO` than written in a file.
    pub basic_auth_user_info: String,
    /// Register the output schemas under `<topic>-value` at start and frame every output value
    /// with its schema id (magic byte 0 + 4-byte id). Needs `url`.
    pub frame_outputs: bool,
    /// The body of a framed output value: `json` (JSON Schema, the same bytes as unframed
    /// outputs) or `avro` (the schemas of `schemas/avro/`, registered as AVRO). `avro` needs
    /// `frame_outputs`: an Avro body cannot be read without its schema id.
    pub output_format: String,
    /// How long one request to the registry may take.
    pub timeout: String,
}

impl Default for RawSchemaRegistry {
    fn default() -> Self {
        Self {
            url: String::new(),
            ca_location: String::new(),
            basic_auth_user_info: String::new(),
            frame_outputs: false,
            output_format: "json".into(),
            timeout: "10s".into(),
        }
    }
}

/// `[api]`: the HTTP query API (`crates/engine/src/query/`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    /// Address of the query API; empty = off (`trendcast serve` needs one).
    pub listen: String,
}

/// `[kafka]`: brokers, topics and librdkafka properties.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKafka {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    /// Consumer group id.
    pub group_id: String,
    /// Static group membership (`group.instance.id`): "auto" derives a stable identity from the
    /// host name and the checkpoint folder, "" turns static membership off, anything else is
    /// used as is ("{hostname}" is replaced).
    pub group_instance_id: String,
    /// Topic of sales events.
    pub sales_topic: String,
    /// Topic of click events.
    pub clicks_topic: String,
    /// Topic trend updates are published to.
    pub output_topic: String,
    /// Topic rejected input is copied to, with the reason in headers.
    pub dead_letter_topic: String,
    /// Extra librdkafka properties for every client (TLS, SASL, tuning), passed through as is.
    pub properties: BTreeMap<String, String>,
}

impl Default for RawKafka {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "trendcast".into(),
            group_instance_id: "auto".into(),
            sales_topic: "sales".into(),
            clicks_topic: "clicks".into(),
            output_topic: "trend-updates".into(),
            dead_letter_topic: "trendcast-dead-letter".into(),
            properties: BTreeMap::new(),
        }
    }
}

/// `[ingest]`: what an acceptable input message looks like.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIngest {
    /// Largest accepted message value in bytes.
    pub max_payload_bytes: usize,
    /// Longest accepted SKU in bytes.
    pub max_sku_bytes: usize,
    /// Earliest accepted event time (RFC 3339).
    pub min_event_time: String,
    /// How far past the wall clock an event time may lie (e.g. "1d").
    pub max_future: String,
    /// Largest accepted absolute quantity in one sales event.
    pub max_abs_qty: f64,
    /// Largest accepted unit price.
    pub max_unit_price: f64,
    /// Reject input fields the schemas do not name, instead of skipping and counting them.
    pub strict_schema: bool,
    /// Pause the input partitions while more windows than this wait to be scored.
    pub max_scoring_backlog: usize,
    /// Pause the input partitions while more messages than this wait for the broker's ack.
    pub max_publish_in_flight: usize,
    /// How long an input partition with nothing to read still holds back bucket closes.
    pub idle_partition_hold: String,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_payload_bytes: 64 * 1024,
            max_sku_bytes: 128,
            min_event_time: "2000-01-01T00:00:00Z".into(),
            max_future: "1d".into(),
            max_abs_qty: 1_000_000.0,
            strict_schema: false,
            max_unit_price: 1_000_000.0,
            max_scoring_backlog: 100_000,
            max_publish_in_flight: 100_000,
            idle_partition_hold: "30s".into(),
        }
    }
}

/// `[window]`: bucket width, window length, lateness and state bounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWindow {
    /// Bucket width, from "1h" to "7d" (humantime syntax).
    pub bucket_width: String,
    /// Number of closed buckets the model sees per SKU.
    pub buckets: usize,
    /// How long after a bucket's end its events are still accepted.
    pub allowed_lateness: String,
    /// Upper bound on SKUs held in memory.
    pub max_skus: usize,
    /// Number of shards of the SKU map (0 = dashmap's default).
    pub shards: usize,
}

impl Default for RawWindow {
    fn default() -> Self {
        Self {
            bucket_width: "1d".into(),
            buckets: 28,
            allowed_lateness: "1h".into(),
            max_skus: 1_000_000,
            shards: 0,
        }
    }
}

/// `[scoring]`: model location, execution provider, batching and cadence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScoring {
    /// Path of the model manifest (JSON); the model file is resolved beside it.
    pub manifest: String,
    /// Path of `libonnxruntime.so`; empty means the `ORT_DYLIB_PATH` environment variable.
    pub onnxruntime_library: String,
    /// "cpu" or "cuda" (CUDA needs the `cuda` cargo feature; falls back to CPU with a warning).
    pub execution_provider: String,
    /// Largest number of windows scored in one model call.
    pub batch_size: usize,
    /// Longest wait for a batch to fill before scoring what is there.
    pub batch_delay: String,
    /// Shortest time between two scorings of one SKU within one closed bucket.
    pub min_rescore_interval: String,
    /// ONNX Runtime intra-op threads.
    pub intra_threads: usize,
    /// `[scoring.calibration]`: the online interval calibration.
    pub calibration: RawCalibration,
}

/// `[scoring.calibration]`: adaptive conformal widths per horizon step
/// (`scoring/calibration.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCalibration {
    /// Adjust published intervals with the actuals as buckets close.
    pub online: bool,
    /// Speed: change of the log width per closed bucket per unit of excess miss rate.
    pub gamma: f64,
    /// Most SKUs whose published bands are kept for comparison at once.
    pub max_tracked: usize,
}

impl Default for RawCalibration {
    fn default() -> Self {
        let d = crate::scoring::calibration::OnlineSettings::default();
        Self {
            online: d.enabled,
            gamma: d.gamma,
            max_tracked: d.max_tracked,
        }
    }
}

impl Default for RawScoring {
    fn default() -> Self {
        Self {
            manifest: "models/trendcast-demand/manifest.json".into(),
            onnxruntime_library: String::new(),
            execution_provider: "cpu".into(),
            batch_size: 256,
            batch_delay: "20ms".into(),
            min_rescore_interval: "1s".into(),
            intra_threads: 1,
            calibration: RawCalibration::default(),
        }
    }
}

/// `[trend]`: the trend definition (docs/TRENDS.md). Both keys default to the model's direction
/// classifier's own (its probabilities are of that event), or 0.2 and 1.0 for a model without one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrend {
    /// |strength| at or below which the direction is "flat".
    pub flat_band: Option<f64>,
    /// Floor of the recent level in the strength's denominator, in units per bucket.
    pub level_floor: Option<f64>,
}

/// `[telemetry]`: logs and Prometheus metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTelemetry {
    /// "human" or "json".
    pub log_format: String,
    /// tracing filter, e.g. "info" or "trendcast=debug".
    pub log_level: String,
    /// Address of the Prometheus endpoint and the health probes; empty disables them.
    pub metrics_listen: String,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        Self {
            log_format: "human".into(),
            log_level: "info".into(),
            metrics_listen: "127.0.0.1:9464".into(),
        }
    }
}

/// `[checkpoint]`: where window state and input offsets are saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCheckpoint {
    /// Local directory for per-partition checkpoint logs; empty = none.
    pub dir: String,
    /// Changelog topic (created with the inputs' partition count when missing); empty = none.
    /// `{group_id}` is replaced by the consumer group.
    pub changelog_topic: String,
    /// Time between periodic checkpoints.
    pub interval: String,
    /// The interval stretches to this many times the last checkpoint's duration when that is
    /// longer; 0 keeps it fixed.
    pub cost_ratio: u32,
    /// Every this many checkpoints a partition's local log is rewritten as a full snapshot.
    pub compact_every: u32,
}

impl Default for RawCheckpoint {
    fn default() -> Self {
        Self {
            dir: "state".into(),
            changelog_topic: "{group_id}-changelog".into(),
            interval: "5s".into(),
            cost_ratio: 10,
            compact_every: 20,
        }
    }
}

/// `[signals]`: restock signals and the hot-products ranking.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSignals {
    /// Runs the signals component (a second consumer group on the trend-update topic).
    pub enabled: bool,
    /// Inventory snapshots; "" = no restock signals.
    pub inventory_topic: String,
    /// Restock signals out.
    pub restock_topic: String,
    /// Hot-product rankings out; "" = none.
    pub hot_products_topic: String,
    /// Default replenishment lead time, days.
    pub lead_time_days: f64,
    /// Default cycle service level in [0.5, 1).
    pub service_level: f64,
    /// Days between orders (order-up-to covers lead time + this).
    pub review_period_days: f64,
    /// Relative change of the recommended quantity published again while below the reorder point.
    pub material_change: f64,
    /// How often a changed ranking is published.
    pub hot_interval: String,
    /// Entries per ranking.
    pub hot_top: usize,
    /// Smallest expected units over the horizon for a ranked SKU.
    pub hot_min_volume: f64,
    /// Oldest forecast ranked, behind the newest one seen.
    pub hot_max_age: String,
    /// Catalog entries (product text); "" = no new-product forecasts.
    pub catalog_topic: String,
    /// New-product forecasts out.
    pub new_product_topic: String,
    /// Folder of the converted text model (model.onnx, tokenizer.json, text_model.json).
    pub text_model: String,
    /// Launch library from `trendcast cold-start --write-library`.
    pub launch_library: String,
    /// Days of history over which a SKU's own forecast takes over from the text forecast.
    pub blend_days: f64,
    /// Changelog topic of the signal state; "{group_id}" is replaced by kafka.group_id; "" = none.
    pub changelog_topic: String,
}

impl Default for RawSignals {
    fn default() -> Self {
        Self {
            enabled: false,
            inventory_topic: String::new(),
            restock_topic: "restock-signals".into(),
            hot_products_topic: "hot-products".into(),
            lead_time_days: 7.0,
            service_level: 0.95,
            review_period_days: 7.0,
            material_change: 0.2,
            hot_interval: "10s".into(),
            hot_top: crate::signals::hot::DEFAULT_TOP,
            hot_min_volume: crate::signals::hot::DEFAULT_MIN_VOLUME,
            hot_max_age: format!("{}d", crate::signals::hot::DEFAULT_MAX_AGE_DAYS),
            catalog_topic: String::new(),
            new_product_topic: "new-product-forecasts".into(),
            text_model: String::new(),
            launch_library: String::new(),
            blend_days: 28.0,
            changelog_topic: "{group_id}-signals-changelog".into(),
        }
    }
}
