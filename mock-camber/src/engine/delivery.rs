//! The outbox: deliveries waiting for their next attempt, the attempts in
//! flight, and what happens after each one. The retry decision is a pure
//! function, [`next_attempt`], that the unit tests below call directly.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use actix_web::web::Bytes;
use shared::retry::{jitter_factor, Schedule};
use shared::{DeliveryState, WebhookEvent};
use tokio::time::Instant;

use super::sender::{self, AttemptRequest, AttemptResult};
use super::{now_ms, Command, Due, Engine};
use crate::store::{self, AttemptRow, DeliveryRow, Headers};

/// One pending delivery as the engine holds it.
pub(super) struct ActiveDelivery {
    id: String,
    job_id: String,
    event: WebhookEvent,
    url: String,
    headers: Headers,
    body: Bytes,
    attempts: u32,
    failures: u32,
    sends_remaining: u32,
    bad_signature: bool,
    /// When the next attempt is due, while one is scheduled.
    due: Option<Instant>,
    in_flight: bool,
}

impl ActiveDelivery {
    fn from_row(row: &DeliveryRow) -> Self {
        Self {
            id: row.id.clone(),
            job_id: row.job_id.clone(),
            event: row.event,
            url: row.url.clone(),
            headers: row.headers.clone(),
            body: Bytes::from(row.body.clone()),
            attempts: row.attempts as u32,
            failures: row.failures as u32,
            sends_remaining: row.sends_remaining.max(1) as u32,
            bad_signature: row.bad_signature,
            due: None,
            in_flight: false,
        }
    }
}

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

/// The decision after an attempt, given the failures before it, the sends
/// still owed (duplicate mode owes more than one) and the jitter factor to
/// apply (see `shared::retry`). A 2xx counts as delivered; anything else,
/// including a 3xx (redirects are never followed) and transport errors, is
/// a failure. A `Retry-After` longer than the jittered step wins.
pub fn next_attempt(
    schedule: &Schedule,
    failures: u32,
    sends_remaining: u32,
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
    match schedule.next_wait(failures + 1, r.retry_after, jitter) {
        Some(wait) => Next::Retry(wait),
        None => Next::Dead,
    }
}

impl Engine {
    pub(super) fn enqueue_delivery(&mut self, row: &DeliveryRow) {
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        self.deliveries
            .insert(row.id.clone(), ActiveDelivery::from_row(row));
        self.schedule_delivery(&row.id, row.next_attempt_ms);
    }

    /// (Re)sets the delivery's timer to `due_ms` (unix ms; past = now).
    fn schedule_delivery(&mut self, id: &str, due_ms: i64) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        if let Some(at) = d.due.take() {
            self.timers.remove(at, Due::Delivery(id.to_owned()));
        }
        let wait = Duration::from_millis((due_ms - now_ms()).max(0) as u64);
        let at = Instant::now() + wait;
        d.due = Some(at);
        self.timers.insert(at, Due::Delivery(id.to_owned()));
    }

    pub(super) fn delivery_due(&mut self, id: &str) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        d.due = None;
        if d.in_flight {
            return;
        }
        d.in_flight = true;
        let req = AttemptRequest {
            url: d.url.clone(),
            delivery_id: d.id.clone(),
            event: d.event,
            headers: d.headers.clone(),
            body: d.body.clone(),
            n: d.attempts + 1,
            bad_signature: d.bad_signature,
        };
        let (client, settings, sem, tx) = (
            self.client.clone(),
            self.settings.clone(),
            Rc::clone(&self.in_flight),
            self.tx.clone(),
        );
        let id = id.to_owned();
        actix_rt::spawn(async move {
            let _permit = sem.acquire().await;
            let result = sender::send(&client, &req, &settings).await;
            let _ = tx.send(Command::Attempted { id, result });
        });
    }

    pub(super) fn attempted(&mut self, id: &str, r: AttemptResult) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        d.in_flight = false;
        d.attempts = r.n;
        let m = &self.metrics;
        m.observe_latency(r.latency.as_secs_f64());
        match (r.delivered(), r.status) {
            (true, _) => m.attempts_delivered.fetch_add(1, Relaxed),
            (false, Some(_)) => m.attempts_http_error.fetch_add(1, Relaxed),
            (false, None) => m.attempts_transport_error.fetch_add(1, Relaxed),
        };
        let next = next_attempt(
            &self.settings.retry_schedule,
            d.failures,
            d.sends_remaining,
            &r,
            jitter_factor(),
        );
        let (state, next_ms) = match next {
            Next::SendAgain => {
                d.sends_remaining -= 1;
                (DeliveryState::Pending, now_ms())
            }
            Next::Delivered => {
                d.sends_remaining = 0;
                (DeliveryState::Delivered, 0)
            }
            Next::Retry(wait) => {
                d.failures += 1;
                (DeliveryState::Pending, now_ms() + wait.as_millis() as i64)
            }
            Next::Dead => {
                d.failures += 1;
                m.deliveries_dead.fetch_add(1, Relaxed);
                (DeliveryState::Dead, 0)
            }
        };
        if state != DeliveryState::Pending {
            log::info!(
                "webhook {} for {} {state} after {} attempt(s)",
                d.id,
                d.job_id,
                d.attempts
            );
        }
        let row = AttemptRow {
            delivery_id: d.id.clone(),
            n: r.n as i64,
            at: r.at,
            status: r.status.map(i64::from),
            latency_ms: r.latency.as_millis() as i64,
            error: r.error,
            response_excerpt: r.excerpt,
        };
        let (remaining, failures) = (d.sends_remaining as i64, d.failures as i64);
        self.store.write_bg("webhook attempt", move |c| {
            store::record_attempt(c, &row, state, remaining, failures, next_ms)
        });
        if state == DeliveryState::Pending {
            self.schedule_delivery(id, next_ms);
        } else {
            self.deliveries.remove(id);
            self.metrics.queue_depth.fetch_sub(1, Relaxed);
        }
    }

    pub(super) fn redeliver(&mut self, row: &DeliveryRow) {
        if let Some(d) = self.deliveries.get(&row.id) {
            // Already queued: send now instead of at the next retry.
            if !d.in_flight {
                self.schedule_delivery(&row.id, 0);
            }
            return;
        }
        let mut d = ActiveDelivery::from_row(row);
        // One more attempt, outside the retry schedule.
        let spent = self.settings.retry_schedule.len() as u32;
        d.sends_remaining = 1;
        d.failures = spent;
        self.deliveries.insert(row.id.clone(), d);
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        let (rid, now) = (row.id.clone(), now_ms());
        self.store.write_bg("redeliver", move |c| {
            store::requeue_delivery(c, &rid, now, spent as i64)
        });
        self.schedule_delivery(&row.id, 0);
    }
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
            assert_eq!(next_attempt(&schedule(), 0, 1, &ok, 1.0), Next::Delivered);
            assert_eq!(next_attempt(&schedule(), 0, 3, &ok, 1.0), Next::SendAgain);
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
                next_attempt(&schedule(), 0, 1, &failed, 1.0),
                Next::Retry(MS(100))
            );
            assert_eq!(
                next_attempt(&schedule(), 0, 1, &failed, 1.2),
                Next::Retry(MS(120))
            );
            assert_eq!(
                next_attempt(&schedule(), 1, 1, &failed, 0.8),
                Next::Retry(MS(160))
            );
            assert_eq!(next_attempt(&schedule(), 2, 1, &failed, 1.0), Next::Dead);
        }
        let none = Schedule::default();
        assert_eq!(
            next_attempt(&none, 0, 1, &result(Some(500), None), 1.0),
            Next::Dead
        );
    }

    #[test]
    fn a_longer_retry_after_wins_a_shorter_one_does_not() {
        let later = result(Some(503), Some(Duration::from_secs(1)));
        assert_eq!(
            next_attempt(&schedule(), 0, 1, &later, 1.0),
            Next::Retry(MS(1000))
        );
        let sooner = result(Some(429), Some(MS(10)));
        assert_eq!(
            next_attempt(&schedule(), 0, 1, &sooner, 1.0),
            Next::Retry(MS(100))
        );
        // Retry-After does not extend a spent schedule.
        assert_eq!(next_attempt(&schedule(), 2, 1, &later, 1.0), Next::Dead);
    }
}
