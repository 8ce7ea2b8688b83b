//! Fuzzes the checkpoint decoder: any bytes give a record or an error, never a panic; a decoded
//! window is usable (every bucket readable) and re-encoding round-trips byte for byte (bytes,
//! not `==`: a calibration record legitimately holds NaN for "no coverage yet").
#![no_main]

use libfuzzer_sys::fuzz_target;
use trendcast::checkpoint::format::{decode, encode};
use trendcast::checkpoint::Record;

/// Ring slots of the default configuration (28 buckets + 2 open).
const CAPACITY: usize = 30;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = decode(data, CAPACITY) else {
        return;
    };
    if let Record::Window(w) = &record {
        if let Some(head) = w.window.head() {
            for b in head - 40..=head {
                let _ = w.window.bucket(b);
            }
        }
    }
    let bytes = encode(&record);
    let again = decode(&bytes, CAPACITY).expect("a decoded record re-encodes");
    assert_eq!(encode(&again), bytes);
});
