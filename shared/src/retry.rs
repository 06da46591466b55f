//! Retries and durations, one implementation for both binaries: the wait
//! before a further attempt (schedule step with jitter, or a longer
//! `Retry-After`), the `Retry-After` header itself (delay-seconds or an
//! HTTP date), and the duration syntax of both command lines.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

/// No `Retry-After` is honoured beyond this: a receiver or Camber asking for
/// a day would otherwise park the work for a day.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// Waits between attempts: the wait after the first failure, after the
/// second, … After the last step the work gives up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

impl Schedule {
    /// `500ms,1s,2s` → three waits; empty → no retries. Bare numbers take
    /// `bare`'s unit.
    pub fn parse(s: &str, bare: Bare) -> Result<Self, String> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| parse_duration(p, bare))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The wait before the next attempt once `failures` attempts (≥ 1) have
    /// failed, or `None` when the schedule is spent. `jitter` scales the
    /// schedule's step (see [`jitter_factor`]); a longer `retry_after` wins.
    /// Pure: tests call it with a fixed jitter.
    pub fn next_wait(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        let step = *self.0.get((failures as usize).checked_sub(1)?)?;
        let base = step.mul_f64(jitter);
        Some(match retry_after {
            Some(ra) => base.max(ra.min(RETRY_AFTER_CAP)),
            None => base,
        })
    }
}

/// A random factor in 0.8..=1.2 (±20 %), so that retries of many jobs or
/// deliveries spread out instead of arriving together.
pub fn jitter_factor() -> f64 {
    rand::thread_rng().gen_range(0.8..=1.2)
}

/// A `Retry-After` value: delay-seconds (`120`, also `1.5` as some servers
/// send) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, relative to
/// `now`; a date in the past is 0). Capped at [`RETRY_AFTER_CAP`]; `None`
/// when unreadable.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    let wait = if v.bytes().next()?.is_ascii_digit() {
        let secs: f64 = v.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64()))
    } else {
        let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(RETRY_AFTER_CAP))
}

/// What a number without a unit means on a command line. The two binaries
/// documented different units before they shared this parser, and both
/// documented forms keep working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bare {
    Millis,
    Secs,
}

/// `250ms`, `2s`, `5m`, `1h`, `7d`, `1h30m` (humantime's syntax), or a bare
/// number in `bare`'s unit (`1.5` is allowed for seconds).
pub fn parse_duration(s: &str, bare: Bare) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let n: f64 = s
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like 250ms, 2s, 5m or 1h"))?;
        return Ok(match bare {
            Bare::Millis if s.contains('.') => {
                return Err(format!("`{s}`: bare milliseconds are whole numbers"))
            }
            Bare::Millis => Duration::from_millis(n as u64),
            Bare::Secs => Duration::from_secs_f64(n),
        });
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 250ms, 2s, 5m or 1h ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn durations_take_units_and_bare_numbers_in_the_callers_unit() {
        for bare in [Bare::Millis, Bare::Secs] {
            assert_eq!(parse_duration("250ms", bare), Ok(MS(250)));
            assert_eq!(parse_duration("2s", bare), Ok(MS(2000)));
            assert_eq!(parse_duration("5m", bare), Ok(MS(300_000)));
            assert_eq!(parse_duration("1h", bare), Ok(MS(3_600_000)));
            assert_eq!(parse_duration("7d", bare), Ok(MS(7 * 86_400_000)));
            assert_eq!(parse_duration(" 1h30m ", bare), Ok(MS(5_400_000)));
            assert!(parse_duration("fast", bare).is_err());
            assert!(parse_duration("3 parsecs", bare).is_err());
            assert!(parse_duration("", bare).is_err());
        }
        assert_eq!(parse_duration("25", Bare::Millis), Ok(MS(25)));
        assert_eq!(parse_duration("3", Bare::Secs), Ok(MS(3000)));
        assert_eq!(parse_duration("1.5", Bare::Secs), Ok(MS(1500)));
        assert!(parse_duration("1.5", Bare::Millis).is_err());
    }

    #[test]
    fn schedules_are_comma_separated_and_may_be_empty() {
        assert_eq!(
            Schedule::parse("10ms,20ms, 1s", Bare::Millis),
            Ok(Schedule(vec![MS(10), MS(20), MS(1000)]))
        );
        assert_eq!(Schedule::parse("", Bare::Millis), Ok(Schedule(vec![])));
        assert!(Schedule::parse("10ms,soon", Bare::Secs).is_err());
    }

    #[test]
    fn next_wait_walks_the_schedule_then_gives_up() {
        let s = Schedule(vec![MS(100), MS(200)]);
        assert_eq!(s.next_wait(0, None, 1.0), None, "no failure, no retry");
        assert_eq!(s.next_wait(1, None, 1.0), Some(MS(100)));
        assert_eq!(s.next_wait(2, None, 1.0), Some(MS(200)));
        assert_eq!(s.next_wait(3, None, 1.0), None);
        assert_eq!(s.next_wait(1, None, 1.2), Some(MS(120)));
        assert_eq!(s.next_wait(1, None, 0.8), Some(MS(80)));
        assert_eq!(Schedule::default().next_wait(1, None, 1.0), None);
    }

    #[test]
    fn a_longer_retry_after_wins_and_is_capped() {
        let s = Schedule(vec![MS(100)]);
        assert_eq!(s.next_wait(1, Some(MS(50)), 1.0), Some(MS(100)));
        assert_eq!(s.next_wait(1, Some(MS(5000)), 1.0), Some(MS(5000)));
        assert_eq!(
            s.next_wait(1, Some(Duration::from_secs(86_400)), 1.0),
            Some(RETRY_AFTER_CAP)
        );
        assert_eq!(s.next_wait(2, Some(MS(5000)), 1.0), None, "spent is spent");
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let f = jitter_factor();
            assert!((0.8..=1.2).contains(&f), "{f}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(MS(120_000)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(MS(1500)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(MS(60_000))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("99999999", now), Some(RETRY_AFTER_CAP));
        assert_eq!(
            parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", now),
            Some(RETRY_AFTER_CAP)
        );
        for bad in ["", "soon", "-1", "NaN", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
