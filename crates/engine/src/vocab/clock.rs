//! The engine clock, a type of its own.
//!
//! Every other time in the engine is UTC epoch milliseconds (event time, or the wall clock for
//! producer timestamps). The engine clock is not: it counts milliseconds since this process's
//! scorer started, and paces rescoring only (how soon one bucket of one SKU may be scored again).
//! It is written into checkpoints with each window, where a reading from another process means
//! nothing, which is why restored windows forget theirs (`SkuWindow::mark_restored`). Once it was
//! a bare `i64` named like the wall clock, and a restored window kept its writer's reading; a type
//! of its own keeps it from being mixed with epoch times again.

use serde::{Deserialize, Serialize};

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
    fn serialises_as_the_bare_number() {
        let config = bincode::config::standard();
        let typed = bincode::serde::encode_to_vec(EngineMs::from_millis(1234), config).unwrap();
        let bare = bincode::serde::encode_to_vec(1234_i64, config).unwrap();
        assert_eq!(typed, bare);
    }

    #[test]
    fn never_is_before_every_reading_even_after_an_interval() {
        assert!(EngineMs::NEVER < EngineMs::from_millis(i64::MIN + 1));
        assert!(EngineMs::NEVER.after(60_000) < EngineMs::from_millis(0));
        assert_eq!(EngineMs::from_millis(5).after(10).millis(), 15);
    }
}
