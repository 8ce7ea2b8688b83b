//! Product catalog: product text embedded by a pretrained language model, for products with
//! little or no sales history (cold start).

pub mod embedder;
pub mod entry;
pub mod launch;
pub mod library;

pub use embedder::{cosine, EmbedError, TextEmbedder};
pub use entry::CatalogEntry;
pub use library::LaunchLibrary;

/// The text embedded for a product: `"title. description"`, or the title alone.
pub fn embedding_text(title: &str, description: &str) -> String {
    let (t, d) = (title.trim(), description.trim());
    match (t.is_empty(), d.is_empty()) {
        (_, true) => t.to_string(),
        (true, false) => d.to_string(),
        (false, false) => format!("{t}. {d}"),
    }
}
