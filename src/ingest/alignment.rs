//! Event-time alignment of the input partitions.
//!
//! A bucket may close only once every input partition that still has messages to read has
//! passed it: otherwise a SKU whose clicks are read more slowly than its sales would be scored
//! for a later bucket before its earlier clicks arrive, and the update for the earlier bucket
//! would never be made (updates never go back in time). The *frontier* is therefore the
//! smallest event time over the (source, partition) pairs being read; pairs that are caught up
//! (nothing left to read) do not hold it back, which is how an idle input is handled.
//!
//! Reading too far ahead of the frontier would slide windows past buckets not yet scored, so a
//! partition whose event time runs more than `lead` ahead of the frontier is paused while the
//! frontier's partition has messages waiting, and resumed once it is back within `lead`. The
//! same lag test decides "caught up": librdkafka's cached high watermark against the next offset.
//!
//! A caught-up pair keeps holding the frontier for `idle_hold` after it last had messages
//! waiting (as Kafka Streams' `max.task.idle.ms` does): data that arrives on it shortly after a
//! pause, behind the other partitions, still gets its per-bucket updates. Only a pair quiet for
//! longer stops holding the frontier, so one silent input cannot stall every close. A pair just
//! assigned counts as busy too: its "caught up" may come from a high watermark cached before the
//! assignment, while new messages already wait on it (seen after a broker outage, when the other
//! partitions' fresh data closed buckets before this one was read). A pair that is only held,
//! with no event time yet, is skipped: there is nothing of it to wait for.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::event::Source;

/// Per (source, partition): largest admitted event time and whether messages are waiting.
#[derive(Debug, Default)]
pub struct Alignment {
    lag: HashMap<(Source, u16), bool>,
    /// When each pair last had messages waiting or delivered one.
    busy_at: HashMap<(Source, u16), Instant>,
    paused: HashSet<(Source, u16)>,
    idle_hold: Duration,
}

/// What to change after [`Alignment::plan`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Pairs to pause.
    pub pause: Vec<(Source, u16)>,
    /// Pairs to resume.
    pub resume: Vec<(Source, u16)>,
}

impl Alignment {
    /// Alignment where a caught-up pair holds the frontier for `idle_hold` more.
    pub fn new(idle_hold: Duration) -> Self {
        Self {
            idle_hold,
            ..Self::default()
        }
    }

    /// Records whether `source`'s `partition` has messages waiting (unknown counts as waiting).
    pub fn set_lagging(&mut self, source: Source, partition: u16, lagging: bool) {
        self.lag.insert((source, partition), lagging);
        if lagging {
            self.busy_at.insert((source, partition), Instant::now());
        }
    }

    /// Forgets revoked partitions.
    pub fn release(&mut self, partitions: &[u16]) {
        self.lag.retain(|(_, p), _| !partitions.contains(p));
        self.busy_at.retain(|(_, p), _| !partitions.contains(p));
        self.paused.retain(|(_, p)| !partitions.contains(p));
    }

    /// Notes that `partition` was just assigned: both its pairs hold the frontier for
    /// `idle_hold`, whatever a cached high watermark says.
    pub fn assign(&mut self, partition: u16) {
        let now = Instant::now();
        for source in [Source::Sales, Source::Clicks] {
            self.busy_at.insert((source, partition), now);
        }
    }

    /// Whether the pair has messages waiting (unknown counts as waiting).
    fn waiting(&self, key: (Source, u16)) -> bool {
        self.lag.get(&key).copied().unwrap_or(true)
    }

    /// Whether the pair holds the frontier: messages waiting (or unknown), or caught up for
    /// less than `idle_hold`.
    fn lagging(&self, source: Source, partition: u16) -> bool {
        let key = (source, partition);
        self.waiting(key)
            || self
                .busy_at
                .get(&key)
                .is_some_and(|t| t.elapsed() < self.idle_hold)
    }

    /// The frontier over `pairs` (each with its event time, `None` when it has had none): the
    /// smallest event time of the lagging pairs; when none is lagging, the largest of all.
    /// A pair with messages waiting but no event yet holds the frontier back entirely (`None`);
    /// one only held by the idle hold with no event yet is skipped.
    pub fn frontier(&self, pairs: &[((Source, u16), Option<i64>)]) -> Option<i64> {
        let mut min: Option<i64> = None;
        let mut any_lagging = false;
        for ((s, p), wm) in pairs {
            if !self.lagging(*s, *p) {
                continue;
            }
            match wm {
                Some(w) => min = Some(min.map_or(*w, |m| m.min(*w))),
                None if self.waiting((*s, *p)) => return None,
                None => continue,
            }
            any_lagging = true;
        }
        if any_lagging {
            min
        } else {
            pairs.iter().filter_map(|(_, wm)| *wm).max()
        }
    }

    /// Which pairs to pause (more than `lead_ms` ahead of the frontier while a lagging pair
    /// holds it) and which to resume.
    pub fn plan(&mut self, pairs: &[((Source, u16), Option<i64>)], lead_ms: i64) -> Plan {
        let frontier = self.frontier(pairs);
        let held = pairs.iter().any(|((s, p), _)| self.lagging(*s, *p));
        let mut plan = Plan::default();
        for (key, wm) in pairs {
            let ahead = match (frontier, wm) {
                (Some(f), Some(w)) => held && *w > f.saturating_add(lead_ms),
                _ => false,
            };
            if ahead && self.paused.insert(*key) {
                plan.pause.push(*key);
            } else if !ahead && self.paused.remove(key) {
                plan.resume.push(*key);
            }
        }
        plan
    }

    /// Pairs currently marked as having messages waiting.
    pub fn lagging_pairs(&self) -> Vec<(Source, u16)> {
        self.lag
            .iter()
            .filter(|(_, l)| **l)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Notes that a message of `source`'s `partition` was just read.
    pub fn touch(&mut self, source: Source, partition: u16) {
        self.busy_at.insert((source, partition), Instant::now());
    }

    /// Stops holding the frontier for caught-up pairs (at shutdown: what has been read is all
    /// there is to close with).
    pub fn drop_idle_hold(&mut self) {
        self.idle_hold = Duration::ZERO;
    }

    /// Forgets which pairs it paused (after everything was resumed at once).
    pub fn forget_pauses(&mut self) {
        self.paused.clear();
    }

    /// Pairs paused for alignment.
    pub fn paused(&self) -> &HashSet<(Source, u16)> {
        &self.paused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_is_the_slowest_partition_still_being_read() {
        let mut a = Alignment::default();
        let pairs = [
            ((Source::Sales, 0), Some(500)),
            ((Source::Clicks, 0), Some(100)),
        ];
        assert_eq!(a.frontier(&pairs), Some(100));
        a.set_lagging(Source::Clicks, 0, false);
        a.set_lagging(Source::Sales, 0, true);
        assert_eq!(
            a.frontier(&pairs),
            Some(500),
            "caught-up clicks do not hold it back"
        );
        a.set_lagging(Source::Sales, 0, false);
        assert_eq!(a.frontier(&pairs), Some(500), "nothing lagging: the newest");
        a.set_lagging(Source::Clicks, 0, true);
        let fresh = [((Source::Sales, 0), Some(500)), ((Source::Clicks, 0), None)];
        assert_eq!(
            a.frontier(&fresh),
            None,
            "a lagging input with no event yet"
        );
    }

    #[test]
    fn a_caught_up_pair_holds_the_frontier_for_the_idle_hold() {
        let mut a = Alignment::new(Duration::from_secs(3600));
        let pairs = [
            ((Source::Sales, 0), Some(500)),
            ((Source::Clicks, 0), Some(100)),
        ];
        a.set_lagging(Source::Sales, 0, false);
        a.set_lagging(Source::Clicks, 0, true);
        a.set_lagging(Source::Clicks, 0, false);
        assert_eq!(
            a.frontier(&pairs),
            Some(100),
            "clicks were busy a moment ago"
        );
        a.drop_idle_hold();
        assert_eq!(a.frontier(&pairs), Some(500));
    }

    #[test]
    fn a_just_assigned_pair_holds_the_frontier_though_it_looks_caught_up() {
        let mut a = Alignment::new(Duration::from_secs(3600));
        let pairs = [
            ((Source::Sales, 0), Some(500)),
            ((Source::Clicks, 0), Some(100)),
            ((Source::Clicks, 1), None),
        ];
        a.assign(0);
        a.assign(1);
        // a high watermark cached before the assignment says nothing waits on clicks 0
        a.set_lagging(Source::Sales, 0, true);
        a.set_lagging(Source::Clicks, 0, false);
        a.set_lagging(Source::Sales, 1, false);
        a.set_lagging(Source::Clicks, 1, false);
        assert_eq!(a.frontier(&pairs), Some(100), "clicks 0 was just assigned");
        a.set_lagging(Source::Clicks, 1, true);
        assert_eq!(
            a.frontier(&pairs),
            None,
            "messages wait on a pair with no event yet"
        );
    }

    #[test]
    fn leaders_pause_and_resume() {
        let mut a = Alignment::default();
        a.set_lagging(Source::Sales, 0, true);
        a.set_lagging(Source::Clicks, 0, true);
        let pairs = [
            ((Source::Sales, 0), Some(1_000)),
            ((Source::Clicks, 0), Some(100)),
        ];
        let plan = a.plan(&pairs, 500);
        assert_eq!(plan.pause, vec![(Source::Sales, 0)]);
        assert!(a.plan(&pairs, 500).pause.is_empty(), "already paused");
        let caught_up = [
            ((Source::Sales, 0), Some(1_000)),
            ((Source::Clicks, 0), Some(900)),
        ];
        assert_eq!(a.plan(&caught_up, 500).resume, vec![(Source::Sales, 0)]);
    }
}
