//! Stage two of configuration: validated, typed settings for each component.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::DateTime;

use super::raw::{
    RawCalibration, RawCheckpoint, RawIngest, RawKafka, RawSchemaRegistry, RawScoring,
    RawTelemetry, RawWindow,
};
use super::{ConfigError, RawConfig};
use crate::ingest::{Backpressure, ValidationLimits};
use crate::kafka::KafkaSettings;
use crate::publish::{RegistryAccess, RegistryError, SchemaRegistry};
use crate::scoring::calibration::OnlineSettings;
use crate::scoring::trend::TrendConfig;
use crate::scoring::{ExecutionProviderKind, ScoringSettings};
use crate::telemetry::{LogFormat, TelemetrySettings};
use crate::window::{BucketSpec, WindowSettings};

/// Every component's settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Brokers, topics and client properties.
    pub kafka: KafkaSettings,
    /// Input validation limits (`[ingest]`'s limits on payloads, SKUs, times, quantities and
    /// prices).
    pub validation: ValidationLimits,
    /// When ingest stops reading its partitions.
    pub backpressure: Backpressure,
    /// Bucketing and window bounds.
    pub window: WindowSettings,
    /// Model and batching.
    pub scoring: ScoringSettings,
    /// Trend derivation.
    pub trend: TrendConfig,
    /// Logs and metrics.
    pub telemetry: TelemetrySettings,
    /// `[checkpoint]`.
    pub checkpoint: crate::checkpoint::CheckpointSettings,
    /// `ingest.idle_partition_hold`: how long a caught-up input partition still holds back
    /// bucket closes.
    pub idle_partition_hold: Duration,
    /// The query API's address, when `[api] listen` is set.
    pub api_listen: Option<SocketAddr>,
    /// The signals component, when `[signals] enabled`.
    pub signals: Option<crate::signals::SignalsSettings>,
    /// The Schema Registry, when `[schema_registry] url` is set: Avro inputs are read through
    /// it, and framed outputs registered with it.
    pub schema_registry: Option<RegistrySettings>,
}

/// A Confluent Schema Registry (`[schema_registry]`).
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Base URL.
    pub url: String,
    /// Longest wait for one request.
    pub timeout: Duration,
    /// Register the output schemas and frame output values with their ids.
    pub frame_outputs: bool,
    /// The body of a framed output value.
    pub output_format: OutputFormat,
    /// The CA certificates (read from `ca_location`) and credentials it is reached with.
    pub access: RegistryAccess,
}

/// The body of a framed output value (`[schema_registry] output_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON, registered as its JSON Schema.
    Json,
    /// Avro, registered as the schema of `schemas/avro/`.
    Avro,
}

impl RegistrySettings {
    /// A client of this registry.
    pub fn client(&self) -> Result<SchemaRegistry, RegistryError> {
        SchemaRegistry::new(&self.url, self.timeout, &self.access)
    }
}

/// `[schema_registry]`: `Some` when a registry is named.
fn resolve_registry(r: &RawSchemaRegistry) -> Result<Option<RegistrySettings>, ConfigError> {
    let timeout = duration("schema_registry.timeout", &r.timeout)?;
    if timeout.is_zero() {
        return Err(invalid("schema_registry.timeout", "must be above 0"));
    }
    let output_format = match r.output_format.trim() {
        f if f.eq_ignore_ascii_case("json") => OutputFormat::Json,
        f if f.eq_ignore_ascii_case("avro") => OutputFormat::Avro,
        other => {
            return Err(invalid(
                "schema_registry.output_format",
                format!("{other:?}: json or avro"),
            ))
        }
    };
    if output_format == OutputFormat::Avro && !r.frame_outputs {
        return Err(invalid(
            "schema_registry.output_format",
            "avro needs schema_registry.frame_outputs = true: an Avro body is read by its schema id",
        ));
    }
    let url = r.url.trim();
    if url.is_empty() {
        return match r.frame_outputs {
            true => Err(invalid(
                "schema_registry.frame_outputs",
                "needs schema_registry.url: the schema ids come from the registry",
            )),
            false => Ok(None),
        };
    }
    let host = ["http://", "https://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    });
    if host.is_none_or(|h| h.trim_matches('/').is_empty()) {
        return Err(invalid(
            "schema_registry.url",
            format!("{url:?}: an http:// or https:// URL with a host"),
        ));
    }
    Ok(Some(RegistrySettings {
        url: url.to_string(),
        timeout,
        frame_outputs: r.frame_outputs,
        output_format,
        access: registry_access(r)?,
    }))
}

/// The CA certificates (the file read now, so a wrong path fails the start) and credentials of
/// `[schema_registry]`.
fn registry_access(r: &RawSchemaRegistry) -> Result<RegistryAccess, ConfigError> {
    let ca_location = r.ca_location.trim();
    let ca_pem = match ca_location.is_empty() {
        true => None,
        false => Some(std::fs::read_to_string(ca_location).map_err(|e| {
            invalid(
                "schema_registry.ca_location",
                format!("cannot read {ca_location:?}: {e}"),
            )
        })?),
    };
    let user_info = r.basic_auth_user_info.trim();
    if !user_info.is_empty() && !user_info.contains(':') {
        return Err(invalid(
            "schema_registry.basic_auth_user_info",
            "must be user:password (an API key and its secret)",
        ));
    }
    Ok(RegistryAccess {
        ca_pem,
        user_info: (!user_info.is_empty()).then(|| user_info.to_string()),
    })
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn duration(key: &'static str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text)
        .map_err(|e| invalid(key, format!("{e} (e.g. \"1d\", \"30m\", \"20ms\")")))
}

fn non_empty(key: &'static str, text: &str) -> Result<String, ConfigError> {
    if text.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(text.to_string())
}

fn positive(key: &'static str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(value)
}

impl Settings {
    /// Validates `raw` and builds the typed settings, one section at a time.
    pub fn resolve(raw: &RawConfig) -> Result<Self, ConfigError> {
        let mut kafka = resolve_kafka(&raw.kafka)?;
        let i = &raw.ingest;
        let validation = resolve_validation(i)?;
        let backpressure = Backpressure {
            max_scoring_backlog: positive("ingest.max_scoring_backlog", i.max_scoring_backlog)?,
            max_publish_in_flight: positive(
                "ingest.max_publish_in_flight",
                i.max_publish_in_flight,
            )?,
        };
        let idle_partition_hold = duration("ingest.idle_partition_hold", &i.idle_partition_hold)?;
        let window = resolve_window(&raw.window)?;
        let scoring = resolve_scoring(&raw.scoring)?;
        let t = &raw.trend;
        let trend = TrendConfig {
            flat_band: t
                .flat_band
                .map(|v| finite_positive("trend.flat_band", v))
                .transpose()?,
            level_floor: t
                .level_floor
                .map(|v| finite_positive("trend.level_floor", v))
                .transpose()?,
        };
        let telemetry = resolve_telemetry(&raw.telemetry)?;
        let checkpoint = resolve_checkpoint(&raw.checkpoint, &kafka)?;
        kafka.group_instance_id = crate::kafka::instance_identity(
            &raw.kafka.group_instance_id,
            checkpoint.dir.as_deref(),
        );
        let mut scoring = scoring;
        let signals = resolve_signals(&raw.signals, &kafka, &validation, &checkpoint, &scoring)?;
        // with restock signals, updates also carry the total over the lead time
        scoring.lead_time = signals
            .as_ref()
            .map(|s| Duration::from_secs_f64(s.policy.lead_time_days * 86_400.0));
        let api_listen = listen_address("api.listen", &raw.api.listen)?;
        if api_listen.is_some() && api_listen == telemetry.metrics_listen {
            return Err(invalid(
                "api.listen",
                "must differ from telemetry.metrics_listen (two listeners cannot share an address)",
            ));
        }
        let schema_registry = resolve_registry(&raw.schema_registry)?;
        Ok(Self {
            signals,
            schema_registry,
            api_listen,
            kafka,
            validation,
            backpressure,
            window,
            scoring,
            trend,
            telemetry,
            checkpoint,
            idle_partition_hold,
        })
    }
}

/// `[kafka]`; the group instance id is set once the checkpoint folder is known.
fn resolve_kafka(k: &RawKafka) -> Result<KafkaSettings, ConfigError> {
    let kafka = KafkaSettings {
        group_instance_id: None,
        brokers: non_empty("kafka.brokers", &k.brokers)?,
        group_id: non_empty("kafka.group_id", &k.group_id)?,
        sales_topic: non_empty("kafka.sales_topic", &k.sales_topic)?,
        clicks_topic: non_empty("kafka.clicks_topic", &k.clicks_topic)?,
        output_topic: non_empty("kafka.output_topic", &k.output_topic)?,
        dead_letter_topic: non_empty("kafka.dead_letter_topic", &k.dead_letter_topic)?,
        properties: k.properties.clone(),
    };
    if kafka.sales_topic == kafka.clicks_topic {
        return Err(invalid(
            "kafka.clicks_topic",
            "must differ from kafka.sales_topic",
        ));
    }
    Ok(kafka)
}

/// The input validation limits of `[ingest]`.
fn resolve_validation(i: &RawIngest) -> Result<ValidationLimits, ConfigError> {
    let min_ts = DateTime::parse_from_rfc3339(&i.min_event_time)
        .map_err(|e| invalid("ingest.min_event_time", format!("not RFC 3339: {e}")))?;
    Ok(ValidationLimits {
        max_payload_bytes: positive("ingest.max_payload_bytes", i.max_payload_bytes)?,
        max_sku_bytes: positive("ingest.max_sku_bytes", i.max_sku_bytes)?,
        min_ts_ms: min_ts.timestamp_millis(),
        max_future_ms: duration("ingest.max_future", &i.max_future)?.as_millis() as i64,
        max_abs_qty: finite_positive("ingest.max_abs_qty", i.max_abs_qty)?,
        max_unit_price: finite_positive("ingest.max_unit_price", i.max_unit_price)?,
        strict_schema: i.strict_schema,
    })
}

/// `[window]`: whole-hour buckets up to a week, lateness within four buckets.
fn resolve_window(w: &RawWindow) -> Result<WindowSettings, ConfigError> {
    let width = duration("window.bucket_width", &w.bucket_width)?;
    let hour = Duration::from_secs(3600);
    if width < hour || width > hour * 24 * 7 || width.as_secs() % 3600 != 0 {
        return Err(invalid(
            "window.bucket_width",
            format!(
                "{} is not a whole number of hours between 1h and 7d",
                w.bucket_width
            ),
        ));
    }
    let lateness = duration("window.allowed_lateness", &w.allowed_lateness)?;
    if lateness > width * 4 {
        return Err(invalid(
            "window.allowed_lateness",
            "must not exceed four bucket widths (state would have to keep that many open buckets)",
        ));
    }
    let window = WindowSettings {
        bucket: BucketSpec::new(width.as_millis() as i64),
        buckets: positive("window.buckets", w.buckets)?,
        lateness_ms: lateness.as_millis() as i64,
        max_skus: positive("window.max_skus", w.max_skus)?,
        shards: w.shards,
    };
    if window.buckets > 4096 {
        return Err(invalid("window.buckets", "must be at most 4096"));
    }
    if w.shards != 0 && !w.shards.is_power_of_two() {
        return Err(invalid(
            "window.shards",
            "must be 0 (default) or a power of two",
        ));
    }
    Ok(window)
}

/// `[scoring]`.
fn resolve_scoring(s: &RawScoring) -> Result<ScoringSettings, ConfigError> {
    let provider = match s.execution_provider.as_str() {
        "cpu" => ExecutionProviderKind::Cpu,
        "cuda" => ExecutionProviderKind::Cuda,
        other => {
            return Err(invalid(
                "scoring.execution_provider",
                format!("{other:?} is not one of \"cpu\", \"cuda\""),
            ))
        }
    };
    Ok(ScoringSettings {
        manifest: PathBuf::from(non_empty("scoring.manifest", &s.manifest)?),
        onnxruntime_library: (!s.onnxruntime_library.is_empty())
            .then(|| PathBuf::from(&s.onnxruntime_library)),
        provider,
        batch_size: positive("scoring.batch_size", s.batch_size)?,
        batch_delay: duration("scoring.batch_delay", &s.batch_delay)?,
        min_rescore_interval: duration("scoring.min_rescore_interval", &s.min_rescore_interval)?,
        intra_threads: positive("scoring.intra_threads", s.intra_threads)?,
        online: resolve_calibration(&s.calibration)?,
        lead_time: None,
    })
}

/// `[scoring.calibration]`.
fn resolve_calibration(c: &RawCalibration) -> Result<OnlineSettings, ConfigError> {
    if !(c.gamma.is_finite() && c.gamma > 0.0 && c.gamma <= 10.0) {
        return Err(invalid("scoring.calibration.gamma", "must be in (0, 10]"));
    }
    Ok(OnlineSettings {
        enabled: c.online,
        gamma: c.gamma,
        max_tracked: c.max_tracked,
        ..OnlineSettings::default()
    })
}

/// `[telemetry]`.
fn resolve_telemetry(tl: &RawTelemetry) -> Result<TelemetrySettings, ConfigError> {
    let log_format = match tl.log_format.as_str() {
        "human" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                "telemetry.log_format",
                format!("{other:?} is not one of \"human\", \"json\""),
            ))
        }
    };
    let metrics_listen = listen_address("telemetry.metrics_listen", &tl.metrics_listen)?;
    Ok(TelemetrySettings {
        log_format,
        log_level: tl.log_level.clone(),
        metrics_listen,
    })
}

/// `[checkpoint]`: its changelog topic must be none of the engine's other topics.
fn resolve_checkpoint(
    c: &RawCheckpoint,
    kafka: &KafkaSettings,
) -> Result<crate::checkpoint::CheckpointSettings, ConfigError> {
    let non_blank = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
    let checkpoint = crate::checkpoint::CheckpointSettings {
        dir: non_blank(&c.dir).map(std::path::PathBuf::from),
        changelog_topic: non_blank(&c.changelog_topic)
            .map(|t| t.replace("{group_id}", &kafka.group_id)),
        interval: duration("checkpoint.interval", &c.interval)?,
        cost_ratio: c.cost_ratio,
        compact_every: positive("checkpoint.compact_every", c.compact_every as usize)? as u32,
    };
    if checkpoint.interval < Duration::from_millis(100) {
        return Err(invalid("checkpoint.interval", "must be at least 100ms"));
    }
    if checkpoint.changelog_topic.as_deref().is_some_and(|t| {
        [
            &kafka.sales_topic,
            &kafka.clicks_topic,
            &kafka.output_topic,
            &kafka.dead_letter_topic,
        ]
        .contains(&&t.to_string())
    }) {
        return Err(invalid(
            "checkpoint.changelog_topic",
            "must differ from the input, output and dead-letter topics",
        ));
    }
    Ok(checkpoint)
}

/// An optional listen address: empty = none.
fn listen_address(key: &'static str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    value
        .trim()
        .parse::<SocketAddr>()
        .map(Some)
        .map_err(|e| invalid(key, format!("{value:?} is not an address: {e}")))
}

fn finite_positive(key: &'static str, value: f64) -> Result<f64, ConfigError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(invalid(key, "must be a finite number above 0"));
    }
    Ok(value)
}

fn resolve_signals(
    r: &super::raw::RawSignals,
    kafka: &KafkaSettings,
    validation: &ValidationLimits,
    checkpoint: &crate::checkpoint::CheckpointSettings,
    scoring: &ScoringSettings,
) -> Result<Option<crate::signals::SignalsSettings>, ConfigError> {
    use crate::signals::SignalsSettings;
    if !r.enabled {
        return Ok(None);
    }
    let non_blank = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
    let inventory_topic = non_blank(&r.inventory_topic);
    let hot_topic = non_blank(&r.hot_products_topic);
    let catalog_topic = non_blank(&r.catalog_topic);
    let new_product_topic = non_empty("signals.new_product_topic", &r.new_product_topic)?;
    let restock_topic = non_empty("signals.restock_topic", &r.restock_topic)?;
    let changelog_topic =
        non_blank(&r.changelog_topic).map(|t| t.replace("{group_id}", &kafka.group_id));
    let inputs = [&kafka.sales_topic, &kafka.clicks_topic, &kafka.output_topic];
    for (key, topic) in [
        ("signals.inventory_topic", inventory_topic.as_ref()),
        ("signals.restock_topic", Some(&restock_topic)),
        ("signals.hot_products_topic", hot_topic.as_ref()),
        ("signals.catalog_topic", catalog_topic.as_ref()),
        ("signals.new_product_topic", Some(&new_product_topic)),
        ("signals.changelog_topic", changelog_topic.as_ref()),
    ] {
        if topic.is_some_and(|t| inputs.contains(&t) || *t == kafka.dead_letter_topic) {
            return Err(invalid(
                key,
                "must differ from the sales, clicks, trend-update and dead-letter topics",
            ));
        }
    }
    if inventory_topic.is_none() && hot_topic.is_none() && catalog_topic.is_none() {
        return Err(invalid(
            "signals.enabled",
            "none of signals.inventory_topic, hot_products_topic, catalog_topic is set: nothing to do",
        ));
    }
    let text_model = non_blank(&r.text_model).map(PathBuf::from);
    let launch_library = non_blank(&r.launch_library).map(PathBuf::from);
    if catalog_topic.is_some() && (text_model.is_none() || launch_library.is_none()) {
        return Err(invalid(
            "signals.catalog_topic",
            "needs signals.text_model and signals.launch_library",
        ));
    }
    if !(r.blend_days.is_finite() && r.blend_days >= 1.0) {
        return Err(invalid("signals.blend_days", "must be at least 1"));
    }
    let policy = resolve_restock_policy(r)?;
    let hot = resolve_hot(r)?;
    let group_id = format!("{}-signals", kafka.group_id);
    Ok(Some(SignalsSettings {
        group_id,
        changelog_topic,
        updates_topic: kafka.output_topic.clone(),
        inventory_topic,
        restock_topic,
        hot_topic,
        catalog_topic,
        new_product_topic,
        text_model,
        launch_library,
        blend_days: r.blend_days,
        onnxruntime_library: scoring.onnxruntime_library.clone(),
        horizon_days: 14,
        policy,
        hot,
        hot_interval: duration("signals.hot_interval", &r.hot_interval)?,
        checkpoint_interval: checkpoint.interval,
        max_sku_bytes: validation.max_sku_bytes,
        min_ts_ms: validation.min_ts_ms,
        max_future_ms: validation.max_future_ms,
    }))
}

/// The restock policy of `[signals]`.
fn resolve_restock_policy(
    r: &super::raw::RawSignals,
) -> Result<crate::signals::RestockPolicy, ConfigError> {
    if !(r.lead_time_days.is_finite()
        && r.lead_time_days > 0.0
        && r.lead_time_days <= crate::signals::inventory::MAX_LEAD_TIME_DAYS)
    {
        return Err(invalid("signals.lead_time_days", "must be in (0, 365]"));
    }
    if !(r.service_level.is_finite() && (0.5..1.0).contains(&r.service_level)) {
        return Err(invalid("signals.service_level", "must be in [0.5, 1)"));
    }
    if !(r.review_period_days.is_finite() && (0.0..=365.0).contains(&r.review_period_days)) {
        return Err(invalid("signals.review_period_days", "must be in [0, 365]"));
    }
    Ok(crate::signals::RestockPolicy {
        lead_time_days: r.lead_time_days,
        service_level: r.service_level,
        review_period_days: r.review_period_days,
        material_change: finite_positive("signals.material_change", r.material_change)?,
    })
}

/// The hot-products ranking of `[signals]`.
fn resolve_hot(r: &super::raw::RawSignals) -> Result<crate::signals::HotSettings, ConfigError> {
    if !(r.hot_min_volume.is_finite() && r.hot_min_volume >= 0.0) {
        return Err(invalid(
            "signals.hot_min_volume",
            "must be a finite number ≥ 0",
        ));
    }
    Ok(crate::signals::HotSettings {
        top: positive("signals.hot_top", r.hot_top)?,
        min_volume: r.hot_min_volume,
        max_age_ms: duration("signals.hot_max_age", &r.hot_max_age)?.as_millis() as i64,
    })
}
