//! Catalog entries (`schemas/catalog_entry.schema.json`): product text per SKU, as a catalog
//! topic carries them. Catalog files are read by `crate::datasets::catalog` (offline).

use serde::{Deserialize, Serialize};

/// Longest accepted title or description, bytes.
pub const MAX_TEXT_BYTES: usize = 8192;

/// One product's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The SKU.
    pub sku: String,
    /// Product title.
    pub title: String,
    /// Longer description ("" when none).
    #[serde(default)]
    pub description: String,
    /// Category ("" when none).
    #[serde(default)]
    pub category: String,
    /// An image embedding computed elsewhere: validated, not yet used or stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_embedding: Option<Vec<f32>>,
}

impl CatalogEntry {
    /// Checks lengths and values; the reason names the field.
    pub fn validate(&self, max_sku_bytes: usize) -> Result<(), String> {
        if self.sku.trim().is_empty() || self.sku.len() > max_sku_bytes {
            return Err(format!(
                "sku: must be 1..={max_sku_bytes} bytes and not blank"
            ));
        }
        if self.title.trim().is_empty() && self.description.trim().is_empty() {
            return Err("title and description are both empty".into());
        }
        for (name, text) in [("title", &self.title), ("description", &self.description)] {
            if text.len() > MAX_TEXT_BYTES {
                return Err(format!("{name}: longer than {MAX_TEXT_BYTES} bytes"));
            }
        }
        if let Some(v) = &self.image_embedding {
            if v.is_empty() || v.len() > 4096 || v.iter().any(|x| !x.is_finite()) {
                return Err("image_embedding: 1..=4096 finite numbers".into());
            }
        }
        Ok(())
    }

    /// The text that is embedded.
    pub fn text(&self) -> String {
        super::embedding_text(&self.title, &self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_validate() {
        let e = CatalogEntry {
            sku: "A".into(),
            title: "Mug".into(),
            description: "Blue stoneware".into(),
            category: "MUG".into(),
            image_embedding: None,
        };
        assert!(e.validate(128).is_ok());
        assert_eq!(e.text(), "Mug. Blue stoneware");
        let mut blank = e.clone();
        blank.title.clear();
        blank.description.clear();
        assert!(blank.validate(128).is_err());
    }
}
