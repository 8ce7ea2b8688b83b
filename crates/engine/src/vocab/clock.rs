//! The engine's two clocks, each a type of its own: event time and the engine clock.
//!
//! Event time ([`EventTime`]) is when a sale or click happened, UTC epoch milliseconds as the
//! event carries it in `ts`. Buckets, lateness, watermarks, the event-time frontier and every
//! `as_of` are event time. The wall clock (producer timestamps, latency) is epoch milliseconds too
//! but a different quantity; it stays a bare `i64` and never meets event time in a comparison.
//!
//! The engine clock ([`EngineMs`]) is not epoch time at all: it counts milliseconds since this process's
//! scorer started, and paces rescoring only (how soon one bucket of one SKU may be scored again).
//! It is written into checkpoints with each window, where a reading from another process means
//! nothing, which is why restored windows forget theirs (`SkuWindow::mark_restored`). Once it was
//! a bare `i64` named like the wall clock, and a restored window kept its writer's reading; a type
//! of its own keeps it from being mixed with epoch times again.

use serde::{Deserialize, Serialize};

/// A moment in event time: UTC epoch milliseconds, as events carry it.
///
/// Serialised as the bare number (`serde(transparent)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTime(i64);

impl EventTime {
    /// Earlier than every event (a watermark before any event arrived).
    pub const MIN: Self = Self(i64::MIN);

    /// The moment `ms` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// `ms` milliseconds later (saturating).
    pub const fn plus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `ms` milliseconds earlier (saturating, so `MIN` stays `MIN`).
    pub const fn minus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_sub(ms))
    }
}

/// A reading of the engine clock: milliseconds since this process's scorer started.
///
/// Serialised as the bare number (`serde(transparent)`), so checkpoints read and write the same
/// bytes as before it had a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EngineMs(i64);

impl EngineMs {
    /// Earlier than every reading: a window never scored by this process.
    pub const NEVER: Self = Self(i64::MIN);

    /// The reading `ms` milliseconds after the clock started.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the clock started.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The reading `interval_ms` later (saturating, so `NEVER` plus an interval stays early).
    pub const fn after(self, interval_ms: i64) -> Self {
        Self(self.0.saturating_add(interval_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_serialise_as_the_bare_number() {
        let config = bincode::config::standard();
        let bare = bincode::serde::encode_to_vec(1234_i64, config).unwrap();
        let engine = bincode::serde::encode_to_vec(EngineMs::from_millis(1234), config).unwrap();
        let event = bincode::serde::encode_to_vec(EventTime::from_millis(1234), config).unwrap();
        assert_eq!(engine, bare);
        assert_eq!(event, bare);
    }

    #[test]
    fn event_time_saturates_at_its_ends() {
        assert_eq!(EventTime::MIN.minus_ms(1), EventTime::MIN);
        assert_eq!(
            EventTime::from_millis(i64::MAX).plus_ms(1).millis(),
            i64::MAX
        );
        assert_eq!(EventTime::from_millis(10).minus_ms(3).millis(), 7);
    }

    #[test]
    fn never_is_before_every_reading_even_after_an_interval() {
        assert!(EngineMs::NEVER < EngineMs::from_millis(i64::MIN + 1));
        assert!(EngineMs::NEVER.after(60_000) < EngineMs::from_millis(0));
        assert_eq!(EngineMs::from_millis(5).after(10).millis(), 15);
    }
}
