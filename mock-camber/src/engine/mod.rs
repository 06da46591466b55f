//! The simulated pipeline and the webhook outbox. One task on the actix
//! system thread owns every active job and pending delivery; handlers talk
//! to it through [`EngineHandle`], delivery attempts and store commits
//! report back through the same private command channel, and one timer
//! structure (a `BTreeSet` of deadlines, as in mini-redis) says when a
//! stage ends or a delivery is due. State changes are serialised without
//! locks, and nothing is spawned per tick.
//!
//! - `stages`: the stage runner (timers, progress writes, terminal writes)
//!   of the jobs it runs (`jobs::job::Job`);
//! - `delivery`: the outbox and the retry decision, a pure function;
//! - `sender`: one HTTP attempt, signed.

mod attempts;
mod lanes;
mod outbox;
pub mod policy;
mod retry;
mod sender;
mod stages;
mod timers;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::retry::Schedule;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use self::attempts::AttemptWrite;
use self::lanes::Lanes;
use self::outbox::Outbox;
pub use self::retry::{next_attempt, AttemptKind, Next};
pub(crate) use self::sender::{client, literal_refused, signed_headers, signing_secrets};
pub use self::sender::{shown_headers, AttemptResult};
use self::stages::Stages;
use self::timers::{Due, Timers};
use crate::jobs::job::{Action, Caller, Job};
use crate::metrics::Metrics;
use crate::store::{self, DeliveryRow, DueKey, JobRow, Store};
use crate::tenant::Ids;

/// Commands handled between two progress flushes under sustained load.
const FLUSH_EVERY: usize = 1024;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// What a control request (cancel, advance, complete, fail) achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Applied and committed.
    Done,
    /// No active job with that id (finished, unknown or another tenant's).
    NotActive,
}

pub struct EngineSettings {
    /// The current secret first (see `Settings::webhook_secrets`).
    pub webhook_secrets: Vec<String>,
    /// Tenant id → that tenant's own webhook secret (`--api-key KEY=SECRET`).
    pub tenant_secrets: HashMap<String, Vec<String>>,
    pub retry_schedule: Schedule,
    pub delivery_timeout: Duration,
    pub ids: Ids,
    /// Most pending deliveries held in memory; the rest wait in SQLite.
    pub max_loaded_deliveries: usize,
    /// Most attempts in flight at once, over all destinations.
    pub max_in_flight: usize,
    /// Most attempts in flight to one destination (scheme, host, port).
    pub max_per_destination: usize,
    /// Where webhooks may go (`--webhook-allow`, `--webhook-deny`).
    pub policy: policy::Policy,
}

enum Command {
    Submitted(Box<Job>),
    /// A delivery committed by someone else (a job that ended at submit).
    Deliver(Box<DeliveryRow>),
    Control {
        id: String,
        caller: Caller,
        action: Action,
        reply: oneshot::Sender<Control>,
    },
    /// A store write of the engine's committed (or failed).
    Committed {
        id: String,
        finished: Option<Result<Option<DeliveryRow>, String>>,
        reply: Option<oneshot::Sender<Control>>,
    },
    Attempted {
        id: String,
        /// The engine's generation when the attempt started: a result from
        /// before a reset is dropped.
        generation: u64,
        result: AttemptResult,
    },
    Redeliver {
        row: Box<DeliveryRow>,
        reply: oneshot::Sender<()>,
    },
    /// An attempt record did not commit (it is written again later).
    AttemptNotWritten {
        write: Box<AttemptWrite>,
        error: String,
    },
    /// A page of parked deliveries, read from `from` on.
    Refilled {
        from: DueKey,
        limit: usize,
        rows: Result<Vec<DeliveryRow>, String>,
    },
    Reset {
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The engine's API, one method per request; cheap to clone, usable from
/// any thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl EngineHandle {
    fn send(&self, cmd: Command) {
        if self.tx.send(cmd).is_err() {
            log::warn!("engine has stopped; command dropped");
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx));
        rx.await.ok()
    }

    /// A job whose row is committed: run it.
    pub fn submit(&self, job: Job) {
        self.send(Command::Submitted(Box::new(job)));
    }

    /// A committed, pending delivery: send it (a job that ran to its end
    /// at submit, see `Job::run_at_once`).
    pub fn deliver(&self, row: DeliveryRow) {
        self.send(Command::Deliver(Box::new(row)));
    }

    /// Cancel, advance, complete or fail a running job the caller may
    /// touch; answers once the change is committed (see `jobs::control`).
    pub async fn control(&self, id: String, caller: Caller, action: Action) -> Control {
        self.ask(|reply| Command::Control {
            id,
            caller,
            action,
            reply,
        })
        .await
        .unwrap_or(Control::NotActive)
    }

    /// Sends the delivery's event again now (same delivery id, next attempt).
    pub async fn redeliver(&self, row: DeliveryRow) {
        self.ask(|reply| Command::Redeliver {
            row: Box::new(row),
            reply,
        })
        .await;
    }

    /// Forgets every job and delivery (the store's too); answers once done.
    pub async fn reset(&self) {
        self.ask(|reply| Command::Reset { reply }).await;
    }

    /// Writes pending progress and stops; pending deliveries stay stored.
    pub async fn shutdown(&self) {
        self.ask(|reply| Command::Shutdown { reply }).await;
    }
}

pub struct Engine {
    tx: mpsc::UnboundedSender<Command>,
    store: Store,
    metrics: Arc<Metrics>,
    settings: Rc<EngineSettings>,
    last_seq: Arc<AtomicI64>,
    client: awc::Client,
    /// Counts resets: what an attempt started before one reports is dropped.
    generation: u64,
    /// The stage runner: running jobs, progress not yet written.
    stages: Stages,
    /// The outbox: pending deliveries in memory, parked, in flight.
    outbox: Outbox,
    timers: Timers,
    /// A graceful stop was asked for: answered once nothing is on the wire.
    stopping: Option<oneshot::Sender<()>>,
}

impl Engine {
    /// Starts the engine on the current actix system; resumes the jobs and
    /// deliveries a previous run left unfinished.
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        settings: EngineSettings,
        last_seq: Arc<AtomicI64>,
        resume_jobs: Vec<JobRow>,
        resume_deliveries: Vec<DeliveryRow>,
        pending_total: i64,
    ) -> EngineHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let max_in_flight = settings.max_in_flight.max(1);
        let client = sender::client(settings.delivery_timeout, max_in_flight, &settings.policy);
        let max_loaded = settings.max_loaded_deliveries.max(1);
        let lanes = Lanes::new(max_in_flight, settings.max_per_destination.max(1));
        let mut engine = Engine {
            outbox: Outbox::new(max_loaded, lanes),
            generation: 0,
            tx: tx.clone(),
            store,
            metrics,
            settings: Rc::new(settings),
            last_seq,
            client,
            stages: Stages::default(),
            timers: Timers::default(),
            stopping: None,
        };
        for row in resume_jobs {
            match Job::from_row(&row) {
                Ok(job) => engine.start_job(job),
                Err(e) => log::error!("cannot resume job {}: {e}", row.id),
            }
        }
        // The first page of the outbox (what is due first); past it, the
        // rest stays parked in SQLite until memory has room.
        let mut resume_deliveries = resume_deliveries;
        if resume_deliveries.len() > max_loaded {
            resume_deliveries.truncate(max_loaded + 1);
            let first_parked = resume_deliveries.pop().map(|r| store::due_key(&r));
            engine.outbox.parked_from = first_parked;
            let parked = pending_total - max_loaded as i64;
            engine.outbox.parked = parked;
            engine.metrics.queue_depth.fetch_add(parked, Relaxed);
        }
        for row in resume_deliveries {
            engine.enqueue_delivery(&row);
        }
        actix_rt::spawn(engine.run(rx));
        EngineHandle { tx }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.fire_due();
            let cmd = match rx.try_recv() {
                Ok(cmd) => cmd,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Idle: write what progressed, page parked webhooks
                    // in if memory has room, then wait for a command or
                    // the next deadline, whichever comes first.
                    self.flush_progress();
                    self.refill_outbox();
                    let next = self.timers.next().filter(|_| self.stopping.is_none());
                    tokio::select! {
                        cmd = rx.recv() => match cmd {
                            Some(cmd) => cmd,
                            None => break,
                        },
                        () = sleep_until(next) => continue,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            if let Command::Shutdown { reply } = cmd {
                self.stopping = Some(reply);
            } else {
                self.handle(cmd);
            }
            // A graceful stop starts no new attempt and waits for the
            // results of those on the wire (each bounded by the delivery
            // timeout), so every attempt made is also recorded.
            if self.stopping.is_some() && self.outbox.sending == 0 {
                self.flush_progress();
                if let Some(reply) = self.stopping.take() {
                    let _ = reply.send(());
                }
                break;
            }
            self.stages.since_flush += 1;
            if self.stages.since_flush >= FLUSH_EVERY {
                self.flush_progress();
            }
        }
    }

    /// Ends the stages and sends the deliveries whose time has come. What
    /// they schedule for "now" waits for the next round, so a stream of
    /// zero-length stages cannot starve the command channel.
    fn fire_due(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let now = Instant::now();
        while let Some(due) = self.timers.pop_due(now) {
            match due {
                Due::Stage(id) => self.stage_due(&id),
                Due::Delivery(id) => self.delivery_due(&id),
                Due::FinalWrite(id) => self.write_final(&id),
                Due::Refill => self.refill_due(),
                Due::AttemptWrites => self.rewrite_attempts(),
            }
        }
        self.dispatch();
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Submitted(job) => {
                self.metrics.active_jobs.fetch_add(1, Relaxed);
                self.start_job(*job)
            }
            Command::Deliver(row) => self.enqueue_delivery(&row),
            Command::Control {
                id,
                caller,
                action,
                reply,
            } => self.control(&id, &caller, action, reply),
            Command::Committed {
                id,
                finished,
                reply,
            } => {
                if let Some(outcome) = finished {
                    self.finished(&id, outcome);
                }
                if let Some(r) = reply {
                    let _ = r.send(Control::Done);
                }
            }
            Command::Attempted {
                id,
                generation,
                result,
            } => {
                if generation == self.generation {
                    self.attempted(&id, result)
                }
            }
            Command::Redeliver { row, reply } => {
                self.redeliver(&row);
                let _ = reply.send(());
            }
            Command::Refilled { from, limit, rows } => self.refilled(from, limit, rows),
            Command::AttemptNotWritten { write, error } => self.attempt_not_written(*write, &error),
            Command::Reset { reply } => self.reset(reply),
            Command::Shutdown { .. } => unreachable!("handled by the loop"),
        }
    }

    /// Forgets every job, stage timer and delivery, queued or waiting for
    /// a slot, and aborts the attempts on the wire (a result that still
    /// arrives is from an older generation and is dropped), so once the
    /// reset answers no attempt starts.
    fn reset(&mut self, reply: oneshot::Sender<()>) {
        self.generation += 1;
        self.metrics
            .active_jobs
            .fetch_sub(self.stages.jobs.len() as i64, Relaxed);
        self.metrics.queue_depth.fetch_sub(
            self.outbox.deliveries.len() as i64 + self.outbox.parked,
            Relaxed,
        );
        self.stages.clear();
        self.outbox.clear();
        self.timers = Timers::default();
        let last = self.last_seq.load(std::sync::atomic::Ordering::SeqCst);
        self.store.write_then(
            move |c| store::reset(c, last),
            move |res| {
                if let Err(e) = res {
                    log::error!("reset failed: {e}");
                }
                let _ = reply.send(());
            },
        );
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
