//! CPU time of the bench's own process (the engine runs in it) and of the broker, per phase.
//!
//! On a 2-core machine the broker and the engine share the cores, so a rate alone cannot tell an
//! engine that does too much work from one that waits: CPU seconds per 1,000 events can. Both are
//! read from `/proc/PID/stat` (user + system time of every thread, in the kernel's fixed
//! `USER_HZ` of 100 ticks per second). Elsewhere than Linux, or with no broker pid, the figures
//! are absent rather than wrong.

use serde_json::{json, Value};

/// `USER_HZ`: the unit of `/proc/PID/stat` times on every Linux architecture this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of process `pid` (`"self"` for this one), every thread included.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: the fields start after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // after the name: state is field 3 of the man page, utime 14, stime 15
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Reads the CPU time of this process and, when its pid is known, the broker's.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    broker_pid: Option<u32>,
}

/// CPU seconds read at the start of a phase.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    client: Option<f64>,
    broker: Option<f64>,
}

impl CpuMeter {
    pub fn new(broker_pid: Option<u32>) -> Self {
        Self { broker_pid }
    }

    fn broker_secs(&self) -> Option<f64> {
        cpu_secs(&self.broker_pid?.to_string())
    }

    pub fn mark(&self) -> CpuMark {
        CpuMark {
            client: cpu_secs("self"),
            broker: self.broker_secs(),
        }
    }

    /// CPU milliseconds per 1,000 of `events` since `mark`: this process's and the broker's.
    pub fn per_thousand(&self, mark: CpuMark, events: u64) -> Value {
        let per = |before: Option<f64>, now: Option<f64>| {
            let spent = now? - before?;
            Some((spent * 1_000.0 / (events.max(1) as f64 / 1_000.0) * 100.0).round() / 100.0)
        };
        json!({
            "client": per(mark.client, cpu_secs("self")),
            "broker": per(mark.broker, self.broker_secs()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_spent_cpu_and_spending_more_shows() {
        let meter = CpuMeter::new(None);
        let mark = meter.mark();
        let before = cpu_secs("self").expect("Linux /proc");
        let mut x = 0_u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_secs("self").expect("Linux /proc");
        assert!(after - before >= 0.1, "{before} -> {after}");
        let report = meter.per_thousand(mark, 1_000);
        assert!(report["client"].as_f64().is_some_and(|ms| ms >= 100.0));
        assert!(report["broker"].is_null());
    }

    #[test]
    fn an_unknown_pid_reads_as_absent() {
        assert_eq!(cpu_secs("999999999"), None);
    }
}
