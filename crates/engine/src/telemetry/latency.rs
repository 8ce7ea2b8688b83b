//! Single trend updates' latencies, kept for a load test to read back.
//!
//! Prometheus gets the event→update latency as a histogram (`EngineStats`). A load run wants the
//! samples themselves (exact percentiles, and each latency split where the engine hands the update
//! to the producer), but a running engine has no reader for them: kept always, they filled a
//! megasample buffer (8 MiB) behind a lock taken on every acknowledged update and were never read.
//! So they are kept only once asked for (`RunningEngine::keep_latency_samples`), in a recorder of
//! their own rather than among the metrics.

use std::sync::Mutex;

/// One trend update's latency, split where the engine hands it to the producer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySample {
    /// Input event that closed the bucket (its producer create time) → update acknowledged, ms.
    pub event_to_ack_ms: f32,
    /// Update handed to the producer → acknowledged by the broker, ms.
    pub send_to_ack_ms: f32,
}

/// Most samples kept between two [`LatencySamples::take`]s; later ones are counted, not kept.
const MAX_SAMPLES: usize = 1 << 20;

/// A bounded buffer of [`LatencySample`]s.
#[derive(Debug, Default)]
pub struct LatencySamples {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    samples: Vec<LatencySample>,
    dropped: u64,
}

impl LatencySamples {
    /// Keeps `sample`, unless the buffer is full.
    pub fn record(&self, sample: LatencySample) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.samples.len() < MAX_SAMPLES {
                kept.samples.push(sample);
            } else {
                kept.dropped += 1;
            }
        }
    }

    /// Takes the samples kept so far and how many did not fit, leaving none.
    pub fn take(&self) -> (Vec<LatencySample>, u64) {
        match self.kept.lock() {
            Ok(mut kept) => {
                let taken = std::mem::take(&mut *kept);
                (taken.samples, taken.dropped)
            }
            Err(_) => (Vec::new(), 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_it_records_until_taken() {
        let samples = LatencySamples::default();
        let one = LatencySample {
            event_to_ack_ms: 12.0,
            send_to_ack_ms: 3.0,
        };
        samples.record(one);
        samples.record(one);
        assert_eq!(samples.take(), (vec![one, one], 0));
        assert_eq!(samples.take(), (Vec::new(), 0), "taking leaves none");
    }
}
