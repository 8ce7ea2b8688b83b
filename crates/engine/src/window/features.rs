//! Per-bucket features: what one bucket of one SKU remembers.

use serde::{Deserialize, Serialize};

use crate::vocab::{ClickKind, EventBody, Source};

/// Number of features kept per bucket.
pub const FEATURE_COUNT: usize = 6;

/// One per-bucket feature; the discriminant is its slot in [`BucketFeatures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Net units sold (returns subtract).
    Units = 0,
    /// Net revenue: sum of qty × unit_price (events without a price add nothing).
    Revenue = 1,
    /// Number of sales events with a positive quantity.
    Orders = 2,
    /// Product views.
    Views = 3,
    /// Add-to-cart clicks.
    AddToCarts = 4,
    /// Wishlist clicks.
    Wishlists = 5,
}

impl Feature {
    /// All features in slot order.
    pub const ALL: [Feature; FEATURE_COUNT] = [
        Feature::Units,
        Feature::Revenue,
        Feature::Orders,
        Feature::Views,
        Feature::AddToCarts,
        Feature::Wishlists,
    ];

    /// The feature's name as used in model manifests.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Units => "units",
            Feature::Revenue => "revenue",
            Feature::Orders => "orders",
            Feature::Views => "views",
            Feature::AddToCarts => "add_to_carts",
            Feature::Wishlists => "wishlists",
        }
    }

    /// The input topic that feeds this feature.
    pub fn source(self) -> Source {
        match self {
            Feature::Units | Feature::Revenue | Feature::Orders => Source::Sales,
            Feature::Views | Feature::AddToCarts | Feature::Wishlists => Source::Clicks,
        }
    }

    /// Looks a feature up by manifest name.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The features of one bucket, indexed by [`Feature`].
pub type BucketFeatures = [f32; FEATURE_COUNT];

/// Slots of the features fed by `source`.
pub fn slots_of(source: Source) -> std::ops::Range<usize> {
    match source {
        Source::Sales => 0..3,
        Source::Clicks => 3..FEATURE_COUNT,
    }
}

/// Adds one event's contribution to a bucket.
pub fn apply(bucket: &mut BucketFeatures, body: &EventBody) {
    match *body {
        EventBody::Sale { qty, unit_price } => {
            bucket[Feature::Units as usize] += qty as f32;
            if let Some(price) = unit_price {
                bucket[Feature::Revenue as usize] += (qty * price) as f32;
            }
            if qty > 0.0 {
                bucket[Feature::Orders as usize] += 1.0;
            }
        }
        EventBody::Click(kind) => {
            let slot = match kind {
                ClickKind::View => Feature::Views,
                ClickKind::AddToCart => Feature::AddToCarts,
                ClickKind::Wishlist => Feature::Wishlists,
            };
            bucket[slot as usize] += 1.0;
        }
    }
}
