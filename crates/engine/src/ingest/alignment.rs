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
//! pair whose event time runs more than `lead` ahead of the frontier is not read from its own
//! queue (`partition_queues`), and its messages that still come through the consumer queue are
//! held back (`holdback`), while the frontier's pair has messages waiting; both resume once it
//! is back within `lead`. A pair is paused in the consumer only when too much of it is held. The same lag
//! test decides "caught up": librdkafka's cached high watermark against the next offset.

//! A caught-up pair keeps holding the frontier for `idle_hold` after it last had messages
//! waiting (as Kafka Streams' `max.task.idle.ms` does): data that arrives on it shortly after a
//! pause, behind the other partitions, still gets its per-bucket updates. Only a pair quiet for
//! longer stops holding the frontier, so one silent input cannot stall every close. A pair just
//! assigned counts as busy too: its "caught up" may come from a high watermark cached before the
//! assignment, while new messages already wait on it (seen after a broker outage, when the other
//! partitions' fresh data closed buckets before this one was read). A pair that is only held,
//! with no event time yet, is skipped: there is nothing of it to wait for. One with messages
//! waiting but no event time yet leaves no frontier at all, so every pair that has events is
//! held until it delivers: otherwise the others could run a whole log ahead of it (seen in the
//! load run, where three of four partitions were read to their end before the fourth delivered,
//! and every window slid far past buckets no close had reached). Each newly assigned partition's
//! lag is asked of the broker at once, so an empty input does not count as waiting until the
//! first statistics arrive.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::event::Source;
use crate::vocab::EventTime;

/// Per (source, partition): largest admitted event time and whether messages are waiting.
#[derive(Debug, Default)]
pub struct Alignment {
    lag: HashMap<(Source, u16), bool>,
    /// When each pair last had messages waiting or delivered one.
    busy_at: HashMap<(Source, u16), Instant>,
    paused: HashSet<(Source, u16)>,
    idle_hold: Duration,
}

/// Which event times ingest holds back rather than applies now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldLine {
    /// None: no pair holds the frontier.
    Nothing,
    /// Event times past this one.
    Above(EventTime),
    /// Every pair with an event time (a pair with messages waiting has delivered none).
    All,
}

impl HoldLine {
    /// Whether a pair whose event time is `wm` is held back.
    pub fn holds(self, wm: Option<EventTime>) -> bool {
        match (self, wm) {
            (HoldLine::Above(line), Some(w)) => w > line,
            (HoldLine::All, Some(_)) => true,
            _ => false,
        }
    }
}

/// Where the frontier stands, from [`Alignment::assess`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// The event time every bucket before which may close (`None`: not known yet).
    pub frontier: Option<EventTime>,
    /// Which event times to hold back.
    pub hold_line: HoldLine,
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
        for source in Source::ALL {
            self.busy_at.insert((source, partition), now);
        }
    }

    /// Whether the pair has messages waiting (unknown counts as waiting).
    pub fn waiting(&self, key: (Source, u16)) -> bool {
        self.lag.get(&key).copied().unwrap_or(true)
    }

    /// Whether the pair holds the frontier at `now`: messages waiting (or unknown), or caught
    /// up for less than `idle_hold`.
    fn lagging(&self, key: (Source, u16), now: Instant) -> bool {
        self.waiting(key)
            || self
                .busy_at
                .get(&key)
                .is_some_and(|t| now.saturating_duration_since(*t) < self.idle_hold)
    }

    /// The frontier and the hold line over `pairs` (each with its event time, `None` when it
    /// has had none), judged at `now` in one pass: ingest asks after every message, so each
    /// pair's lag is looked up once and the clock read once by the caller.
    ///
    /// The frontier is the smallest event time of the lagging pairs; when none is lagging, the
    /// largest of all. A pair with messages waiting but no event yet leaves no frontier
    /// (`None`); one only held by the idle hold with no event yet is skipped. The hold line
    /// (see `holdback`) is `lead_ms` past the frontier while a pair lags; every event time
    /// while there is no frontier but some pair has one; nothing when no pair lags.
    pub fn assess(
        &self,
        pairs: &[((Source, u16), Option<EventTime>)],
        lead_ms: i64,
        now: Instant,
    ) -> Assessment {
        let mut slowest: Option<EventTime> = None;
        let mut newest: Option<EventTime> = None;
        let (mut any_lagging, mut lagging_with_event, mut blocked) = (false, false, false);
        for (key, wm) in pairs {
            newest = newest.max(*wm);
            if !self.lagging(*key, now) {
                continue;
            }
            any_lagging = true;
            match wm {
                Some(w) => {
                    slowest = Some(slowest.map_or(*w, |m| m.min(*w)));
                    lagging_with_event = true;
                }
                None if self.waiting(*key) => blocked = true,
                None => {}
            }
        }
        let frontier = if blocked {
            None
        } else if lagging_with_event {
            slowest
        } else {
            newest
        };
        let hold_line = match (any_lagging, frontier) {
            (false, _) => HoldLine::Nothing,
            (true, Some(f)) => HoldLine::Above(f.plus_ms(lead_ms)),
            (true, None) if newest.is_some() => HoldLine::All,
            (true, None) => HoldLine::Nothing,
        };
        Assessment {
            frontier,
            hold_line,
        }
    }

    /// Which pairs to pause in the consumer because `held(pair)` messages are held for them (at
    /// least `limit`), and which paused ones to resume (down to half of it).
    pub fn plan(
        &mut self,
        pairs: &[((Source, u16), Option<EventTime>)],
        held: impl Fn((Source, u16)) -> usize,
        limit: usize,
    ) -> Plan {
        let mut plan = Plan::default();
        for (key, _) in pairs {
            let n = held(*key);
            if n >= limit && self.paused.insert(*key) {
                plan.pause.push(*key);
            } else if n <= limit / 2 && self.paused.remove(key) {
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

    /// Notes that a message of `source`'s `partition` was read at `now`.
    pub fn touch(&mut self, source: Source, partition: u16, now: Instant) {
        self.busy_at.insert((source, partition), now);
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

    fn t(ms: i64) -> EventTime {
        EventTime::from_millis(ms)
    }

    fn frontier(a: &Alignment, pairs: &[((Source, u16), Option<EventTime>)]) -> Option<EventTime> {
        a.assess(pairs, 0, Instant::now()).frontier
    }

    fn hold_line(
        a: &Alignment,
        pairs: &[((Source, u16), Option<EventTime>)],
        lead_ms: i64,
    ) -> HoldLine {
        a.assess(pairs, lead_ms, Instant::now()).hold_line
    }

    #[test]
    fn frontier_is_the_slowest_partition_still_being_read() {
        let mut a = Alignment::default();
        let pairs = [
            ((Source::Sales, 0), Some(t(500))),
            ((Source::Clicks, 0), Some(t(100))),
        ];
        assert_eq!(frontier(&a, &pairs), Some(t(100)));
        a.set_lagging(Source::Clicks, 0, false);
        a.set_lagging(Source::Sales, 0, true);
        assert_eq!(
            frontier(&a, &pairs),
            Some(t(500)),
            "caught-up clicks do not hold it back"
        );
        a.set_lagging(Source::Sales, 0, false);
        assert_eq!(
            frontier(&a, &pairs),
            Some(t(500)),
            "nothing lagging: the newest"
        );
        a.set_lagging(Source::Clicks, 0, true);
        let fresh = [
            ((Source::Sales, 0), Some(t(500))),
            ((Source::Clicks, 0), None),
        ];
        assert_eq!(
            frontier(&a, &fresh),
            None,
            "a lagging input with no event yet"
        );
    }

    #[test]
    fn a_caught_up_pair_holds_the_frontier_for_the_idle_hold() {
        let mut a = Alignment::new(Duration::from_secs(3600));
        let pairs = [
            ((Source::Sales, 0), Some(t(500))),
            ((Source::Clicks, 0), Some(t(100))),
        ];
        a.set_lagging(Source::Sales, 0, false);
        a.set_lagging(Source::Clicks, 0, true);
        a.set_lagging(Source::Clicks, 0, false);
        assert_eq!(
            frontier(&a, &pairs),
            Some(t(100)),
            "clicks were busy a moment ago"
        );
        a.drop_idle_hold();
        assert_eq!(frontier(&a, &pairs), Some(t(500)));
    }

    #[test]
    fn a_just_assigned_pair_holds_the_frontier_though_it_looks_caught_up() {
        let mut a = Alignment::new(Duration::from_secs(3600));
        let pairs = [
            ((Source::Sales, 0), Some(t(500))),
            ((Source::Clicks, 0), Some(t(100))),
            ((Source::Clicks, 1), None),
        ];
        a.assign(0);
        a.assign(1);
        // a high watermark cached before the assignment says nothing waits on clicks 0
        a.set_lagging(Source::Sales, 0, true);
        a.set_lagging(Source::Clicks, 0, false);
        a.set_lagging(Source::Sales, 1, false);
        a.set_lagging(Source::Clicks, 1, false);
        assert_eq!(
            frontier(&a, &pairs),
            Some(t(100)),
            "clicks 0 was just assigned"
        );
        a.set_lagging(Source::Clicks, 1, true);
        assert_eq!(
            frontier(&a, &pairs),
            None,
            "messages wait on a pair with no event yet"
        );
    }

    #[test]
    fn pairs_with_events_wait_for_one_that_has_delivered_none() {
        let mut a = Alignment::default();
        a.set_lagging(Source::Sales, 0, true);
        a.set_lagging(Source::Sales, 1, true);
        let pairs = [
            ((Source::Sales, 0), Some(t(1_000_000))),
            ((Source::Sales, 1), None),
        ];
        assert_eq!(hold_line(&a, &pairs, 500), HoldLine::All);
        assert!(HoldLine::All.holds(Some(t(1))) && !HoldLine::All.holds(None));
        let delivered = [
            ((Source::Sales, 0), Some(t(1_000_000))),
            ((Source::Sales, 1), Some(t(999_000))),
        ];
        assert_eq!(hold_line(&a, &delivered, 500), HoldLine::Above(t(999_500)));
        assert!(HoldLine::Above(t(999_500)).holds(Some(t(1_000_000))));
        assert!(!HoldLine::Above(t(999_500)).holds(Some(t(999_500))));
        // an empty input (nothing waiting, no event) holds nothing back
        a.set_lagging(Source::Sales, 1, false);
        a.set_lagging(Source::Sales, 0, false);
        a.drop_idle_hold();
        assert_eq!(hold_line(&a, &pairs, 500), HoldLine::Nothing);
    }

    #[test]
    fn pairs_holding_too_much_pause_and_resume() {
        let mut a = Alignment::default();
        let pairs = [
            ((Source::Sales, 0), Some(t(1_000))),
            ((Source::Clicks, 0), Some(t(100))),
        ];
        let held = |n: usize| move |k: (Source, u16)| if k.0 == Source::Sales { n } else { 0 };
        assert_eq!(a.plan(&pairs, held(10), 10).pause, vec![(Source::Sales, 0)]);
        assert!(
            a.plan(&pairs, held(10), 10).pause.is_empty(),
            "already paused"
        );
        assert!(
            a.plan(&pairs, held(6), 10).resume.is_empty(),
            "not down to half yet"
        );
        assert_eq!(a.plan(&pairs, held(5), 10).resume, vec![(Source::Sales, 0)]);
    }
}
