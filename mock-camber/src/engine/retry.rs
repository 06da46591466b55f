//! What follows a webhook attempt: the retry decision ([`next_attempt`], a
//! pure function the unit tests below call directly) and how long a stored
//! due time may make a delivery wait.

use std::time::Duration;

use shared::retry::{Schedule, RETRY_AFTER_CAP};

use super::sender::AttemptResult;
use crate::scenario::MAX_SCENARIO_MS;
pub use crate::store::AttemptKind;

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Delivered, and `duplicate` mode wants it sent again at once.
    SendAgain,
    /// Delivered as many times as asked.
    Delivered,
    /// Failed; try again after this long.
    Retry(Duration),
    /// Failed, and the schedule is spent.
    Dead,
}

/// The decision after an attempt of `kind`, given the failures before it,
/// the sends still owed (duplicate mode owes more than one) and the jitter
/// factor to apply (see `shared::retry`). A 2xx counts as delivered; anything else,
/// including a 3xx (redirects are never followed) and transport errors, is
/// a failure. A `Retry-After` longer than the jittered step wins.
pub fn next_attempt(
    schedule: &Schedule,
    failures: u32,
    sends_remaining: u32,
    kind: AttemptKind,
    r: &AttemptResult,
    jitter: f64,
) -> Next {
    if r.delivered() {
        return if sends_remaining > 1 {
            Next::SendAgain
        } else {
            Next::Delivered
        };
    }
    if kind == AttemptKind::Manual {
        return Next::Dead;
    }
    match schedule.next_wait(failures + 1, r.retry_after, jitter) {
        Some(wait) => Next::Retry(wait),
        None => Next::Dead,
    }
}

/// The largest factor `shared::retry::jitter_factor` draws (+20 %).
const MAX_JITTER: f64 = 1.2;

/// The longest wait the engine itself sets before attempt `attempts + 1`:
/// a scenario's webhook delay (at most a day) before the first, the
/// longest retry step with its jitter, or a capped `Retry-After`, after.
pub(super) fn longest_wait(schedule: &Schedule, attempts: u32) -> Duration {
    if attempts == 0 {
        return Duration::from_millis(MAX_SCENARIO_MS);
    }
    let step = schedule.0.iter().max().copied().unwrap_or_default();
    step.mul_f64(MAX_JITTER).max(RETRY_AFTER_CAP)
}

/// How long from now (`now_ms`, unix ms) until a due time `due_ms` read
/// as wall-clock time (stored, so a restart can resume it): a past one is
/// due at once, and one further ahead than `bound` (written while the
/// clock was wrong, or read after it jumped back) waits `bound`, so a
/// clock jump can delay a webhook by no more than the longest wait the
/// engine would have set. In memory the wait then runs on `Instant`.
pub(super) fn wait_until(due_ms: i64, now_ms: i64, bound: Duration) -> Duration {
    let ahead = due_ms.saturating_sub(now_ms).max(0) as u64;
    Duration::from_millis(ahead).min(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Option<u16>, retry_after: Option<Duration>) -> AttemptResult {
        AttemptResult {
            n: 1,
            at: String::new(),
            status,
            latency: Duration::ZERO,
            error: None,
            excerpt: None,
            retry_after,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn schedule() -> Schedule {
        Schedule(vec![MS(100), MS(200)])
    }

    #[test]
    fn a_2xx_is_delivered_or_sent_again_while_sends_are_owed() {
        for status in [200, 201, 204, 299] {
            let ok = result(Some(status), None);
            assert_eq!(
                next_attempt(&schedule(), 0, 1, AttemptKind::Scheduled, &ok, 1.0),
                Next::Delivered
            );
            assert_eq!(
                next_attempt(&schedule(), 0, 3, AttemptKind::Scheduled, &ok, 1.0),
                Next::SendAgain
            );
        }
    }

    #[test]
    fn failures_walk_the_schedule_with_jitter_then_die() {
        for failed in [
            result(Some(500), None),
            result(Some(302), None),
            result(None, None),
        ] {
            assert_eq!(
                next_attempt(&schedule(), 0, 1, AttemptKind::Scheduled, &failed, 1.0),
                Next::Retry(MS(100))
            );
            assert_eq!(
                next_attempt(&schedule(), 0, 1, AttemptKind::Scheduled, &failed, 1.2),
                Next::Retry(MS(120))
            );
            assert_eq!(
                next_attempt(&schedule(), 1, 1, AttemptKind::Scheduled, &failed, 0.8),
                Next::Retry(MS(160))
            );
            assert_eq!(
                next_attempt(&schedule(), 2, 1, AttemptKind::Scheduled, &failed, 1.0),
                Next::Dead
            );
        }
        let none = Schedule::default();
        assert_eq!(
            next_attempt(
                &none,
                0,
                1,
                AttemptKind::Scheduled,
                &result(Some(500), None),
                1.0
            ),
            Next::Dead
        );
    }

    #[test]
    fn a_due_time_far_ahead_is_clamped_to_the_longest_wait_and_a_past_one_is_due_now() {
        let now = 1_700_000_000_000;
        let hour = RETRY_AFTER_CAP;
        assert_eq!(wait_until(now + 1500, now, hour), MS(1500));
        assert_eq!(
            wait_until(now - 5000, now, hour),
            Duration::ZERO,
            "past: due now"
        );
        assert_eq!(wait_until(i64::MIN, now, hour), Duration::ZERO);
        // Written a year ahead (a forward jump since corrected): an hour.
        let year = 365 * 86_400_000;
        assert_eq!(wait_until(now + year, now, hour), hour);
        assert_eq!(wait_until(i64::MAX, now, hour), hour);
        // The bound: a day before the first attempt (a scenario's delay),
        // the longest jittered step or the Retry-After cap after.
        let s = Schedule(vec![MS(500), Duration::from_secs(7200)]);
        assert_eq!(longest_wait(&s, 0), MS(MAX_SCENARIO_MS));
        assert_eq!(longest_wait(&s, 1), Duration::from_secs(8640));
        assert_eq!(longest_wait(&schedule(), 3), RETRY_AFTER_CAP);
    }

    #[test]
    fn a_longer_retry_after_wins_a_shorter_one_does_not() {
        let later = result(Some(503), Some(Duration::from_secs(1)));
        assert_eq!(
            next_attempt(&schedule(), 0, 1, AttemptKind::Scheduled, &later, 1.0),
            Next::Retry(MS(1000))
        );
        let sooner = result(Some(429), Some(MS(10)));
        assert_eq!(
            next_attempt(&schedule(), 0, 1, AttemptKind::Scheduled, &sooner, 1.0),
            Next::Retry(MS(100))
        );
        // Retry-After does not extend a spent schedule.
        assert_eq!(
            next_attempt(&schedule(), 2, 1, AttemptKind::Scheduled, &later, 1.0),
            Next::Dead
        );
    }

    #[test]
    fn a_manual_attempt_is_one_more_send_outside_the_schedule() {
        let failed = result(Some(500), None);
        let manual = AttemptKind::Manual;
        assert_eq!(
            next_attempt(&schedule(), 0, 1, manual, &failed, 1.0),
            Next::Dead
        );
        let ok = result(Some(200), None);
        assert_eq!(
            next_attempt(&schedule(), 2, 1, manual, &ok, 1.0),
            Next::Delivered
        );
        assert_eq!(AttemptKind::parse("manual"), Some(manual));
    }
}
