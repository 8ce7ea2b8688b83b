//! ONNX Runtime: loading the shared library, building a session, running batches.
//!
//! `ort` is used with `load-dynamic`: the engine links nothing at build time and opens
//! `libonnxruntime.so` at start. The library path comes from `scoring.onnxruntime_library` or
//! `ORT_DYLIB_PATH`; it is checked before `ort` sees it, because `ort` panics on a missing
//! library. The session is checked against the manifest (tensor names and static dimensions).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use super::manifest::{ResolvedManifest, TensorSpec};
use super::{ExecutionProviderKind, ScoringSettings};

/// The ONNX Runtime version the engine is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No ONNX Runtime library could be found or opened.
    #[error(
        "ONNX Runtime library not available: {0}.\n  Install it with `pip install onnxruntime=={ORT_VERSION}` \
         (in a clone, `source scripts/env.sh && ensure_python` does it and exports the path) and set ORT_DYLIB_PATH (or scoring.onnxruntime_library) to \
         <site-packages>/onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}"
    )]
    Library(String),
    /// ONNX Runtime refused the model or a run.
    #[error("ONNX Runtime error ({context}): {message}")]
    Runtime {
        /// What was being done.
        context: &'static str,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The graph's tensors disagree with the manifest.
    #[error("model {model} does not match its manifest: {reason}")]
    Signature {
        /// `name@version`.
        model: String,
        /// What differs.
        reason: String,
    },
}

fn runtime(context: &'static str) -> impl Fn(ort::Error) -> ModelError {
    move |e| ModelError::Runtime {
        context,
        message: e.to_string(),
    }
}

/// The process's ONNX Runtime, with the library it was loaded from (one per process).
static ENVIRONMENT: OnceLock<Result<(ort::environment::Environment, PathBuf), String>> =
    OnceLock::new();

/// Finds the ONNX Runtime library: the configured path, else `ORT_DYLIB_PATH`.
pub fn library_path(configured: Option<&Path>) -> Result<PathBuf, ModelError> {
    let path = match configured {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .ok_or_else(|| {
                ModelError::Library(
                    "neither scoring.onnxruntime_library nor ORT_DYLIB_PATH is set".into(),
                )
            })?,
    };
    if !path.is_file() {
        return Err(ModelError::Library(format!(
            "{} does not exist",
            path.display()
        )));
    }
    Ok(path)
}

/// Loads ONNX Runtime once per process and returns its environment. A later caller that names
/// another library gets an error rather than, silently, the first one.
pub fn environment(configured: Option<&Path>) -> Result<ort::environment::Environment, ModelError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let path = library_path(configured).map_err(|e| match e {
            ModelError::Library(m) => m,
            other => other.to_string(),
        })?;
        let builder = ort::init_from(&path)
            .map_err(|e| format!("{} could not be loaded: {e}", path.display()))?;
        builder
            .with_name("trendcast")
            .build()
            .map(|env| (env, path.clone()))
            .map_err(|e| format!("environment could not be created: {e}"))
    });
    let (env, loaded) = result.clone().map_err(ModelError::Library)?;
    if let Some(asked) = configured {
        let same = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if same(asked) != same(&loaded) {
            return Err(ModelError::Library(format!(
                "ONNX Runtime is already loaded from {} in this process; {} cannot be loaded beside it",
                loaded.display(),
                asked.display()
            )));
        }
    }
    Ok(env)
}

/// A loaded model ready to score batches of windows.
pub struct Model {
    session: Session,
    manifest: ResolvedManifest,
    provider: &'static str,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("model", &self.manifest.manifest.id())
            .field("provider", &self.provider)
            .finish()
    }
}

/// Output of one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchForecast {
    /// `[n, horizon, quantiles]`, row-major.
    pub quantiles: Vec<f32>,
    /// `[n]` probabilities of a rise, when the model has a legacy `p_up` head.
    pub p_up: Option<Vec<f32>>,
    /// `[n, 3]` probabilities of falling, flat and rising, when the model has a direction output.
    pub direction: Option<Vec<f32>>,
    /// `[n, horizon]` expected units per bucket, when the model has a mean output.
    pub mean: Option<Vec<f32>>,
}

fn check_outlet(
    session_outlets: &[ort::value::Outlet],
    spec: &TensorSpec,
    model: &str,
    what: &str,
) -> Result<(), ModelError> {
    let outlet = session_outlets
        .iter()
        .find(|o| o.name() == spec.name)
        .ok_or_else(|| ModelError::Signature {
            model: model.to_string(),
            reason: format!(
                "the graph has no {what} named {:?} (it has {:?})",
                spec.name,
                session_outlets.iter().map(|o| o.name()).collect::<Vec<_>>()
            ),
        })?;
    if let Some(shape) = outlet.dtype().tensor_shape() {
        let dims: Vec<i64> = shape.iter().copied().collect();
        let fits = dims.len() == spec.shape.len()
            && dims
                .iter()
                .zip(&spec.shape)
                .all(|(g, m)| *m == -1 || *g == -1 || g == m);
        if !fits {
            return Err(ModelError::Signature {
                model: model.to_string(),
                reason: format!(
                    "{what} {:?} has shape {dims:?}, manifest says {:?}",
                    spec.name, spec.shape
                ),
            });
        }
    }
    Ok(())
}

impl Model {
    /// Builds a session for `manifest` with the configured execution provider.
    ///
    /// With `cuda` requested but unavailable (feature off, or the library lacks the provider),
    /// the session falls back to CPU and a warning is logged.
    pub fn load(
        manifest: ResolvedManifest,
        settings: &ScoringSettings,
    ) -> Result<Self, ModelError> {
        let env = environment(settings.onnxruntime_library.as_deref())?;
        let id = manifest.manifest.id();
        let mut builder = Session::builder(&env)
            .map_err(runtime("session builder"))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| runtime("optimization level")(e.into()))?
            .with_intra_threads(settings.intra_threads)
            .map_err(|e| runtime("intra threads")(e.into()))?;
        let provider = match settings.provider {
            ExecutionProviderKind::Cpu => "cpu",
            ExecutionProviderKind::Cuda => {
                let (b, p) = cuda(builder);
                builder = b;
                p
            }
        };
        let session = builder
            .commit_from_file(&manifest.model_path)
            .map_err(runtime("loading the model"))?;
        check_outlet(session.inputs(), &manifest.manifest.input, &id, "input")?;
        if let Some(c) = &manifest.manifest.calendar_input {
            check_outlet(session.inputs(), c, &id, "input")?;
        }
        let wanted_inputs = 1 + usize::from(manifest.manifest.calendar_input.is_some());
        if session.inputs().len() != wanted_inputs {
            return Err(ModelError::Signature {
                model: id,
                reason: format!(
                    "the graph has inputs {:?}; the manifest declares {wanted_inputs}",
                    session
                        .inputs()
                        .iter()
                        .map(|o| o.name())
                        .collect::<Vec<_>>()
                ),
            });
        }
        check_outlet(session.outputs(), &manifest.manifest.output, &id, "output")?;
        let direction = manifest
            .manifest
            .direction_output
            .as_ref()
            .map(|d| TensorSpec {
                name: d.name.clone(),
                shape: d.shape.clone(),
            });
        let extras = [
            &manifest.manifest.p_up_output,
            &manifest.manifest.mean_output,
            &direction,
        ];
        for spec in extras.into_iter().flatten() {
            check_outlet(session.outputs(), spec, &id, "output")?;
        }
        tracing::info!(model = %id, provider, path = %manifest.model_path.display(), "model loaded");
        Ok(Self {
            session,
            manifest,
            provider,
        })
    }

    /// The resolved manifest.
    pub fn manifest(&self) -> &ResolvedManifest {
        &self.manifest
    }

    /// The execution provider in use: "cpu" or "cuda".
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Values per input window (`window_len × features`).
    pub fn window_values(&self) -> usize {
        self.manifest.manifest.window_len * self.manifest.features.len()
    }

    /// Scores `n` windows laid out row-major in `input` (`n × window_len × features`).
    ///
    /// `origin_days` holds, per row, the first forecast bucket's start in days since the Unix
    /// epoch; it is fed only to models whose manifest declares a `calendar_input` (others may
    /// pass an empty slice).
    pub fn score(
        &mut self,
        input: &[f32],
        origin_days: &[f32],
        n: usize,
    ) -> Result<BatchForecast, ModelError> {
        let m = &self.manifest.manifest;
        let shape = [n, m.window_len, self.manifest.features.len()];
        let tensor = TensorRef::from_array_view((shape, &input[..n * self.window_values()]))
            .map_err(runtime("input tensor"))?;
        let mut inputs = ort::inputs![m.input.name.as_str() => tensor];
        if let Some(c) = &m.calendar_input {
            if origin_days.len() < n {
                return Err(ModelError::Signature {
                    model: m.id(),
                    reason: format!("{n} rows but {} origin days", origin_days.len()),
                });
            }
            let days = TensorRef::from_array_view(([n], &origin_days[..n]))
                .map_err(runtime("calendar tensor"))?;
            inputs.push((c.name.as_str().into(), days.into()));
        }
        let outputs = self.session.run(inputs).map_err(runtime("run"))?;
        // every output is row-major f32 with a known number of values per row
        let extract = |name: &str, what: &'static str, want: usize| {
            let (_, v) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(runtime(what))?;
            if v.len() != want {
                return Err(ModelError::Signature {
                    model: m.id(),
                    reason: format!("{what} has {} values, expected {want}", v.len()),
                });
            }
            Ok(v.to_vec())
        };
        let quantiles = extract(
            &m.output.name,
            "quantile output",
            n * m.horizon * m.quantiles.len(),
        )?;
        let p_up = m
            .p_up_output
            .as_ref()
            .map(|spec| extract(&spec.name, "p_up output", n))
            .transpose()?;
        let mean = m
            .mean_output
            .as_ref()
            .map(|spec| extract(&spec.name, "mean output", n * m.horizon))
            .transpose()?;
        let direction = m
            .direction_output
            .as_ref()
            .map(|spec| extract(&spec.name, "direction output", n * 3))
            .transpose()?;
        Ok(BatchForecast {
            quantiles,
            p_up,
            mean,
            direction,
        })
    }
}

#[cfg(feature = "cuda")]
fn cuda(
    builder: ort::session::builder::SessionBuilder,
) -> (ort::session::builder::SessionBuilder, &'static str) {
    use ort::ep::ExecutionProvider;
    let available = ort::ep::CUDA::is_available().unwrap_or(false);
    if !available {
        tracing::warn!("CUDA execution provider not available in this ONNX Runtime library; falling back to CPU");
        return (builder, "cpu");
    }
    match builder.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()]) {
        Ok(b) => (b, "cuda"),
        Err(e) => {
            tracing::warn!(error = %e, "CUDA execution provider failed to register; falling back to CPU");
            (e.recover(), "cpu")
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(
    builder: ort::session::builder::SessionBuilder,
) -> (ort::session::builder::SessionBuilder, &'static str) {
    tracing::warn!("scoring.execution_provider = \"cuda\" but trendcast was built without the `cuda` feature; falling back to CPU");
    (builder, "cpu")
}
