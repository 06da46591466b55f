//! Wall time that a jump of the system clock cannot push forward: the
//! wall time at start plus the monotonic time since, or the system clock
//! when that is behind. What the mock measures against persisted wall
//! times (the retention cutoff, the idempotency window) uses it, so a
//! forward jump neither sweeps jobs early nor expires keys; a backward
//! jump only keeps things longer. A jump while the mock is stopped cannot
//! be seen: the anchor is taken at start.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// The wall and monotonic clocks read together once.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    wall: DateTime<Utc>,
    mono: Instant,
}

impl Anchor {
    pub fn new(wall: DateTime<Utc>, mono: Instant) -> Self {
        Self { wall, mono }
    }

    /// The earlier of `wall` and the anchor's wall time advanced by the
    /// monotonic time since it (`mono`).
    pub fn steady(&self, wall: DateTime<Utc>, mono: Instant) -> DateTime<Utc> {
        let since = chrono::Duration::from_std(mono.saturating_duration_since(self.mono))
            .unwrap_or(chrono::Duration::MAX);
        let by_mono = self.wall.checked_add_signed(since).unwrap_or(wall);
        wall.min(by_mono)
    }
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor::new(Utc::now(), Instant::now()))
}

/// Takes the anchor now (at start), not at the first use.
pub fn init() {
    anchor();
}

/// Now, no later than the monotonic clock says since start.
pub fn now() -> DateTime<Utc> {
    anchor().steady(Utc::now(), Instant::now())
}

/// What finished before this is older than `window` by both clocks.
pub fn cutoff(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    now.checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_jump_of_the_wall_clock_does_not_move_the_cutoff() {
        let (wall0, mono0) = (Utc::now(), Instant::now());
        let a = Anchor::new(wall0, mono0);
        let window = Duration::from_secs(3600);
        // Ten minutes pass on the monotonic clock; the wall clock jumps a
        // day ahead meanwhile.
        let mono = mono0 + Duration::from_secs(600);
        let jumped = wall0 + chrono::Duration::seconds(600 + 86_400);
        let now = a.steady(jumped, mono);
        assert_eq!(now, wall0 + chrono::Duration::seconds(600));
        let c = cutoff(now, window);
        // Something that finished five minutes after start is not swept
        // (it is 5 minutes old, not a day).
        assert!(wall0 + chrono::Duration::seconds(300) > c);
        assert_eq!(c, wall0 - chrono::Duration::seconds(3000));
        // Without a jump both clocks agree.
        let steady_wall = wall0 + chrono::Duration::seconds(600);
        assert_eq!(a.steady(steady_wall, mono), steady_wall);
    }

    #[test]
    fn a_backward_jump_only_keeps_things_longer() {
        let (wall0, mono0) = (Utc::now(), Instant::now());
        let a = Anchor::new(wall0, mono0);
        let mono = mono0 + Duration::from_secs(600);
        let back = wall0 - chrono::Duration::seconds(3600);
        // The earlier clock wins: the cutoff moves back, nothing goes early.
        assert_eq!(a.steady(back, mono), back);
        assert!(cutoff(a.steady(back, mono), Duration::from_secs(60)) < wall0);
    }

    #[test]
    fn an_enormous_window_keeps_everything() {
        let c = cutoff(Utc::now(), Duration::from_secs(u64::MAX));
        assert_eq!(c, DateTime::<Utc>::MIN_UTC);
    }
}
