//! Liveness and readiness of a running engine, as an orchestrator probes them.
//!
//! Kubernetes (or systemd, or a load balancer) asks two different questions:
//! - **live** (`/healthz`): is the process worth keeping? False once any engine thread has
//!   exited, because a process without its ingest, scorer or signals thread publishes nothing;
//!   `trendcast run` also exits then, this only lets a probe see it first.
//! - **ready** (`/readyz`): should it count as serving? True once the consumer group has
//!   assigned this instance its partitions (possibly none), every assigned partition's state is
//!   restored, and the ingest loop has polled the broker within [`POLL_STALE_AFTER`]. A long
//!   restore, or an ingest thread blocked on the scorer, reads as not ready, not as dead.
//!
//! The engine's threads write these facts as plain atomics (no lock on the hot path); the HTTP
//! listener reads them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long the ingest loop may go without polling before the instance reads as not ready. The
/// loop polls every 100 ms, paused or not, so a silence this long means it is blocked.
pub const POLL_STALE_AFTER: Duration = Duration::from_secs(5);

/// The engine threads a probe reports on, in a fixed order (bit `i` of the exit mask).
pub const THREADS: [&str; 3] = ["ingest", "scorer", "signals"];

/// Facts the engine's threads record for the health endpoints.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Bit `i` set once thread `THREADS[i]` has started.
    threads_started: AtomicU8,
    /// Bit `i` set once thread `THREADS[i]` has exited (returned, failed or panicked).
    threads_exited: AtomicU8,
    /// An assignment has come from the group coordinator (possibly of no partitions).
    assigned: AtomicBool,
    /// Partitions this instance owns (restored and consuming).
    partitions: AtomicUsize,
    /// Partitions being restored right now.
    restoring: AtomicUsize,
    /// Milliseconds after `started` of the ingest loop's last poll, plus one (0 = never).
    last_poll: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// One probe's answer, served as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The question's answer.
    pub ok: bool,
    /// Why not, when not (empty when `ok`).
    pub reasons: Vec<String>,
    /// Engine threads running now.
    pub threads_running: Vec<&'static str>,
    /// Engine threads that have exited.
    pub threads_exited: Vec<&'static str>,
    /// Partitions owned (restored and consuming).
    pub partitions: usize,
    /// Milliseconds since the ingest loop last polled the broker (`None`: never).
    pub last_poll_ms_ago: Option<u64>,
}

impl Health {
    /// Nothing started, nothing assigned.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            threads_started: AtomicU8::new(0),
            threads_exited: AtomicU8::new(0),
            assigned: AtomicBool::new(false),
            partitions: AtomicUsize::new(0),
            restoring: AtomicUsize::new(0),
            last_poll: AtomicU64::new(0),
        }
    }

    fn bit(thread: &str) -> u8 {
        THREADS
            .iter()
            .position(|t| *t == thread)
            .map_or(0, |i| 1 << i)
    }

    /// Marks `thread` running until the returned guard drops, which happens when the thread
    /// returns, fails or unwinds from a panic.
    pub fn thread_running(self: &Arc<Self>, thread: &'static str) -> ThreadGuard {
        self.threads_started
            .fetch_or(Self::bit(thread), Ordering::AcqRel);
        ThreadGuard {
            health: self.clone(),
            thread,
        }
    }

    /// The ingest loop polled the broker just now.
    pub fn polled(&self) {
        let ms = self.started.elapsed().as_millis() as u64 + 1;
        self.last_poll.store(ms, Ordering::Release);
    }

    /// A restore of `n` partitions begins.
    pub fn restoring(&self, n: usize) {
        self.restoring.fetch_add(n, Ordering::AcqRel);
    }

    /// An assignment was handled: `owned` partitions are now restored and owned, and the
    /// `restored` that [`Self::restoring`] announced are done.
    pub fn assigned(&self, owned: usize, restored: usize) {
        self.partitions.store(owned, Ordering::Release);
        let _ = self
            .restoring
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(restored))
            });
        self.assigned.store(true, Ordering::Release);
    }

    /// Partitions were revoked; `owned` remain.
    pub fn revoked(&self, owned: usize) {
        self.partitions.store(owned, Ordering::Release);
    }

    fn threads(&self, mask: u8) -> Vec<&'static str> {
        THREADS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, t)| *t)
            .collect()
    }

    fn probe(&self, reasons: Vec<String>) -> Probe {
        let started = self.threads_started.load(Ordering::Acquire);
        let exited = self.threads_exited.load(Ordering::Acquire);
        let last = self.last_poll.load(Ordering::Acquire);
        let now = self.started.elapsed().as_millis() as u64 + 1;
        Probe {
            ok: reasons.is_empty(),
            reasons,
            threads_running: self.threads(started & !exited),
            threads_exited: self.threads(exited),
            partitions: self.partitions.load(Ordering::Acquire),
            last_poll_ms_ago: (last > 0).then(|| now.saturating_sub(last)),
        }
    }

    fn exit_reasons(&self) -> Vec<String> {
        self.threads(self.threads_exited.load(Ordering::Acquire))
            .into_iter()
            .map(|t| format!("the {t} thread has exited"))
            .collect()
    }

    /// Liveness: every engine thread that started is still running.
    pub fn live(&self) -> Probe {
        self.probe(self.exit_reasons())
    }

    /// Readiness: live, assigned, restored and polling.
    pub fn ready(&self) -> Probe {
        let mut reasons = self.exit_reasons();
        if self.threads_started.load(Ordering::Acquire) & Self::bit("ingest") == 0 {
            reasons.push("the engine is starting".into());
        }
        if !self.assigned.load(Ordering::Acquire) {
            reasons.push("no partition assignment from the consumer group yet".into());
        }
        let restoring = self.restoring.load(Ordering::Acquire);
        if restoring > 0 {
            reasons.push(format!("{restoring} partitions are being restored"));
        }
        let probe = self.probe(Vec::new());
        match probe.last_poll_ms_ago {
            None => reasons.push("the broker has not been polled yet".into()),
            Some(ms) if ms > POLL_STALE_AFTER.as_millis() as u64 => {
                reasons.push(format!("the broker was last polled {ms} ms ago"))
            }
            Some(_) => {}
        }
        Probe {
            ok: reasons.is_empty(),
            reasons,
            ..probe
        }
    }
}

/// Marks its thread exited when dropped (see [`Health::thread_running`]).
#[derive(Debug)]
pub struct ThreadGuard {
    health: Arc<Health>,
    thread: &'static str,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.health
            .threads_exited
            .fetch_or(Health::bit(self.thread), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_assignment_restore_and_poll() {
        let health = Arc::new(Health::new());
        let _ingest = health.thread_running("ingest");
        assert!(health.live().ok);
        assert!(!health.ready().ok, "nothing assigned yet");
        health.polled();
        health.restoring(2);
        let probe = health.ready();
        assert!(!probe.ok);
        assert!(probe.reasons.iter().any(|r| r.contains("assignment")));
        health.assigned(2, 2);
        let probe = health.ready();
        assert!(probe.ok, "{probe:?}");
        assert_eq!(probe.partitions, 2);
        assert_eq!(probe.threads_running, vec!["ingest"]);
    }

    #[test]
    fn a_thread_that_exits_or_panics_fails_both_probes() {
        let health = Arc::new(Health::new());
        let _ingest = health.thread_running("ingest");
        health.polled();
        health.assigned(0, 0);
        assert!(health.ready().ok);
        let h = health.clone();
        let joined = std::thread::spawn(move || {
            let _scorer = h.thread_running("scorer");
            panic!("injected");
        })
        .join();
        assert!(joined.is_err());
        let live = health.live();
        assert!(!live.ok);
        assert_eq!(live.threads_exited, vec!["scorer"]);
        assert!(!health.ready().ok);
    }

    #[test]
    fn a_silent_ingest_loop_reads_as_not_ready() {
        let health = Health {
            started: Instant::now() - Duration::from_secs(60),
            ..Health::new()
        };
        health.threads_started.store(1, Ordering::Release);
        health.assigned(1, 0);
        // polled at second 1 of 60
        health.last_poll.store(1_001, Ordering::Release);
        let probe = health.ready();
        assert!(!probe.ok);
        assert!(probe.reasons[0].contains("last polled"), "{probe:?}");
        assert!(health.live().ok);
    }
}
