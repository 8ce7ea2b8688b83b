//! Ingest: input events from Kafka, validated, applied to windows; rejects to the dead-letter topic.
//!
//! Data path position: **ingest** → window → scoring → publish.

pub mod alignment;
pub mod avro;
pub mod consumer;
pub mod dead_letter;
pub mod event;
pub mod holdback;
pub mod offset_guard;
pub mod partition_queues;

pub use crate::window::Admission;
pub use consumer::Backpressure;
pub use consumer::{Ingest, IngestError};
pub use event::{
    decode, decode_counting, ClickKind, Event, EventBody, RejectReason, Rejection, Source,
    ValidationLimits,
};
