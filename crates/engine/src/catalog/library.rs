//! The launch library: what live cold-start forecasts are made from.
//!
//! `trendcast cold-start --write-library FILE` saves every product's launch curve (units on its
//! first days since its first sale) with its text embedding, and the neighbour count `k` and
//! mixing weight `a` the evaluation chose on its validation period. The signals component loads
//! it (`signals.launch_library`) and forecasts a product with no sales from the curves of its `k`
//! nearest products in embedding space, mixed with all curves, exactly the evaluated method.
//! Days past the end of a curve take the mean of its last seven days.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::launch::{nearest, sample_forecast, text_weights};

/// One product of the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryProduct {
    /// The SKU.
    pub sku: String,
    /// Units per day since launch.
    pub curve: Vec<f64>,
    /// Normalised text embedding.
    pub embedding: Vec<f32>,
}

/// Launch curves with embeddings, and the text method's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchLibrary {
    /// Text model the embeddings came from.
    pub text_model: String,
    /// Neighbours per forecast.
    pub k: usize,
    /// Weight of the neighbours against all curves.
    pub mix: f64,
    /// The products.
    pub products: Vec<LibraryProduct>,
}

/// A library forecast: per day, the mean and the 0.1/0.5/0.9 quantiles; the neighbours used.
#[derive(Debug, Clone, PartialEq)]
pub struct TextForecast {
    /// Per day since `from_day`.
    pub days: Vec<(f64, [f64; 3])>,
    /// SKUs of the nearest products, closest first, with their cosine.
    pub neighbours: Vec<(String, f32)>,
}

/// Errors reading or writing a library.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// File access failed.
    #[error("launch library {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

const MAGIC: &[u8; 4] = b"TCL\x01";

impl LaunchLibrary {
    /// Writes the library (bincode behind a version header).
    pub fn save(&self, path: &Path) -> Result<(), LibraryError> {
        let err = |e: &dyn std::fmt::Display| LibraryError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| err(&e))?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&body);
        std::fs::write(path, bytes).map_err(|e| err(&e))
    }

    /// Reads a library written by [`LaunchLibrary::save`].
    pub fn load(path: &Path) -> Result<Self, LibraryError> {
        let err = |message: String| LibraryError::Io {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| {
            err(format!(
                "{e} (write it with `trendcast cold-start --write-library`)"
            ))
        })?;
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| err("not a launch library of a known version".into()))?;
        let (library, _): (Self, usize) =
            bincode::serde::decode_from_slice(body, bincode::config::standard())
                .map_err(|e| err(e.to_string()))?;
        if library.products.is_empty() || library.k == 0 {
            return Err(err("it holds no products".into()));
        }
        Ok(library)
    }

    /// Forecast of days `from_day .. from_day + days` since launch for product `sku`, whose text
    /// embeds to `embedding`. The product's own launch curve is not used (a library made from
    /// the same log may hold it, and a product's future is not its own neighbour), unless the
    /// library holds nothing else.
    pub fn forecast(
        &self,
        sku: &str,
        embedding: &[f32],
        from_day: usize,
        days: usize,
    ) -> TextForecast {
        let mut others: Vec<&LibraryProduct> =
            self.products.iter().filter(|p| p.sku != sku).collect();
        if others.is_empty() {
            others = self.products.iter().collect();
        }
        let ranked = nearest(
            embedding,
            others.iter().map(|p| p.embedding.as_slice()),
            self.k,
        );
        let weights = text_weights(others.len(), &ranked, self.k, self.mix);
        let curves: Vec<&[f64]> = others.iter().map(|p| p.curve.as_slice()).collect();
        let neighbours = ranked
            .iter()
            .take(5)
            .map(|&i| {
                let p = others[i];
                let cos = p.embedding.iter().zip(embedding).map(|(a, b)| a * b).sum();
                (p.sku.clone(), cos)
            })
            .collect();
        TextForecast {
            days: sample_forecast(&curves, &weights, from_day..from_day + days),
            neighbours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sku: &str, level: f64, e: [f32; 2]) -> LibraryProduct {
        LibraryProduct {
            sku: sku.into(),
            curve: vec![level; 14],
            embedding: e.to_vec(),
        }
    }

    #[test]
    fn neighbours_decide_the_forecast_and_files_round_trip() {
        let lib = LaunchLibrary {
            text_model: "t".into(),
            k: 2,
            mix: 1.0,
            products: vec![
                product("mug-1", 5.0, [1.0, 0.0]),
                product("mug-2", 5.0, [0.96, 0.28]),
                product("bag-1", 1.0, [0.0, 1.0]),
            ],
        };
        let f = lib.forecast("new", &[1.0, 0.0], 0, 3);
        assert_eq!(f.days, vec![(5.0, [5.0, 5.0, 5.0]); 3]);
        assert_eq!(f.neighbours[0].0, "mug-1");
        // mug-1 itself is forecast from the others, never from its own curve
        let own = lib.forecast("mug-1", &[1.0, 0.0], 0, 1);
        assert_eq!(own.neighbours[0].0, "mug-2");
        assert!(own.neighbours.iter().all(|n| n.0 != "mug-1"));
        // days past the 14-day curves continue at their last week's mean
        assert_eq!(lib.forecast("new", &[0.0, 1.0], 20, 1).neighbours.len(), 2);
        let half = LaunchLibrary {
            mix: 0.5,
            ..lib.clone()
        };
        // 0.5 · 5 (neighbours) + 0.5 · mean(5, 5, 1)
        assert!(
            (half.forecast("new", &[1.0, 0.0], 0, 1).days[0].0 - (2.5 + 0.5 * 11.0 / 3.0)).abs()
                < 1e-9
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.bin");
        lib.save(&path).unwrap();
        assert_eq!(LaunchLibrary::load(&path).unwrap(), lib);
        std::fs::write(&path, b"nope").unwrap();
        assert!(LaunchLibrary::load(&path).is_err());
    }
}
