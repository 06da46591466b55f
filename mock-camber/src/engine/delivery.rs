//! The outbox: deliveries waiting for their next attempt, the attempts in
//! flight, and what happens after each one. The retry decision is a pure
//! function, [`next_attempt`], that the unit tests below call directly.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use actix_web::web::Bytes;
use shared::retry::{jitter_factor, Schedule, RETRY_AFTER_CAP};
use shared::{DeliveryState, WebhookEvent};
use tokio::time::Instant;

use super::sender::{self, AttemptRequest, AttemptResult};
use super::{now_ms, Command, Due, Engine};
use crate::scenario::{WebhookFaults, MAX_SCENARIO_MS};
use crate::store::{self, due_key, AttemptRow, DeliveryRow, DueKey, Headers};

/// One pending delivery as the engine holds it.
pub(super) struct ActiveDelivery {
    seq: i64,
    /// Unix ms of the next attempt while one is scheduled (its outbox key
    /// is `(due_ms, seq)`).
    due_ms: i64,
    id: String,
    job_id: String,
    tenant: String,
    event: WebhookEvent,
    url: String,
    /// The scheme, host and port of `url`: the lane it waits in.
    dest: Rc<str>,
    headers: Headers,
    body: Bytes,
    attempts: u32,
    failures: u32,
    sends_remaining: u32,
    faults: WebhookFaults,
    /// When the next attempt is due, while one is scheduled.
    due: Option<Instant>,
    /// Due, waiting in its destination's lane for a free slot.
    queued: bool,
    in_flight: bool,
    /// The task of the attempt on the wire, while there is one.
    attempt: Option<tokio::task::AbortHandle>,
}

impl ActiveDelivery {
    fn from_row(row: &DeliveryRow) -> Self {
        Self {
            seq: row.seq,
            due_ms: row.next_attempt_ms,
            id: row.id.clone(),
            job_id: row.job_id.clone(),
            tenant: row.tenant.clone(),
            event: row.event,
            url: row.url.clone(),
            dest: destination(&row.url),
            headers: row.headers.clone(),
            body: Bytes::from(row.body.clone()),
            attempts: row.attempts as u32,
            failures: row.failures as u32,
            sends_remaining: row.sends_remaining.max(1) as u32,
            faults: row.faults.clone(),
            due: None,
            queued: false,
            in_flight: false,
            attempt: None,
        }
    }

    /// Drops the attempt on the wire, if any (its connection closes).
    pub(super) fn abort(&mut self) {
        if let Some(task) = self.attempt.take() {
            task.abort();
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

/// The destination of a webhook URL, as the in-flight limits count it:
/// scheme, host and port (the default one when the URL names none), in
/// lower case. A URL that does not parse is its own destination.
pub(super) fn destination(url: &str) -> Rc<str> {
    let Ok(uri) = url.parse::<actix_web::http::Uri>() else {
        return Rc::from(url);
    };
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Rc::from(format!("{scheme}://{host}:{port}"))
}

/// The in-flight slots and who waits for them. At most `max_total`
/// attempts are on the wire, at most `max_per` of them to one destination;
/// due deliveries past either limit wait in their destination's lane (they
/// stay pending in the store, so waiting loses nothing), and a free slot
/// goes to the destinations in turn (round-robin), so a receiver that
/// hangs holds `max_per` slots and no more, and a destination with a long
/// queue cannot starve one with a short queue.
///
/// `turns` holds exactly the destinations that have a delivery waiting and
/// a slot of their own free, each once, so taking the next one is O(1).
pub(super) struct Lanes {
    max_total: usize,
    max_per: usize,
    /// Attempts on the wire, by destination (absent = none).
    busy: HashMap<Rc<str>, usize>,
    /// Due deliveries waiting for a slot, by destination, in due order.
    waiting: HashMap<Rc<str>, VecDeque<String>>,
    turns: VecDeque<Rc<str>>,
    in_flight: usize,
}

impl Lanes {
    pub(super) fn new(max_total: usize, max_per: usize) -> Self {
        Self {
            max_total: max_total.max(1),
            max_per: max_per.max(1),
            busy: HashMap::new(),
            waiting: HashMap::new(),
            turns: VecDeque::new(),
            in_flight: 0,
        }
    }

    fn busy(&self, dest: &str) -> usize {
        self.busy.get(dest).copied().unwrap_or(0)
    }

    /// A due delivery joins the end of its destination's lane.
    pub(super) fn push(&mut self, dest: Rc<str>, id: String) {
        let free = self.busy(&dest) < self.max_per;
        let lane = self.waiting.entry(dest.clone()).or_default();
        if lane.is_empty() && free {
            self.turns.push_back(dest);
        }
        lane.push_back(id);
    }

    /// The next delivery to send, its slot taken: the head of the lane
    /// whose turn it is, or none while every slot is taken or every
    /// waiting destination is at its own limit.
    pub(super) fn take(&mut self) -> Option<(Rc<str>, String)> {
        if self.in_flight >= self.max_total {
            return None;
        }
        let dest = self.turns.pop_front()?;
        let lane = self.waiting.get_mut(&dest)?;
        let id = lane.pop_front()?;
        let more = !lane.is_empty();
        if !more {
            self.waiting.remove(&dest);
        }
        let busy = self.busy.entry(dest.clone()).or_insert(0);
        *busy += 1;
        if more && *busy < self.max_per {
            self.turns.push_back(dest.clone());
        }
        self.in_flight += 1;
        Some((dest, id))
    }

    /// An attempt to `dest` is over: its slot is free again.
    pub(super) fn finish(&mut self, dest: &Rc<str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(busy) = self.busy.get_mut(dest) else {
            return;
        };
        let was_full = *busy >= self.max_per;
        *busy -= 1;
        if *busy == 0 {
            self.busy.remove(dest);
        }
        if was_full && self.waiting.contains_key(dest) {
            self.turns.push_back(dest.clone());
        }
    }

    /// Forgets every waiting delivery and every slot (a reset).
    pub(super) fn clear(&mut self) {
        *self = Self::new(self.max_total, self.max_per);
    }
}

/// An attempt's record and the delivery state it led to, kept until it is
/// written: a write that fails (disk full) is tried again every second, so
/// a delivered webhook is never left `pending` in the store.
#[derive(Clone)]
pub(super) struct AttemptWrite {
    row: AttemptRow,
    state: DeliveryState,
    remaining: i64,
    failures: i64,
    next_ms: i64,
}

/// The outbox in memory is bounded: it holds the pending deliveries due
/// first, at most `max_loaded` of them; the others stay in SQLite only
/// ("parked": every key from `parked_from` on) and are paged in, in due
/// order, when the memory half empties. Whatever is parked has its current
/// state stored, so dropping it from memory loses nothing.
#[derive(Default)]
pub(super) struct Outbox {
    /// Scheduled (not in flight) deliveries in memory, by outbox key.
    loaded: BTreeMap<DueKey, String>,
    /// Pending deliveries with a key from here on live in SQLite only.
    pub(super) parked_from: Option<DueKey>,
    /// How many are parked (for the queue-depth gauge).
    pub(super) parked: i64,
    /// A page is being read, or reading failed and is tried again later
    /// (at the `Due::Refill` timer).
    refilling: bool,
    /// Deliveries that changed while a page was being read: finished
    /// (`None`) or parked at a new key. The page shows their old state, so
    /// it must not load them.
    changed: HashMap<String, Option<DueKey>>,
    /// Attempts on the wire (a graceful stop waits for their results).
    pub(super) sending: usize,
    /// Attempt records whose write failed, waiting for `Due::AttemptWrites`.
    unwritten: Vec<AttemptWrite>,
}

impl Engine {
    fn write_attempt(&mut self, w: AttemptWrite) {
        let (tx, again) = (self.tx.clone(), w.clone());
        self.store.write_then(
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

    /// A delivery to send (new, resumed or paged in): held in memory, or
    /// parked when it is due after what is held and memory is full.
    pub(super) fn enqueue_delivery(&mut self, row: &DeliveryRow) {
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        if self.outbox.parked_from.is_some_and(|p| due_key(row) >= p) {
            self.outbox.parked += 1;
            return;
        }
        self.load_delivery(row);
    }

    fn load_delivery(&mut self, row: &DeliveryRow) {
        self.deliveries
            .insert(row.id.clone(), ActiveDelivery::from_row(row));
        self.schedule_delivery(&row.id, row.next_attempt_ms);
        self.evict_over_cap();
    }

    /// Parks the latest-due deliveries while memory holds too many.
    fn evict_over_cap(&mut self) {
        while self.deliveries.len() > self.max_loaded {
            let Some((key, id)) = self.outbox.loaded.pop_last() else {
                return; // all in flight
            };
            self.park(key, &id);
        }
    }

    /// Drops a scheduled delivery from memory; it is due at `key`, at or
    /// after everything still held, so the parked range starts there.
    fn park(&mut self, key: DueKey, id: &str) {
        if let Some(d) = self.deliveries.remove(id) {
            if let Some(at) = d.due {
                self.timers.remove(at, Due::Delivery(id.to_owned()));
            }
        }
        self.outbox.loaded.remove(&key);
        self.outbox.parked_from = Some(self.outbox.parked_from.map_or(key, |p| p.min(key)));
        self.outbox.parked += 1;
        if self.outbox.refilling {
            self.outbox.changed.insert(id.to_owned(), Some(key));
        }
    }

    /// Reads the next page of parked deliveries once memory is half empty.
    /// The read goes through the writer, after every write queued before
    /// it, so it sees each delivery's latest state.
    /// `Due::Refill`: the wait after a failed page read is over.
    pub(super) fn refill_due(&mut self) {
        self.outbox.refilling = false;
        self.refill_outbox();
    }

    pub(super) fn refill_outbox(&mut self) {
        let Some(from) = self.outbox.parked_from else {
            return;
        };
        if self.outbox.refilling || self.deliveries.len() > self.max_loaded / 2 {
            return;
        }
        self.outbox.refilling = true;
        let limit = self.max_loaded - self.deliveries.len();
        let tx = self.tx.clone();
        self.store.write_then(
            move |c| store::pending_page(c, Some(from), limit + 1),
            move |rows| {
                let _ = tx.send(Command::Refilled {
                    from,
                    limit,
                    rows: rows.map_err(|e| e.to_string()),
                });
            },
        );
    }

    pub(super) fn refilled(
        &mut self,
        from: DueKey,
        limit: usize,
        rows: Result<Vec<DeliveryRow>, String>,
    ) {
        self.outbox.refilling = false;
        let changed = std::mem::take(&mut self.outbox.changed);
        let mut rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // Not at once (the idle loop would spin on a broken disk):
                // the timer tries again in a second.
                log::error!("cannot page the webhook outbox in (retried in 1 s): {e}");
                self.outbox.refilling = true;
                self.timers
                    .insert(Instant::now() + Duration::from_secs(1), Due::Refill);
                return;
            }
        };
        if self.outbox.parked_from != Some(from) {
            return; // parked meanwhile from an earlier key: read again
        }
        self.outbox.parked_from = if rows.len() > limit {
            rows.truncate(limit + 1);
            rows.pop().map(|r| due_key(&r))
        } else {
            None
        };
        // Parked meanwhile at a key this page passed over: the parked
        // range must still start at or before it.
        for key in changed.values().flatten() {
            let p = self.outbox.parked_from.map_or(*key, |p| p.min(*key));
            self.outbox.parked_from = Some(p);
        }
        for row in &rows {
            if !self.deliveries.contains_key(&row.id) && !changed.contains_key(&row.id) {
                self.outbox.parked -= 1;
                self.load_delivery(row);
            }
        }
        if self.outbox.parked_from.is_none() {
            self.outbox.parked = 0;
        }
    }

    /// (Re)sets the delivery's timer to `due_ms` (unix ms; past = now), or
    /// parks it when that is after what memory holds.
    fn schedule_delivery(&mut self, id: &str, due_ms: i64) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        if let Some(at) = d.due.take() {
            self.timers.remove(at, Due::Delivery(id.to_owned()));
            self.outbox.loaded.remove(&(d.due_ms, d.seq));
        }
        d.due_ms = due_ms;
        let key = (due_ms, d.seq);
        if self.outbox.parked_from.is_some_and(|p| key >= p) {
            self.park(key, id);
            return;
        }
        let bound = longest_wait(&self.settings.retry_schedule, d.attempts);
        let at = Instant::now() + wait_until(due_ms, now_ms(), bound);
        d.due = Some(at);
        self.timers.insert(at, Due::Delivery(id.to_owned()));
        self.outbox.loaded.insert(key, id.to_owned());
    }

    /// The delivery's time has come: it joins its destination's lane, and
    /// is sent when a slot is free (see [`Lanes`]).
    pub(super) fn delivery_due(&mut self, id: &str) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        d.due = None;
        self.outbox.loaded.remove(&(d.due_ms, d.seq));
        if d.in_flight || d.queued {
            return;
        }
        d.queued = true;
        self.lanes.push(d.dest.clone(), id.to_owned());
    }

    /// Starts attempts while slots are free, destinations in turn. Nothing
    /// new starts during a graceful stop.
    pub(super) fn dispatch(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        while let Some((dest, id)) = self.lanes.take() {
            if !self.start_attempt(&id) {
                self.lanes.finish(&dest);
            }
        }
    }

    /// Puts one attempt of a queued delivery on the wire; false when the
    /// delivery is gone.
    fn start_attempt(&mut self, id: &str) -> bool {
        let Some(d) = self.deliveries.get_mut(id) else {
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
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        d.in_flight = false;
        d.attempt = None;
        self.outbox.sending -= 1;
        self.lanes.finish(&d.dest);
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
            self.deliveries.remove(id);
            self.metrics.queue_depth.fetch_sub(1, Relaxed);
        }
    }

    pub(super) fn redeliver(&mut self, row: &DeliveryRow) {
        if let Some(d) = self.deliveries.get(&row.id) {
            // Already queued: send now instead of at the next retry.
            if !d.in_flight && !d.queued {
                self.schedule_delivery(&row.id, 0);
            }
            return;
        }
        if row.state == DeliveryState::Pending {
            // Parked (pending, not in memory): bring it in, due now, with
            // its own place in the retry schedule.
            self.outbox.parked = (self.outbox.parked - 1).max(0);
            self.deliveries
                .insert(row.id.clone(), ActiveDelivery::from_row(row));
            self.schedule_delivery(&row.id, 0);
            self.evict_over_cap();
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

    fn take_all(lanes: &mut Lanes) -> Vec<String> {
        std::iter::from_fn(|| lanes.take())
            .map(|(d, id)| format!("{d} {id}"))
            .collect()
    }

    #[test]
    fn destinations_are_scheme_host_and_port() {
        assert_eq!(
            &*destination("http://Hooks.Example/a?b"),
            "http://hooks.example:80"
        );
        assert_eq!(
            &*destination("https://hooks.example/a"),
            "https://hooks.example:443"
        );
        assert_eq!(
            &*destination("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(&*destination("http://[::1]:81/"), "http://[::1]:81");
        assert_ne!(destination("http://h:1/"), destination("https://h:1/"));
    }

    #[test]
    fn a_destination_at_its_limit_waits_and_free_slots_go_round_robin() {
        let (hung, ok, other): (Rc<str>, Rc<str>, Rc<str>) = (
            "http://hung:80".into(),
            "http://ok:80".into(),
            "http://other:80".into(),
        );
        let mut lanes = Lanes::new(4, 2);
        for i in 0..5 {
            lanes.push(hung.clone(), format!("h{i}"));
        }
        // The hung destination takes its 2 slots, no more.
        assert_eq!(
            take_all(&mut lanes),
            ["http://hung:80 h0", "http://hung:80 h1"]
        );
        // Others get the rest at once, in turn.
        for i in 0..3 {
            lanes.push(ok.clone(), format!("k{i}"));
            lanes.push(other.clone(), format!("o{i}"));
        }
        assert_eq!(
            take_all(&mut lanes),
            ["http://ok:80 k0", "http://other:80 o0"]
        );
        // The pool (4) is full: nothing starts until a slot frees.
        assert_eq!(lanes.take(), None);
        lanes.finish(&ok);
        assert_eq!(take_all(&mut lanes), ["http://ok:80 k1"]);
        // A freed hung slot puts the hung lane back in turn, after the
        // destinations already waiting.
        lanes.finish(&hung);
        lanes.finish(&other);
        assert_eq!(
            take_all(&mut lanes),
            ["http://other:80 o1", "http://ok:80 k2"]
        );
        lanes.finish(&other);
        lanes.finish(&ok);
        assert_eq!(
            take_all(&mut lanes),
            ["http://hung:80 h2", "http://other:80 o2"]
        );
        lanes.clear();
        assert_eq!(lanes.take(), None);
        lanes.push(hung.clone(), "again".into());
        assert_eq!(take_all(&mut lanes), ["http://hung:80 again"]);
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
