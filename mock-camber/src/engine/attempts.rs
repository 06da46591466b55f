//! One attempt's round trip through the engine loop: started (its task on
//! the wire, `sender::send`), its result decided (`retry::next_attempt`)
//! and recorded (again until the write commits), the delivery scheduled
//! again or finished.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use shared::retry::jitter_factor;
use shared::DeliveryState;
use tokio::time::Instant;

use super::retry::{next_attempt, Next};
use super::sender::{self, AttemptRequest, AttemptResult};
use super::{now_ms, Command, Due, Engine};
use crate::store::{self, AttemptRow};

/// An attempt's record and the delivery state it led to, kept until it is
/// written: a write that fails (disk full) is tried again every second, so
/// a delivered webhook is never left `pending` in the store.
#[derive(Clone)]
pub(crate) struct AttemptWrite {
    row: AttemptRow,
    state: DeliveryState,
    remaining: i64,
    failures: i64,
    next_ms: i64,
}

impl Engine {
    pub(super) fn write_attempt(&mut self, w: AttemptWrite) {
        let (tx, again) = (self.tx.clone(), w.clone());
        // The webhook already went: its record may wait a moment for the
        // next submit's commit rather than take an fsync of its own. A
        // crash before it commits sends the webhook again, as a crash
        // between the receiver's answer and the commit always could.
        self.store.write_later(
            move |c| store::record_attempt(c, &w.row, w.state, w.remaining, w.failures, w.next_ms),
            move |res| {
                if let Err(e) = res {
                    let _ = tx.send(Command::AttemptNotWritten {
                        write: Box::new(again),
                        error: e.to_string(),
                    });
                }
            },
        );
    }

    pub(super) fn attempt_not_written(&mut self, w: AttemptWrite, error: &str) {
        if self.outbox.unwritten.is_empty() {
            log::error!(
                "could not record webhook attempt {} of {} ({error}); retrying every second",
                w.row.n,
                w.row.delivery_id
            );
            self.timers
                .insert(Instant::now() + Duration::from_secs(1), Due::AttemptWrites);
        }
        self.outbox.unwritten.push(w);
    }

    /// `Due::AttemptWrites`: the failed attempt records, written again.
    pub(super) fn rewrite_attempts(&mut self) {
        for w in std::mem::take(&mut self.outbox.unwritten) {
            self.write_attempt(w);
        }
    }

    /// Puts one attempt of a queued delivery on the wire; false when the
    /// delivery is gone.
    pub(super) fn start_attempt(&mut self, id: &str) -> bool {
        let Some(d) = self.outbox.deliveries.get_mut(id) else {
            return false;
        };
        d.queued = false;
        d.in_flight = true;
        self.outbox.sending += 1;
        let req = AttemptRequest {
            url: d.url.clone(),
            delivery_id: d.id.clone(),
            tenant: d.tenant.clone(),
            event: d.event,
            headers: d.headers.clone(),
            body: d.body.clone(),
            n: d.attempts + 1,
            faults: d.faults.clone(),
        };
        let (client, settings, tx) = (self.client.clone(), self.settings.clone(), self.tx.clone());
        let (id, generation) = (id.to_owned(), self.generation);
        let task = actix_rt::spawn(async move {
            let result = sender::send(&client, &req, &settings).await;
            let _ = tx.send(Command::Attempted {
                id,
                generation,
                result,
            });
        });
        d.attempt = Some(task.abort_handle());
        true
    }

    pub(super) fn attempted(&mut self, id: &str, r: AttemptResult) {
        let Some(d) = self.outbox.deliveries.get_mut(id) else {
            return;
        };
        d.in_flight = false;
        d.attempt = None;
        self.outbox.sending -= 1;
        self.outbox.lanes.finish(&d.dest);
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
            d.kind,
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
        let write = AttemptWrite {
            row,
            state,
            remaining: d.sends_remaining as i64,
            failures: d.failures as i64,
            next_ms,
        };
        self.write_attempt(write);
        if state == DeliveryState::Pending {
            self.schedule_delivery(id, next_ms);
        } else {
            if self.outbox.refilling {
                self.outbox.changed.insert(id.to_owned(), None);
            }
            self.outbox.deliveries.remove(id);
            self.metrics.queue_depth.fetch_sub(1, Relaxed);
        }
    }
}
