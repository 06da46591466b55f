//! The engine's one set of deadlines: stage ends, delivery attempts and
//! the retries of failed writes, earliest first.

use std::collections::BTreeSet;

use tokio::time::Instant;

/// What a deadline in [`Timers`] is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Due {
    /// The job's current stage ends.
    Stage(String),
    /// The delivery's next attempt.
    Delivery(String),
    /// A job's terminal write, again (the last one did not commit).
    FinalWrite(String),
    /// Reading a page of parked deliveries, again (the last read failed).
    Refill,
    /// Attempt records whose write failed, again.
    AttemptWrites,
}

/// Every deadline of the engine, earliest first. Each job and delivery
/// remembers its own entry, so rescheduling or finishing removes it: no
/// stale wake-ups, no generation counters, no task per timer.
#[derive(Default)]
pub(super) struct Timers(BTreeSet<(Instant, Due)>);

impl Timers {
    pub(super) fn insert(&mut self, at: Instant, due: Due) {
        self.0.insert((at, due));
    }

    pub(super) fn remove(&mut self, at: Instant, due: Due) {
        self.0.remove(&(at, due));
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.0.first().map(|(at, _)| *at)
    }

    /// The earliest entry due at `now`, taken out.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        match self.0.first() {
            Some((at, _)) if *at <= now => self.0.pop_first().map(|(_, due)| due),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_pop_in_deadline_order_and_removed_ones_never_fire() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.insert(t0 + Duration::from_millis(30), Due::Stage("b".into()));
        t.insert(t0 + Duration::from_millis(10), Due::Delivery("d".into()));
        t.insert(t0 + Duration::from_millis(20), Due::Stage("a".into()));
        t.remove(t0 + Duration::from_millis(20), Due::Stage("a".into()));
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(t.pop_due(t0), None, "nothing is due yet");
        let later = t0 + Duration::from_millis(50);
        assert_eq!(t.pop_due(later), Some(Due::Delivery("d".into())));
        assert_eq!(t.pop_due(later), Some(Due::Stage("b".into())));
        assert_eq!(t.pop_due(later), None);
        assert_eq!(t.next(), None);
    }
}
