//! Configuration: a TOML file, overridden by `TRENDCAST_*` environment variables.
//!
//! Loading is two-stage. [`raw`] decodes the file and rejects unknown keys by name;
//! [`resolved`] validates every value and produces the typed settings the components take.
//! An environment variable `TRENDCAST_<SECTION>__<KEY>` (double underscore between levels)
//! overrides `<section>.<key>`, e.g. `TRENDCAST_KAFKA__BROKERS=host:9092`.

pub mod raw;
pub mod resolved;

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

pub use raw::RawConfig;
pub use resolved::{OutputFormat, RegistrySettings, Settings};

/// Why a configuration could not be loaded or resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or decoded (an unknown key is named in the message).
    #[error("configuration could not be read: {0}")]
    Load(Box<figment::Error>),
    /// A key holds a value that is out of range or malformed.
    #[error("configuration key `{key}` is invalid: {reason}")]
    Invalid {
        /// Dotted key path, e.g. `window.bucket_width`.
        key: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

/// Loads the raw configuration: defaults, then `file` (if given), then `TRENDCAST_*` variables.
pub fn load_raw(file: Option<&Path>) -> Result<RawConfig, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::Invalid {
                key: "--config",
                reason: format!("file {} does not exist", path.display()),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // Only section-qualified names are overrides; TRENDCAST_CONFIG and the scripts' own
    // TRENDCAST_* variables are not configuration keys.
    figment = figment.merge(
        Env::prefixed("TRENDCAST_")
            .filter(|key| key.as_str().contains("__"))
            .split("__")
            .lowercase(true),
    );
    figment
        .extract()
        .map_err(|e| ConfigError::Load(Box::new(e)))
}

/// Loads and resolves the configuration in one step.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    Settings::resolve(&load_raw(file)?)
}

/// Returns `raw` as TOML with secret-looking Kafka properties and the registry's credentials
/// replaced by `"<redacted>"`.
pub fn redacted_toml(raw: &RawConfig) -> String {
    let mut shown = raw.clone();
    for (key, value) in shown.kafka.properties.iter_mut() {
        if is_secret_key(key) {
            *value = "<redacted>".into();
        }
    }
    if !shown.schema_registry.basic_auth_user_info.is_empty() {
        shown.schema_registry.basic_auth_user_info = "<redacted>".into();
    }
    toml::to_string_pretty(&shown)
        .unwrap_or_else(|e| format!("# could not render configuration: {e}"))
}

/// True for librdkafka property names that hold credentials or private keys.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "ssl.key.pem",
        "sasl.jaas",
        "credentials",
    ]
    .iter()
    .any(|needle| k.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn unknown_key_is_named() {
        // inside a Jail: another test sets TRENDCAST_* variables (one with a misspelt section)
        // while it runs, and the Jail's lock keeps them from leaking into this one
        figment::Jail::expect_with(|_| {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("c.toml");
            std::fs::write(&path, "[window]\nbucket_widht = \"1d\"\n").expect("write");
            let err = load_raw(Some(&path)).expect_err("unknown key must fail");
            assert!(err.to_string().contains("bucket_widht"), "{err}");
            Ok(())
        });
    }

    /// Every key path of a JSON value ("kafka.brokers", ...); maps only, values are leaves.
    fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let serde_json::Value::Object(m) = v {
            for (k, child) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if child.is_object() && !child.as_object().is_some_and(|o| o.is_empty()) {
                    key_paths(child, &path, out);
                } else {
                    out.push(path);
                }
            }
        }
    }

    #[test]
    fn the_default_file_lists_every_key_with_its_built_in_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let text = std::fs::read_to_string(&path).expect("config/default.toml");
        let file: toml::Value = toml::from_str(&text).expect("default.toml is TOML");
        let file = serde_json::to_value(file).expect("as JSON");
        let builtin = serde_json::to_value(RawConfig::default()).expect("defaults as JSON");
        let (mut in_file, mut in_code) = (Vec::new(), Vec::new());
        key_paths(&file, "", &mut in_file);
        key_paths(&builtin, "", &mut in_code);
        // a key without a default (TOML has no null) is shown commented out: "# key = ..."
        let shown = |k: &String| {
            let leaf = k.rsplit('.').next().unwrap_or(k);
            in_file.contains(k)
                || builtin.pointer(&format!("/{}", k.replace('.', "/")))
                    == Some(&serde_json::Value::Null)
                    && text.contains(&format!("# {leaf} = "))
        };
        let missing: Vec<_> = in_code.iter().filter(|k| !shown(k)).collect();
        assert!(
            missing.is_empty(),
            "keys missing from config/default.toml: {missing:?}"
        );
        let parsed: RawConfig = toml::from_str(&text).expect("default.toml parses");
        let parsed = serde_json::to_value(parsed).expect("as JSON");
        let differ: Vec<_> = in_code
            .iter()
            .filter(|k| {
                let ptr = format!("/{}", k.replace('.', "/"));
                parsed.pointer(&ptr) != builtin.pointer(&ptr)
            })
            .collect();
        assert!(
            differ.is_empty(),
            "config/default.toml differs from the built-in defaults at {differ:?}"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn default_file_resolves() {
        // inside a Jail: the environment test sets TRENDCAST_* variables while it runs, and the
        // Jail's lock keeps the two from overlapping
        figment::Jail::expect_with(|_| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
            let raw = load_raw(Some(&path)).expect("default config loads");
            Settings::resolve(&raw).expect("default config resolves");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn environment_overrides_and_misspelled_sections_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRENDCAST_KAFKA__BROKERS", "b1:9092");
            jail.set_env("TRENDCAST_TEST_BROKERS", "ignored: no section");
            let raw = load_raw(None).expect("loads");
            assert_eq!(raw.kafka.brokers, "b1:9092");
            jail.set_env("TRENDCAST_KAFK__BROKERS", "x");
            let err = load_raw(None).expect_err("misspelled section");
            assert!(err.to_string().contains("kafk"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted() {
        let mut raw = RawConfig::default();
        raw.kafka
            .properties
            .insert("sasl.password".into(), "hunter2".into());
        raw.kafka
            .properties
            .insert("security.protocol".into(), "SASL_SSL".into());
        raw.schema_registry.basic_auth_user_info = "KEY:hunter3".into();
        let shown = redacted_toml(&raw);
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("hunter3"));
        assert!(shown.contains("SASL_SSL"));
    }

    #[test]
    fn the_query_api_listens_apart_from_the_metrics() {
        let mut raw = RawConfig::default();
        raw.api.listen = "127.0.0.1:8080".into();
        let settings = Settings::resolve(&raw).expect("a separate address resolves");
        assert_eq!(
            settings.api_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8080")
        );
        raw.api.listen = raw.telemetry.metrics_listen.clone();
        let err = Settings::resolve(&raw).expect_err("the metrics address is taken");
        assert!(err.to_string().contains("api.listen"), "{err}");
        raw.api.listen = "not an address".into();
        let err = Settings::resolve(&raw).expect_err("not an address");
        assert!(err.to_string().contains("api.listen"), "{err}");
        assert!(Settings::resolve(&RawConfig::default())
            .expect("defaults")
            .api_listen
            .is_none());
    }

    #[test]
    fn a_registry_is_http_or_https_and_framed_outputs_need_one() {
        let mut raw = RawConfig::default();
        assert!(Settings::resolve(&raw)
            .expect("defaults")
            .schema_registry
            .is_none());
        raw.schema_registry.frame_outputs = true;
        let err = Settings::resolve(&raw).expect_err("no url");
        assert!(
            err.to_string().contains("schema_registry.frame_outputs"),
            "{err}"
        );
        raw.schema_registry.url = "https://registry:8081".into();
        assert!(Settings::resolve(&raw).is_ok(), "https");
        for bad in ["http://", "https:///", "ftp://registry"] {
            raw.schema_registry.url = bad.into();
            assert!(Settings::resolve(&raw).is_err(), "{bad}");
        }
        raw.schema_registry.url = "HTTP://registry:8081/".into();
        raw.schema_registry.timeout = "0s".into();
        let err = Settings::resolve(&raw).expect_err("no time to answer");
        assert!(err.to_string().contains("schema_registry.timeout"), "{err}");
        raw.schema_registry.timeout = "5s".into();
        assert!(Settings::resolve(&raw).is_ok(), "the scheme in capitals");
        raw.schema_registry.url = "http://registry:8081/".into();
        let registry = Settings::resolve(&raw).expect("resolves").schema_registry;
        let registry = registry.expect("a registry");
        assert_eq!(registry.url, "http://registry:8081/");
        assert!(registry.frame_outputs);
        assert_eq!(registry.output_format, OutputFormat::Json);
        raw.schema_registry.output_format = "Avro".into();
        let registry = Settings::resolve(&raw).expect("resolves").schema_registry;
        assert_eq!(
            registry.expect("a registry").output_format,
            OutputFormat::Avro
        );
        raw.schema_registry.output_format = "protobuf".into();
        let err = Settings::resolve(&raw).expect_err("not a format");
        assert!(err.to_string().contains("output_format"), "{err}");
        raw.schema_registry.output_format = "avro".into();
        raw.schema_registry.frame_outputs = false;
        let err = Settings::resolve(&raw).expect_err("avro unframed");
        assert!(err.to_string().contains("frame_outputs"), "{err}");
        raw.schema_registry.output_format = "json".into();
        let registry = Settings::resolve(&raw).expect("resolves").schema_registry;
        assert!(!registry.expect("inputs still use it").frame_outputs);
    }

    #[test]
    fn registry_credentials_and_ca_file_are_checked_when_resolved() {
        let mut raw = RawConfig::default();
        raw.schema_registry.url = "https://registry:8081".into();
        raw.schema_registry.basic_auth_user_info = "only-a-key".into();
        let err = Settings::resolve(&raw).expect_err("no secret");
        assert!(
            err.to_string()
                .contains("schema_registry.basic_auth_user_info"),
            "{err}"
        );
        raw.schema_registry.basic_auth_user_info = "KEY:SECRET".into();
        raw.schema_registry.ca_location = "/nonexistent/ca.pem".into();
        let err = Settings::resolve(&raw).expect_err("no CA file");
        assert!(
            err.to_string().contains("schema_registry.ca_location"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----").expect("write");
        raw.schema_registry.ca_location = ca.display().to_string();
        let registry = Settings::resolve(&raw)
            .expect("resolves")
            .schema_registry
            .expect("a registry");
        assert_eq!(registry.access.user_info.as_deref(), Some("KEY:SECRET"));
        assert_eq!(
            registry.access.ca_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----")
        );
    }
}
