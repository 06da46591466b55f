//! The simulated pipeline and the webhook outbox. One task on the actix
//! system thread owns every active job and pending delivery; handlers, timers
//! and delivery attempts talk to it through one command channel, so state
//! changes are serialised without locks.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use actix_web::web::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::Value;
use shared::headers as h;
use shared::signing::{sign_hex, sign_standard};
use shared::wire::{rfc3339, webhook_timestamp};
use shared::{JobStatus, WebhookBody, WebhookError, WebhookEvent};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::metrics::Metrics;
use crate::scenario::{Outcome, Plan, WebhookMode, STAGES};
use crate::store::{self, AttemptRow, DeliveryRow, JobRow, Progress, Store};
use crate::tenant::Ids;

/// Most webhook attempts in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// Commands handled between two progress flushes under sustained load.
const FLUSH_EVERY: usize = 1024;
/// Bytes of a receiver's answer kept in the attempt log.
const EXCERPT_BYTES: usize = 1024;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// What a control command (cancel, advance, complete, fail) achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Applied and committed.
    Done,
    /// No active job with that id (finished, unknown or another tenant's).
    NotActive,
}

#[derive(Debug)]
pub enum AdminAction {
    Advance,
    Complete,
    Fail(WebhookError),
}

pub enum Command {
    Submitted(Box<ActiveJob>),
    Tick {
        id: String,
        gen: u64,
    },
    Cancel {
        id: String,
        tenant: String,
        reply: oneshot::Sender<Control>,
    },
    Admin {
        id: String,
        action: AdminAction,
        reply: oneshot::Sender<Control>,
    },
    Committed {
        id: String,
        finished: Option<Result<Option<DeliveryRow>, String>>,
        reply: Option<oneshot::Sender<Control>>,
    },
    DeliveryDue {
        id: String,
        gen: u64,
    },
    Attempted {
        id: String,
        result: AttemptResult,
    },
    Redeliver {
        row: Box<DeliveryRow>,
        reply: oneshot::Sender<()>,
    },
    Reset {
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Sends commands to the engine; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl EngineHandle {
    pub fn send(&self, cmd: Command) {
        if self.tx.send(cmd).is_err() {
            log::warn!("engine has stopped; command dropped");
        }
    }

    pub async fn control(&self, make: impl FnOnce(oneshot::Sender<Control>) -> Command) -> Control {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx));
        rx.await.unwrap_or(Control::NotActive)
    }

    pub async fn call(&self, make: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx));
        let _ = rx.await;
    }
}

/// A job that is pending or running, as the engine holds it.
#[derive(Debug)]
pub struct ActiveJob {
    pub seq: i64,
    pub id: String,
    pub tenant: String,
    /// `metadata.job_id`, else the Camber id: the webhook's `job_id`.
    pub caller_job_id: String,
    pub status: JobStatus,
    pub stage_idx: usize,
    pub plan: Plan,
    pub webhook_url: Option<String>,
    pub webhook_headers: Vec<(String, String)>,
    pub started_at: Option<String>,
    pub log: String,
    gen: u64,
    finishing: bool,
    waiting: Vec<oneshot::Sender<Control>>,
}

pub fn caller_job_id(metadata: &Value, camber_id: &str) -> String {
    match metadata.get("job_id") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => camber_id.to_owned(),
    }
}

pub fn header_pairs(headers: &str) -> Vec<(String, String)> {
    serde_json::from_str::<serde_json::Map<String, Value>>(headers)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
        .collect()
}

impl ActiveJob {
    pub fn from_row(row: &JobRow) -> Result<Self, String> {
        let plan: Plan = serde_json::from_str(&row.plan).map_err(|e| e.to_string())?;
        let metadata: Value = serde_json::from_str(&row.metadata).unwrap_or(Value::Null);
        Ok(Self::new(row, plan, &metadata))
    }

    pub fn new(row: &JobRow, plan: Plan, metadata: &Value) -> Self {
        Self {
            seq: row.seq,
            id: row.id.clone(),
            tenant: row.tenant.clone(),
            caller_job_id: caller_job_id(metadata, &row.id),
            status: JobStatus::parse(&row.status).unwrap_or(JobStatus::Pending),
            stage_idx: row
                .stage
                .as_deref()
                .and_then(|s| STAGES.iter().position(|x| *x == s))
                .unwrap_or(0),
            plan,
            webhook_url: row.webhook_url.clone(),
            webhook_headers: header_pairs(&row.webhook_headers),
            started_at: row.started_at.clone(),
            log: row.log.clone(),
            gen: 0,
            finishing: false,
            waiting: Vec::new(),
        }
    }

    fn log_line(&mut self, line: &str) {
        self.log.push_str(&rfc3339(Utc::now()));
        self.log.push(' ');
        self.log.push_str(line);
        self.log.push('\n');
    }

    fn progress(&self, now: &str) -> Progress {
        Progress {
            id: self.id.clone(),
            status: self.status.as_str().to_owned(),
            stage: (self.status == JobStatus::Running).then(|| STAGES[self.stage_idx].to_owned()),
            updated_at: now.to_owned(),
            started_at: self.started_at.clone(),
            finished_at: None,
            result: None,
            error: None,
            log: self.log.clone(),
        }
    }
}

/// One pending delivery as the engine holds it.
struct ActiveDelivery {
    id: String,
    job_id: String,
    event: String,
    url: String,
    headers: Rc<[(String, String)]>,
    body: Bytes,
    attempts: u32,
    failures: u32,
    sends_remaining: u32,
    bad_signature: bool,
    gen: u64,
    in_flight: bool,
}

impl ActiveDelivery {
    fn from_row(row: &DeliveryRow) -> Self {
        Self {
            id: row.id.clone(),
            job_id: row.job_id.clone(),
            event: row.event.clone(),
            url: row.url.clone(),
            headers: header_pairs(&row.headers).into(),
            body: Bytes::from(row.body.clone()),
            attempts: row.attempts as u32,
            failures: row.failures as u32,
            sends_remaining: row.sends_remaining.max(1) as u32,
            bad_signature: row.bad_signature,
            gen: 0,
            in_flight: false,
        }
    }
}

/// The outcome of one webhook attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub n: u32,
    pub at: String,
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub struct EngineSettings {
    pub webhook_secret: String,
    pub retry_schedule: Vec<Duration>,
    pub delivery_timeout: Duration,
    pub ids: Ids,
}

pub struct Engine {
    tx: mpsc::UnboundedSender<Command>,
    store: Store,
    metrics: Arc<Metrics>,
    settings: Rc<EngineSettings>,
    last_seq: Arc<std::sync::atomic::AtomicI64>,
    client: awc::Client,
    in_flight: Rc<Semaphore>,
    jobs: HashMap<String, ActiveJob>,
    deliveries: HashMap<String, ActiveDelivery>,
    /// Jobs whose progress is not yet written. Flushed as one write when the
    /// command queue runs dry (or every `FLUSH_EVERY` commands under
    /// sustained load), so a job that moves through several stages between
    /// two flushes costs one row update, and one that finishes costs none.
    dirty: HashSet<String>,
    since_flush: usize,
}

impl Engine {
    /// Starts the engine on the current actix system; resumes the jobs and
    /// deliveries a previous run left unfinished.
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        settings: EngineSettings,
        last_seq: Arc<std::sync::atomic::AtomicI64>,
        resume_jobs: Vec<JobRow>,
        resume_deliveries: Vec<DeliveryRow>,
    ) -> EngineHandle {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Webhook receivers may be https: awc's rustls needs a provider.
        // Another component may have installed one already; that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .limit(MAX_IN_FLIGHT)
                    .timeout(settings.delivery_timeout),
            )
            .timeout(settings.delivery_timeout)
            .disable_redirects()
            .finish();
        let mut engine = Engine {
            tx: tx.clone(),
            store,
            metrics,
            settings: Rc::new(settings),
            last_seq,
            client,
            in_flight: Rc::new(Semaphore::new(MAX_IN_FLIGHT)),
            jobs: HashMap::new(),
            deliveries: HashMap::new(),
            dirty: HashSet::new(),
            since_flush: 0,
        };
        for row in resume_jobs {
            match ActiveJob::from_row(&row) {
                Ok(job) => engine.start_job(job),
                Err(e) => log::error!("cannot resume job {}: {e}", row.id),
            }
        }
        for row in resume_deliveries {
            engine.enqueue_delivery(&row);
        }
        actix_rt::spawn(async move {
            loop {
                let cmd = match rx.try_recv() {
                    Ok(cmd) => cmd,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        engine.flush_progress();
                        match rx.recv().await {
                            Some(cmd) => cmd,
                            None => break,
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                };
                if let Command::Shutdown { reply } = cmd {
                    engine.flush_progress();
                    let _ = reply.send(());
                    break;
                }
                engine.handle(cmd);
                engine.since_flush += 1;
                if engine.since_flush >= FLUSH_EVERY {
                    engine.flush_progress();
                }
            }
        });
        EngineHandle { tx }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Submitted(job) => {
                self.metrics
                    .active_jobs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.start_job(*job)
            }
            Command::Tick { id, gen } => {
                if self
                    .jobs
                    .get(&id)
                    .is_some_and(|j| j.gen == gen && !j.finishing)
                {
                    self.advance(&id, None);
                }
            }
            Command::Cancel { id, tenant, reply } => match self.jobs.get(&id) {
                Some(j) if j.tenant == tenant && !j.finishing => {
                    let stage = STAGES[j.stage_idx].to_owned();
                    self.finish(
                        &id,
                        JobStatus::Cancelled,
                        Some(WebhookError {
                            code: "CANCELLED".into(),
                            stage,
                            details: serde_json::json!({"reason": "Cancelled by the client"}),
                        }),
                        Some(reply),
                    );
                }
                _ => {
                    let _ = reply.send(Control::NotActive);
                }
            },
            Command::Admin { id, action, reply } => {
                if self.jobs.get(&id).is_none_or(|j| j.finishing) {
                    let _ = reply.send(Control::NotActive);
                    return;
                }
                match action {
                    AdminAction::Advance => self.advance(&id, Some(reply)),
                    AdminAction::Complete => {
                        self.finish(&id, JobStatus::Completed, None, Some(reply))
                    }
                    AdminAction::Fail(err) => {
                        self.finish(&id, JobStatus::Failed, Some(err), Some(reply))
                    }
                }
            }
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
            Command::DeliveryDue { id, gen } => self.attempt(&id, gen),
            Command::Attempted { id, result } => self.attempted(&id, result),
            Command::Redeliver { row, reply } => {
                self.redeliver(&row);
                let _ = reply.send(());
            }
            Command::Reset { reply } => {
                let dropped = self.jobs.len() as i64;
                self.metrics
                    .active_jobs
                    .fetch_sub(dropped, std::sync::atomic::Ordering::Relaxed);
                self.metrics.queue_depth.fetch_sub(
                    self.deliveries.len() as i64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.jobs.clear();
                self.deliveries.clear();
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
            Command::Shutdown { .. } => unreachable!("handled by the loop"),
        }
    }

    // ------------------------------------------------------------ jobs

    fn start_job(&mut self, mut job: ActiveJob) {
        if job.status == JobStatus::Pending {
            job.status = JobStatus::Running;
            job.stage_idx = 0;
            job.started_at = Some(rfc3339(Utc::now()));
            job.log_line(&format!("{} started", STAGES[0]));
            self.metrics.job_entered(JobStatus::Running);
            self.dirty.insert(job.id.clone());
        }
        self.schedule_tick(&job);
        self.jobs.insert(job.id.clone(), job);
    }

    fn schedule_tick(&self, job: &ActiveJob) {
        if job.plan.hold {
            return;
        }
        self.tick_after(job.id.clone(), job.gen, job.plan.stage_ms);
    }

    fn tick_after(&self, id: String, gen: u64, stage_ms: u64) {
        if stage_ms == 0 {
            let _ = self.tx.send(Command::Tick { id, gen });
            return;
        }
        let tx = self.tx.clone();
        let wait = Duration::from_millis(stage_ms);
        actix_rt::spawn(async move {
            actix_rt::time::sleep(wait).await;
            let _ = tx.send(Command::Tick { id, gen });
        });
    }

    /// Ends the current stage: the job fails here, finishes, or starts the
    /// next stage.
    fn advance(&mut self, id: &str, reply: Option<oneshot::Sender<Control>>) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        job.gen += 1;
        let stage = STAGES[job.stage_idx];
        if job.plan.failure_stage() == Some(job.stage_idx) {
            let err = job.plan.error.clone();
            self.finish(id, JobStatus::Failed, err, reply);
            return;
        }
        job.log_line(&format!("{stage} finished"));
        if job.stage_idx + 1 == STAGES.len() {
            let status = match job.plan.outcome {
                Outcome::Success => JobStatus::Completed,
                Outcome::Failure => JobStatus::Failed,
            };
            let err = job.plan.error.clone();
            self.finish(id, status, err, reply);
            return;
        }
        job.stage_idx += 1;
        job.log_line(&format!("{} started", STAGES[job.stage_idx]));
        let tick = (!job.plan.hold).then(|| (job.id.clone(), job.gen, job.plan.stage_ms));
        match reply {
            None => {
                self.dirty.insert(id.to_owned());
            }
            Some(reply) => {
                let progress = job.progress(&rfc3339(Utc::now()));
                self.persist_now(progress, reply);
            }
        }
        if let Some((id, gen, ms)) = tick {
            self.tick_after(id, gen, ms);
        }
    }

    fn flush_progress(&mut self) {
        self.since_flush = 0;
        if self.dirty.is_empty() {
            return;
        }
        let now = rfc3339(Utc::now());
        let batch: Vec<Progress> = self
            .dirty
            .drain()
            .filter_map(|id| self.jobs.get(&id))
            .filter(|j| !j.finishing)
            .map(|j| j.progress(&now))
            .collect();
        self.store.write_bg("job progress", move |c| {
            batch.iter().try_for_each(|p| store::update_job(c, p))
        });
    }

    /// Writes a running job's progress now; `reply` hears once it committed
    /// (an admin call answers with what a poll will then see).
    fn persist_now(&mut self, progress: Progress, reply: oneshot::Sender<Control>) {
        self.dirty.remove(&progress.id);
        let (tx, id) = (self.tx.clone(), progress.id.clone());
        self.store.write_then(
            move |c| store::update_job(c, &progress),
            move |_| {
                let _ = tx.send(Command::Committed {
                    id,
                    finished: None,
                    reply: Some(reply),
                });
            },
        );
    }

    /// Moves a job to a terminal status: the status and its webhook event
    /// are committed together before anyone can see the job finished.
    fn finish(
        &mut self,
        id: &str,
        status: JobStatus,
        error: Option<WebhookError>,
        reply: Option<oneshot::Sender<Control>>,
    ) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        job.gen += 1;
        job.finishing = true;
        job.waiting.extend(reply);
        // The final update below supersedes any progress not yet written.
        self.dirty.remove(id);
        let now = Utc::now();
        let now_s = rfc3339(now);
        let stage = STAGES[job.stage_idx];
        let (body, event) = match (status, error) {
            (JobStatus::Completed, _) => {
                job.log_line("job completed");
                let result = job.plan.result.clone().unwrap_or_else(|| {
                    crate::scenario::generated_result(
                        &mut self.settings.ids.job_rng(job.seq),
                        job.plan.stage_ms,
                    )
                });
                (
                    WebhookBody::success(
                        &job.id,
                        &job.caller_job_id,
                        webhook_timestamp(now),
                        result,
                    ),
                    WebhookEvent::Completed.as_str(),
                )
            }
            (_, err) => {
                let err = err.unwrap_or_else(|| crate::scenario::simulated_error(3));
                let reason = err
                    .details
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                job.log_line(&format!("{stage} failed: {} {reason}", err.code));
                job.log_line(&format!("job {}", status.as_str()));
                (
                    WebhookBody::failure(&job.id, &job.caller_job_id, webhook_timestamp(now), err),
                    WebhookEvent::Failed.as_str(),
                )
            }
        };
        let mut progress = job.progress(&now_s);
        progress.status = status.as_str().to_owned();
        progress.stage = None;
        progress.finished_at = Some(now_s.clone());
        progress.result = body.result.result.as_ref().map(Value::to_string);
        progress.error = body
            .result
            .error
            .as_ref()
            .map(|e| serde_json::to_string(e).unwrap_or_default());
        let delivery = job
            .webhook_url
            .clone()
            .filter(|_| job.plan.webhook_mode != WebhookMode::Drop)
            .map(|url| DeliveryRow {
                seq: 0,
                id: self.settings.ids.delivery_id(job.seq),
                job_id: job.id.clone(),
                event: event.to_owned(),
                url,
                headers: serde_json::to_string(
                    &job.webhook_headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect::<serde_json::Map<_, _>>(),
                )
                .unwrap_or_else(|_| "{}".into()),
                body: body.to_bytes(),
                state: "pending".into(),
                attempts: 0,
                sends_remaining: job.plan.sends as i64,
                failures: 0,
                bad_signature: job.plan.bad_signature,
                next_attempt_ms: now_ms() + job.plan.delay_ms as i64,
                created_at: now_s.clone(),
            });
        let (tx, id) = (self.tx.clone(), job.id.clone());
        self.store.write_then(
            move |c| {
                store::update_job(c, &progress)?;
                if let Some(d) = &delivery {
                    store::insert_delivery(c, d)?;
                }
                Ok(delivery)
            },
            move |res| {
                let _ = tx.send(Command::Committed {
                    id,
                    finished: Some(res.map_err(|e| e.to_string())),
                    reply: None,
                });
            },
        );
        // Remember the status for metrics when the commit lands.
        job.status = status;
    }

    fn finished(&mut self, id: &str, outcome: Result<Option<DeliveryRow>, String>) {
        let Some(job) = self.jobs.remove(id) else {
            return;
        };
        self.metrics
            .active_jobs
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok(delivery) => {
                self.metrics.job_entered(job.status);
                if let Some(row) = delivery {
                    self.enqueue_delivery(&row);
                }
            }
            // The job stays unfinished in the store; a restart resumes it.
            Err(e) => log::error!("could not record the end of job {id}: {e}"),
        }
        for w in job.waiting {
            let _ = w.send(Control::Done);
        }
    }

    // ------------------------------------------------------------ deliveries

    fn enqueue_delivery(&mut self, row: &DeliveryRow) {
        self.metrics
            .queue_depth
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.deliveries
            .insert(row.id.clone(), ActiveDelivery::from_row(row));
        self.schedule_delivery(&row.id, row.next_attempt_ms);
    }

    fn schedule_delivery(&mut self, id: &str, due_ms: i64) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        d.gen += 1;
        let (id, gen) = (id.to_owned(), d.gen);
        let wait = due_ms - now_ms();
        if wait <= 0 {
            let _ = self.tx.send(Command::DeliveryDue { id, gen });
            return;
        }
        let tx = self.tx.clone();
        actix_rt::spawn(async move {
            actix_rt::time::sleep(Duration::from_millis(wait as u64)).await;
            let _ = tx.send(Command::DeliveryDue { id, gen });
        });
    }

    fn attempt(&mut self, id: &str, gen: u64) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        if d.gen != gen || d.in_flight {
            return;
        }
        d.in_flight = true;
        let req = AttemptRequest {
            url: d.url.clone(),
            delivery_id: d.id.clone(),
            event: d.event.clone(),
            headers: d.headers.clone(),
            body: d.body.clone(),
            n: d.attempts + 1,
            bad_signature: d.bad_signature,
        };
        let (client, settings, sem, tx) = (
            self.client.clone(),
            self.settings.clone(),
            self.in_flight.clone(),
            self.tx.clone(),
        );
        let id = id.to_owned();
        actix_rt::spawn(async move {
            let _permit = sem.acquire().await;
            let result = send_webhook(&client, &req, &settings).await;
            let _ = tx.send(Command::Attempted { id, result });
        });
    }

    fn attempted(&mut self, id: &str, r: AttemptResult) {
        let Some(d) = self.deliveries.get_mut(id) else {
            return;
        };
        d.in_flight = false;
        d.attempts = r.n;
        let m = &self.metrics;
        use std::sync::atomic::Ordering::Relaxed;
        m.observe_latency(r.latency.as_secs_f64());
        let (state, next_ms) = if r.delivered() {
            m.attempts_delivered.fetch_add(1, Relaxed);
            d.sends_remaining = d.sends_remaining.saturating_sub(1);
            if d.sends_remaining > 0 {
                ("pending", now_ms())
            } else {
                ("delivered", 0)
            }
        } else {
            if r.status.is_some() {
                m.attempts_http_error.fetch_add(1, Relaxed);
            } else {
                m.attempts_transport_error.fetch_add(1, Relaxed);
            }
            d.failures += 1;
            match self.settings.retry_schedule.get(d.failures as usize - 1) {
                Some(base) => {
                    let wait = r.retry_after.unwrap_or_else(|| jitter(*base));
                    ("pending", now_ms() + wait.as_millis() as i64)
                }
                None => {
                    m.deliveries_dead.fetch_add(1, Relaxed);
                    ("dead", 0)
                }
            }
        };
        if state != "pending" {
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
        if state == "pending" {
            self.schedule_delivery(id, next_ms);
        } else {
            self.deliveries.remove(id);
            m.queue_depth.fetch_sub(1, Relaxed);
        }
    }

    fn redeliver(&mut self, row: &DeliveryRow) {
        if let Some(d) = self.deliveries.get_mut(&row.id) {
            // Already queued: send now instead of at the next retry.
            if !d.in_flight {
                let id = row.id.clone();
                self.schedule_delivery(&id, 0);
            }
            return;
        }
        let mut d = ActiveDelivery::from_row(row);
        // One more attempt, outside the retry schedule.
        d.sends_remaining = 1;
        d.failures = self.settings.retry_schedule.len() as u32;
        let id = row.id.clone();
        self.deliveries.insert(id.clone(), d);
        self.metrics
            .queue_depth
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = now_ms();
        let rid = id.clone();
        let failures = self.settings.retry_schedule.len() as i64;
        self.store.write_bg("redeliver", move |c| {
            store::requeue_delivery(c, &rid, now, failures)
        });
        self.schedule_delivery(&id, 0);
    }
}

/// ±20 % around `base`.
fn jitter(base: Duration) -> Duration {
    let f: f64 = rand::thread_rng().gen_range(0.8..=1.2);
    base.mul_f64(f)
}

struct AttemptRequest {
    url: String,
    delivery_id: String,
    event: String,
    headers: Rc<[(String, String)]>,
    body: Bytes,
    n: u32,
    bad_signature: bool,
}

async fn send_webhook(
    client: &awc::Client,
    req: &AttemptRequest,
    settings: &EngineSettings,
) -> AttemptResult {
    let at = Utc::now();
    let ts = at.timestamp();
    let secret = if req.bad_signature {
        format!("{}-not-the-secret", settings.webhook_secret)
    } else {
        settings.webhook_secret.clone()
    };
    let mut r = client
        .post(&req.url)
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((h::WEBHOOK_SECRET, sign_hex(secret.as_bytes(), &req.body)))
        .insert_header((h::DELIVERY_ID, req.delivery_id.as_str()))
        .insert_header((h::ATTEMPT, req.n.to_string()))
        .insert_header((h::EVENT, req.event.as_str()))
        .insert_header((h::STD_WEBHOOK_ID, req.delivery_id.as_str()))
        .insert_header((h::STD_WEBHOOK_TIMESTAMP, ts.to_string()))
        .insert_header((
            h::STD_WEBHOOK_SIGNATURE,
            sign_standard(&secret, &req.delivery_id, ts, &req.body),
        ));
    // The caller's headers win over ours (clients sharing a static secret).
    for (k, v) in req.headers.iter() {
        r = r.insert_header((k.as_str(), v.as_str()));
    }
    let start = Instant::now();
    let exchange = async {
        let mut resp = r.send_body(req.body.clone()).await.map_err(|e| match e {
            awc::error::SendRequestError::Timeout => timed_out(settings.delivery_timeout),
            other => other.to_string(),
        })?;
        let status = resp.status();
        let retry_after = (status.as_u16() == 429 || status.as_u16() == 503)
            .then(|| resp.headers().get(RETRY_AFTER).and_then(retry_after_secs))
            .flatten();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match resp.next().await {
                Some(Ok(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        Ok::<_, String>((status.as_u16(), retry_after, excerpt))
    };
    let outcome = tokio::time::timeout(settings.delivery_timeout, exchange).await;
    let latency = start.elapsed();
    let mut result = AttemptResult {
        n: req.n,
        at: rfc3339(at),
        status: None,
        latency,
        error: None,
        excerpt: None,
        retry_after: None,
    };
    match outcome {
        Ok(Ok((status, retry_after, excerpt))) => {
            result.status = Some(status);
            result.retry_after = retry_after;
            result.excerpt = Some(String::from_utf8_lossy(&excerpt).into_owned());
            if !(200..300).contains(&status) {
                result.error = Some(format!("receiver answered {status}"));
            }
        }
        Ok(Err(e)) => result.error = Some(e),
        Err(_) => result.error = Some(timed_out(settings.delivery_timeout)),
    }
    result
}

fn timed_out(limit: Duration) -> String {
    format!("timed out after {} ms", limit.as_millis())
}

fn retry_after_secs(v: &HeaderValue) -> Option<Duration> {
    v.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}
