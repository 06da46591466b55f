//! The outbox: its state ([`Outbox`]: the deliveries held in memory, the
//! parked range, the in-flight lanes) and how the engine loop drives it:
//! deliveries wait for their next attempt, join their destination's lane
//! when due, are sent (`sender`), and what follows each attempt is decided
//! by `retry::next_attempt` and recorded.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use actix_web::web::Bytes;
use shared::{DeliveryState, WebhookEvent};
use tokio::time::Instant;

use super::attempts::AttemptWrite;
use super::lanes::{destination, Lanes};
use super::retry::{longest_wait, wait_until, AttemptKind};
use super::{now_ms, Command, Due, Engine};
use crate::scenario::WebhookFaults;
use crate::store::{self, due_key, DeliveryRow, DueKey, Headers};

/// One pending delivery as the engine holds it.
pub(super) struct ActiveDelivery {
    pub(super) seq: i64,
    /// Unix ms of the next attempt while one is scheduled (its outbox key
    /// is `(due_ms, seq)`).
    pub(super) due_ms: i64,
    pub(super) id: String,
    pub(super) job_id: String,
    pub(super) tenant: String,
    pub(super) event: WebhookEvent,
    pub(super) url: String,
    /// The scheme, host and port of `url`: the lane it waits in.
    pub(super) dest: Rc<str>,
    pub(super) headers: Headers,
    pub(super) body: Bytes,
    pub(super) attempts: u32,
    pub(super) failures: u32,
    pub(super) sends_remaining: u32,
    /// A scheduled attempt, or one more asked for by hand.
    pub(super) kind: AttemptKind,
    pub(super) faults: WebhookFaults,
    /// When the next attempt is due, while one is scheduled.
    pub(super) due: Option<Instant>,
    /// Due, waiting in its destination's lane for a free slot.
    pub(super) queued: bool,
    pub(super) in_flight: bool,
    /// The task of the attempt on the wire, while there is one.
    pub(super) attempt: Option<tokio::task::AbortHandle>,
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
            kind: row.kind,
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

/// The outbox in memory is bounded: it holds the pending deliveries due
/// first, at most `max_loaded` of them; the others stay in SQLite only
/// ("parked": every key from `parked_from` on) and are paged in, in due
/// order, when the memory half empties. Whatever is parked has its current
/// state stored, so dropping it from memory loses nothing.
pub(super) struct Outbox {
    /// The pending deliveries held in memory.
    pub(super) deliveries: HashMap<String, ActiveDelivery>,
    /// Most of them held at once; the rest wait in SQLite.
    pub(super) max_loaded: usize,
    /// Due deliveries waiting for an in-flight slot, and the slots taken.
    pub(super) lanes: Lanes,
    /// Scheduled (not in flight) deliveries in memory, by outbox key.
    pub(super) loaded: BTreeMap<DueKey, String>,
    /// Pending deliveries with a key from here on live in SQLite only.
    pub(super) parked_from: Option<DueKey>,
    /// How many are parked (for the queue-depth gauge).
    pub(super) parked: i64,
    /// A page is being read, or reading failed and is tried again later
    /// (at the `Due::Refill` timer).
    pub(super) refilling: bool,
    /// Deliveries that changed while a page was being read: finished
    /// (`None`) or parked at a new key. The page shows their old state, so
    /// it must not load them.
    pub(super) changed: HashMap<String, Option<DueKey>>,
    /// Attempts on the wire (a graceful stop waits for their results).
    pub(super) sending: usize,
    /// Attempt records whose write failed, waiting for `Due::AttemptWrites`.
    pub(super) unwritten: Vec<AttemptWrite>,
}

impl Outbox {
    pub(super) fn new(max_loaded: usize, lanes: Lanes) -> Self {
        Self {
            deliveries: HashMap::new(),
            max_loaded,
            lanes,
            loaded: BTreeMap::new(),
            parked_from: None,
            parked: 0,
            refilling: false,
            changed: HashMap::new(),
            sending: 0,
            unwritten: Vec::new(),
        }
    }

    /// Forgets every delivery, parked range and slot (a reset), aborting
    /// the attempts on the wire.
    pub(super) fn clear(&mut self) {
        for d in self.deliveries.values_mut() {
            d.abort();
        }
        let mut lanes = std::mem::replace(&mut self.lanes, Lanes::new(1, 1));
        lanes.clear();
        *self = Self::new(self.max_loaded, lanes);
    }
}

impl Engine {
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
        self.outbox
            .deliveries
            .insert(row.id.clone(), ActiveDelivery::from_row(row));
        self.schedule_delivery(&row.id, row.next_attempt_ms);
        self.evict_over_cap();
    }

    /// Parks the latest-due deliveries while memory holds too many.
    fn evict_over_cap(&mut self) {
        while self.outbox.deliveries.len() > self.outbox.max_loaded {
            let Some((key, id)) = self.outbox.loaded.pop_last() else {
                return; // all in flight
            };
            self.park(key, &id);
        }
    }

    /// Drops a scheduled delivery from memory; it is due at `key`, at or
    /// after everything still held, so the parked range starts there.
    fn park(&mut self, key: DueKey, id: &str) {
        if let Some(d) = self.outbox.deliveries.remove(id) {
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
        if self.outbox.refilling || self.outbox.deliveries.len() > self.outbox.max_loaded / 2 {
            return;
        }
        self.outbox.refilling = true;
        let limit = self.outbox.max_loaded - self.outbox.deliveries.len();
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
            if !self.outbox.deliveries.contains_key(&row.id) && !changed.contains_key(&row.id) {
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
    pub(super) fn schedule_delivery(&mut self, id: &str, due_ms: i64) {
        let Some(d) = self.outbox.deliveries.get_mut(id) else {
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
        let Some(d) = self.outbox.deliveries.get_mut(id) else {
            return;
        };
        d.due = None;
        self.outbox.loaded.remove(&(d.due_ms, d.seq));
        if d.in_flight || d.queued {
            return;
        }
        d.queued = true;
        self.outbox.lanes.push(d.dest.clone(), id.to_owned());
    }

    /// Starts attempts while slots are free, destinations in turn. Nothing
    /// new starts during a graceful stop.
    pub(super) fn dispatch(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        while let Some((dest, id)) = self.outbox.lanes.take() {
            if !self.start_attempt(&id) {
                self.outbox.lanes.finish(&dest);
            }
        }
    }

    pub(super) fn redeliver(&mut self, row: &DeliveryRow) {
        if let Some(d) = self.outbox.deliveries.get(&row.id) {
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
            self.outbox
                .deliveries
                .insert(row.id.clone(), ActiveDelivery::from_row(row));
            self.schedule_delivery(&row.id, 0);
            self.evict_over_cap();
            return;
        }
        let mut d = ActiveDelivery::from_row(row);
        // One more attempt, outside the retry schedule (stored as such, so
        // a restart before it is made still makes just one).
        d.sends_remaining = 1;
        d.kind = AttemptKind::Manual;
        self.outbox.deliveries.insert(row.id.clone(), d);
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        let (rid, now) = (row.id.clone(), now_ms());
        self.store.write_bg("redeliver", move |c| {
            store::requeue_delivery(c, &rid, now, AttemptKind::Manual)
        });
        self.schedule_delivery(&row.id, 0);
    }
}
