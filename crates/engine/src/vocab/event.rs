//! Input sources, decoded events and rejection reasons (the wire format and its decoder live in
//! `crate::ingest::event`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::EventTime;

/// Which input topic an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The sales topic.
    Sales,
    /// The clicks topic.
    Clicks,
}

impl Source {
    /// Both sources, in index order.
    pub const ALL: [Source; 2] = [Source::Sales, Source::Clicks];

    /// Label value for metrics and dead-letter headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sales => "sales",
            Source::Clicks => "clicks",
        }
    }
}

/// One value per input source, indexed by [`Source`] (not by `source as usize` into a bare
/// array). Serialised as the two-element array it wraps, sales first, so checkpoint layouts
/// written with `[T; 2]` read back unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PerSource<T>([T; 2]);

impl<T> PerSource<T> {
    /// The value for sales and the value for clicks.
    pub const fn new(sales: T, clicks: T) -> Self {
        Self([sales, clicks])
    }

    /// The same value for both sources.
    pub fn both(value: T) -> Self
    where
        T: Clone,
    {
        Self([value.clone(), value])
    }

    /// A value per source, made by `f`.
    pub fn from_fn(mut f: impl FnMut(Source) -> T) -> Self {
        Self([f(Source::Sales), f(Source::Clicks)])
    }

    /// `(source, value)` pairs, sales first.
    pub fn entries(&self) -> impl Iterator<Item = (Source, &T)> {
        Source::ALL.into_iter().zip(self.0.iter())
    }

    /// The values, sales first.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// A value per source, mapped by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerSource<U> {
        PerSource(self.0.map(f))
    }
}

impl<T> From<[T; 2]> for PerSource<T> {
    /// `[sales, clicks]`, the order of the arrays `PerSource` replaces.
    fn from(values: [T; 2]) -> Self {
        Self(values)
    }
}

impl<T> std::ops::Index<Source> for PerSource<T> {
    type Output = T;
    fn index(&self, source: Source) -> &T {
        match source {
            Source::Sales => &self.0[0],
            Source::Clicks => &self.0[1],
        }
    }
}

impl<T> std::ops::IndexMut<Source> for PerSource<T> {
    fn index_mut(&mut self, source: Source) -> &mut T {
        match source {
            Source::Sales => &mut self.0[0],
            Source::Clicks => &mut self.0[1],
        }
    }
}

/// Kind of click event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClickKind {
    /// A product page view.
    View,
    /// An add-to-cart.
    AddToCart,
    /// A wishlist addition.
    Wishlist,
}

/// What an event contributes to its bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventBody {
    /// A sales line: quantity (negative for returns) and optional unit price.
    Sale {
        /// Units; negative = return or cancellation.
        qty: f64,
        /// Price per unit, if known.
        unit_price: Option<f64>,
    },
    /// A click.
    Click(ClickKind),
}

impl EventBody {
    /// The input topic this kind of event comes from.
    pub fn source(&self) -> Source {
        match self {
            EventBody::Sale { .. } => Source::Sales,
            EventBody::Click(_) => Source::Clicks,
        }
    }
}

/// A decoded, validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Stock-keeping unit (also the Kafka key).
    pub sku: Cow<'a, str>,
    /// When it happened.
    pub ts: EventTime,
    /// Contribution to the bucket.
    pub body: EventBody,
}

/// Why a message was rejected; the code is a bounded metric label and dead-letter header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Value larger than `ingest.max_payload_bytes`.
    PayloadTooLarge,
    /// Message had no value.
    EmptyPayload,
    /// Value is not UTF-8.
    InvalidUtf8,
    /// Value is not JSON (includes NaN/Infinity literals and numbers out of f64 range).
    InvalidJson,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field not in the schema is present.
    UnknownField,
    /// A field's value is out of range (empty SKU, negative price, absurd quantity, bad kind).
    InvalidValue,
    /// Event time before `ingest.min_event_time` or too far in the future.
    TimestampOutOfRange,
    /// Message key absent or empty.
    MissingKey,
    /// Message key differs from the `sku` field.
    KeyMismatch,
    /// The event's bucket had closed for its partition (beyond the allowed lateness).
    Late,
    /// The store was full and no SKU could be evicted.
    Capacity,
    /// A value in the Confluent wire format whose schema id the registry does not hold, or
    /// whose schema is of a kind the engine does not read (Protobuf).
    UnknownSchema,
    /// A value in the Confluent wire format whose body does not decode with its Avro schema.
    InvalidAvro,
}

impl RejectReason {
    /// Every reason, for metric registration and docs.
    pub const ALL: [RejectReason; 15] = [
        RejectReason::PayloadTooLarge,
        RejectReason::EmptyPayload,
        RejectReason::InvalidUtf8,
        RejectReason::InvalidJson,
        RejectReason::MissingField,
        RejectReason::WrongType,
        RejectReason::UnknownField,
        RejectReason::InvalidValue,
        RejectReason::TimestampOutOfRange,
        RejectReason::MissingKey,
        RejectReason::KeyMismatch,
        RejectReason::Late,
        RejectReason::Capacity,
        RejectReason::UnknownSchema,
        RejectReason::InvalidAvro,
    ];

    /// Stable code used in metrics labels and the `trendcast-reason` header.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::PayloadTooLarge => "payload_too_large",
            RejectReason::EmptyPayload => "empty_payload",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::UnknownField => "unknown_field",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
            RejectReason::MissingKey => "missing_key",
            RejectReason::KeyMismatch => "key_mismatch",
            RejectReason::Late => "late",
            RejectReason::Capacity => "capacity",
            RejectReason::UnknownSchema => "unknown_schema",
            RejectReason::InvalidAvro => "invalid_avro",
        }
    }
}

/// A rejected message: reason code plus detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Rejection {
    /// Bounded reason code.
    pub reason: RejectReason,
    /// What exactly was wrong.
    pub detail: String,
}

impl Rejection {
    /// A rejection with a reason and detail.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The reject reason of a body serde could not decode (shared by every JSON input).
pub fn classify(err: &serde_json::Error) -> RejectReason {
    use serde_json::error::Category;
    match err.classify() {
        Category::Io | Category::Syntax | Category::Eof => RejectReason::InvalidJson,
        Category::Data => {
            let text = err.to_string();
            if text.starts_with("missing field") {
                RejectReason::MissingField
            } else if text.starts_with("unknown field") {
                RejectReason::UnknownField
            } else if text.starts_with("invalid type") {
                RejectReason::WrongType
            } else {
                RejectReason::InvalidValue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_indexes_by_source_and_serialises_as_the_array_it_replaced() {
        let mut offsets = PerSource::new(7_i64, -1);
        offsets[Source::Clicks] = 9;
        assert_eq!(offsets[Source::Sales], 7);
        assert_eq!(offsets.entries().last(), Some((Source::Clicks, &9)));
        let config = bincode::config::standard();
        let ours = bincode::serde::encode_to_vec(offsets, config).expect("encode");
        let array = bincode::serde::encode_to_vec([7_i64, 9], config).expect("encode");
        assert_eq!(
            ours, array,
            "checkpoints written with [i64; 2] must read back"
        );
        assert_eq!(serde_json::to_string(&offsets).expect("json"), "[7,9]");
    }
}
