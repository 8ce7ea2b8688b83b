//! Model manifests: what a model expects, checked against the configuration and the model itself.
//!
//! A manifest is a JSON file beside the ONNX file. The engine refuses to start when the manifest
//! disagrees with `[window]` (bucket width, window length), names an unknown feature, or
//! describes tensors the ONNX graph does not have.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::window::{Feature, WindowSettings};

/// Name and shape of one model tensor; `-1` marks the dynamic batch dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// Dimensions; -1 = dynamic.
    pub shape: Vec<i64>,
}

/// A direction classifier output: class probabilities for one trend definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// `[-1, 3]`.
    pub shape: Vec<i64>,
    /// Class order of the tensor's last axis: must be `["falling", "flat", "rising"]`.
    pub classes: Vec<String>,
    /// The flat band the classifier was trained for: rising means strength > band.
    pub flat_band: f64,
    /// The floor of the recent level in the strength's denominator it was trained for.
    pub level_floor: f64,
    /// Per-class weights of the call: the direction is argmax_k(w_k · p_k) (chosen on validation
    /// origins for the best macro-F1; all ones is the plain argmax).
    pub call_weights: [f64; 3],
}

/// The class order a [`DirectionSpec`] must declare.
pub const DIRECTION_CLASSES: [&str; 3] = ["falling", "flat", "rising"];

/// The manifest file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// "baseline", "gbdt", "neural", ... (informational).
    pub kind: String,
    /// What the model does, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Bucket width the model was built for, in seconds.
    pub bucket_width_secs: u64,
    /// Buckets per input window.
    pub window_len: usize,
    /// Future buckets forecast.
    pub horizon: usize,
    /// Input features, in input order (names from [`Feature::name`]).
    pub features: Vec<String>,
    /// Quantile levels of the output, increasing, each in (0, 1).
    pub quantiles: Vec<f64>,
    /// The forecast target; must be "units".
    pub target: String,
    /// How inputs are normalised (informational: normalisation lives inside the graph).
    #[serde(default)]
    pub normalisation: String,
    /// Input tensor: `[-1, window_len, features.len()]`.
    pub input: TensorSpec,
    /// Quantile output: `[-1, horizon, quantiles.len()]`.
    pub output: TensorSpec,
    /// Optional legacy direction head: `[-1]` or `[-1, 1]`, probability of a rise. Superseded by
    /// `direction_output`, which also says which event the probability is of.
    #[serde(default)]
    pub p_up_output: Option<TensorSpec>,
    /// Optional calibrated direction classifier `[-1, 3]`: per row the probabilities of falling,
    /// flat and rising as defined in docs/TRENDS.md, for the band and floor it names.
    #[serde(default)]
    pub direction_output: Option<DirectionSpec>,
    /// Optional point forecast `[-1, horizon]`: expected units per future bucket, the forecast
    /// to use under squared loss (a quantile's median sits below the mean of skewed demand).
    #[serde(default)]
    pub mean_output: Option<TensorSpec>,
    /// Optional calendar input `[-1]` (f32): per row, days since 1970-01-01 UTC of the first
    /// forecast bucket's start, so the graph can derive day of week and holidays itself.
    #[serde(default)]
    pub calendar_input: Option<TensorSpec>,
    /// Optional: how the row's outputs are joined into one predictive distribution
    /// (`scoring/distribution.rs`); defaults when left out.
    #[serde(default)]
    pub distribution: Option<DistributionParams>,
    /// ONNX file, relative to the manifest.
    pub model_file: String,
}

/// The predictive distribution's parameters, chosen on validation origins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionParams {
    /// Correlation of one row's daily demand errors, in [0, 1]: the spread of a total over
    /// several buckets.
    pub correlation: f64,
    /// Per horizon step, multipliers (lower, upper) of the distance from the median to the
    /// outer quantiles: the offline conformal calibration of the daily intervals.
    #[serde(default)]
    pub interval_scales: Vec<[f64; 2]>,
    /// Multipliers (lower, upper) of the horizon total's outer quantiles about its median.
    #[serde(default)]
    pub total_scales: Option<[f64; 2]>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read model manifest {path} (relative paths are resolved from the working directory)")]
    Read {
        /// Manifest path.
        path: PathBuf,
        /// IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("model manifest {path} is malformed")]
    Parse {
        /// Manifest path.
        path: PathBuf,
        /// JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest disagrees with the configuration or with itself.
    #[error("model {model} does not fit: {reason}")]
    Mismatch {
        /// `name@version`.
        model: String,
        /// What disagrees, with both values.
        reason: String,
    },
}

/// A manifest that passed every check, with features resolved.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    /// The manifest as written.
    pub manifest: ModelManifest,
    /// Input features in input order.
    pub features: Vec<Feature>,
    /// Absolute path of the ONNX file.
    pub model_path: PathBuf,
    /// Index of the quantile used as the point forecast (closest to 0.5).
    pub median_index: usize,
}

impl ModelManifest {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

impl ResolvedManifest {
    /// Reads the manifest at `path` and checks it against `window`.
    pub fn load(path: &Path, window: &WindowSettings) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let manifest: ModelManifest =
            serde_json::from_str(&text).map_err(|source| ManifestError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        Self::check(manifest, dir, window)
    }

    /// Checks `manifest` (whose files live in `dir`) against `window`.
    pub fn check(
        manifest: ModelManifest,
        dir: &Path,
        window: &WindowSettings,
    ) -> Result<Self, ManifestError> {
        let mismatch = |reason: String| ManifestError::Mismatch {
            model: manifest.id(),
            reason,
        };
        check_window(&manifest, window).map_err(mismatch)?;
        let features = resolve_features(&manifest).map_err(mismatch)?;
        check_shapes(&manifest, features.len()).map_err(mismatch)?;
        let q = &manifest.quantiles;
        let median_index = q
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - 0.5).abs().total_cmp(&(b.1 - 0.5).abs()))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let model_path = dir.join(&manifest.model_file);
        if !model_path.is_file() {
            return Err(mismatch(format!(
                "model file {} not found",
                model_path.display()
            )));
        }
        Ok(Self {
            manifest,
            features,
            model_path,
            median_index,
        })
    }
}

/// Why `manifest` does not fit the window settings, if it does not.
fn check_window(manifest: &ModelManifest, window: &WindowSettings) -> Result<(), String> {
    let width_secs = (window.bucket.width_ms() / 1000) as u64;
    if manifest.bucket_width_secs != width_secs {
        return Err(format!(
            "manifest bucket_width_secs = {} but window.bucket_width is {width_secs} s",
            manifest.bucket_width_secs
        ));
    }
    if manifest.window_len != window.buckets {
        return Err(format!(
            "manifest window_len = {} but window.buckets = {}",
            manifest.window_len, window.buckets
        ));
    }
    if manifest.horizon == 0 {
        return Err("horizon must be at least 1".into());
    }
    Ok(())
}

/// The manifest's input features, each known and listed once, with units among them.
fn resolve_features(manifest: &ModelManifest) -> Result<Vec<Feature>, String> {
    let mut features = Vec::with_capacity(manifest.features.len());
    for name in &manifest.features {
        let f = Feature::from_name(name).ok_or_else(|| {
            let known: Vec<_> = Feature::ALL.iter().map(|f| f.name()).collect();
            format!("unknown feature {name:?}; known: {}", known.join(", "))
        })?;
        if features.contains(&f) {
            return Err(format!("feature {name:?} listed twice"));
        }
        features.push(f);
    }
    if manifest.target != "units" || !features.contains(&Feature::Units) {
        return Err("target must be \"units\" and \"units\" must be an input feature".into());
    }
    Ok(features)
}

/// Why the quantiles or a tensor's shape do not match the window and horizon, if they do not.
fn check_shapes(manifest: &ModelManifest, n_features: usize) -> Result<(), String> {
    let q = &manifest.quantiles;
    if q.is_empty()
        || q.iter().any(|p| !(*p > 0.0 && *p < 1.0))
        || q.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(format!(
            "quantiles {q:?} must be increasing and inside (0, 1)"
        ));
    }
    let want_in = vec![-1, manifest.window_len as i64, n_features as i64];
    if manifest.input.shape != want_in {
        return Err(format!(
            "input shape {:?} should be {want_in:?}",
            manifest.input.shape
        ));
    }
    let want_out = vec![-1, manifest.horizon as i64, q.len() as i64];
    if manifest.output.shape != want_out {
        return Err(format!(
            "output shape {:?} should be {want_out:?}",
            manifest.output.shape
        ));
    }
    if let Some(p) = &manifest.p_up_output {
        if p.shape != [-1] && p.shape != [-1, 1] {
            return Err(format!(
                "p_up_output shape {:?} should be [-1] or [-1, 1]",
                p.shape
            ));
        }
    }
    if let Some(d) = &manifest.direction_output {
        check_direction(d)?;
    }
    if let Some(mo) = &manifest.mean_output {
        let want = [-1, manifest.horizon as i64];
        if mo.shape != want {
            return Err(format!(
                "mean_output shape {:?} should be {want:?}",
                mo.shape
            ));
        }
    }
    if let Some(d) = &manifest.distribution {
        check_distribution(d, manifest.horizon)?;
    }
    if let Some(c) = &manifest.calendar_input {
        if c.shape != [-1] {
            return Err(format!("calendar_input shape {:?} should be [-1]", c.shape));
        }
        if c.name == manifest.input.name {
            return Err(format!(
                "calendar_input and input share the name {:?}",
                c.name
            ));
        }
    }
    Ok(())
}

/// Why distribution parameters cannot be used, if they cannot.
fn check_distribution(d: &DistributionParams, horizon: usize) -> Result<(), String> {
    if !(d.correlation.is_finite() && (0.0..=1.0).contains(&d.correlation)) {
        return Err(format!(
            "distribution.correlation {} must be in [0, 1]",
            d.correlation
        ));
    }
    if !d.interval_scales.is_empty() && d.interval_scales.len() != horizon {
        return Err(format!(
            "distribution.interval_scales has {} steps; the horizon is {horizon}",
            d.interval_scales.len()
        ));
    }
    let scales = d.interval_scales.iter().chain(d.total_scales.iter());
    if scales.flatten().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err("distribution scales must be positive".into());
    }
    Ok(())
}

/// Why a direction output cannot be used, if it cannot.
fn check_direction(d: &DirectionSpec) -> Result<(), String> {
    if d.shape != [-1, 3] {
        return Err(format!(
            "direction_output shape {:?} should be [-1, 3]",
            d.shape
        ));
    }
    if d.classes != DIRECTION_CLASSES {
        return Err(format!(
            "direction_output classes {:?} should be {DIRECTION_CLASSES:?}",
            d.classes
        ));
    }
    let band_ok = d.flat_band.is_finite() && d.flat_band >= 0.0;
    let floor_ok = d.level_floor.is_finite() && d.level_floor > 0.0;
    if !(band_ok && floor_ok) {
        return Err(format!(
            "direction_output flat_band {} must be >= 0 and level_floor {} > 0",
            d.flat_band, d.level_floor
        ));
    }
    if d.call_weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(format!(
            "direction_output call_weights {:?} must be positive",
            d.call_weights
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::BucketSpec;

    fn baseline_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/baseline")
    }

    fn window(width_ms: i64, buckets: usize) -> WindowSettings {
        WindowSettings {
            bucket: BucketSpec::new(width_ms),
            buckets,
            lateness_ms: 3_600_000,
            max_skus: 10,
            shards: 0,
        }
    }

    #[test]
    fn baseline_manifest_fits_default_window() {
        let m = ResolvedManifest::load(
            &baseline_dir().join("manifest.json"),
            &window(86_400_000, 28),
        )
        .expect("fits");
        assert_eq!(m.features[0], Feature::Units);
        assert_eq!(m.manifest.quantiles[m.median_index], 0.5);
    }

    #[test]
    fn mismatches_are_refused_with_both_values() {
        let path = baseline_dir().join("manifest.json");
        let e = ResolvedManifest::load(&path, &window(3_600_000, 28)).expect_err("hourly");
        assert!(e.to_string().contains("bucket_width_secs = 86400"), "{e}");
        let e = ResolvedManifest::load(&path, &window(86_400_000, 14)).expect_err("short window");
        assert!(e.to_string().contains("window_len = 28"), "{e}");
    }

    #[test]
    fn a_mean_output_must_cover_the_horizon() {
        let text = std::fs::read_to_string(baseline_dir().join("manifest.json")).expect("read");
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        let horizon = json["horizon"].as_i64().expect("horizon");
        json["mean_output"] = serde_json::json!({"name": "mean", "shape": [-1, horizon + 1]});
        std::fs::write(&path, json.to_string()).expect("write");
        let e = ResolvedManifest::load(&path, &window(86_400_000, 28)).expect_err("wrong shape");
        assert!(e.to_string().contains("mean_output shape"), "{e}");
        json["mean_output"] = serde_json::json!({"name": "mean", "shape": [-1, horizon]});
        std::fs::write(&path, json.to_string()).expect("write");
        let e = ResolvedManifest::load(&path, &window(86_400_000, 28)).expect_err("no model file");
        assert!(e.to_string().contains("not found"), "shape accepted: {e}");
    }

    #[test]
    fn a_direction_output_must_name_three_classes_a_band_and_weights() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/trendcast-demand");
        let text = std::fs::read_to_string(shipped.join("manifest.json")).expect("read");
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            json["direction_output"]["classes"][2], "rising",
            "shipped model has one"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        let refused = |json: &serde_json::Value| {
            std::fs::write(&path, json.to_string()).expect("write");
            ResolvedManifest::load(&path, &window(86_400_000, 28))
                .expect_err("refused")
                .to_string()
        };
        let good = json["direction_output"].clone();
        json["direction_output"]["shape"] = serde_json::json!([-1, 2]);
        assert!(refused(&json).contains("direction_output shape"));
        json["direction_output"] = good.clone();
        json["direction_output"]["classes"] = serde_json::json!(["rising", "flat", "falling"]);
        assert!(refused(&json).contains("classes"));
        json["direction_output"] = good.clone();
        json["direction_output"]["flat_band"] = serde_json::json!(-0.1);
        assert!(refused(&json).contains("flat_band"));
        json["direction_output"] = good;
        json["direction_output"]["call_weights"] = serde_json::json!([1.0, 0.0, 1.0]);
        assert!(refused(&json).contains("call_weights"));
    }
}
