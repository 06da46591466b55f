//! The stage machine: a job runs FETCH → OCR → NORMALIZE, each stage
//! `stage_ms` long (or until advanced, when held), and ends completed,
//! failed or cancelled. Its end and its webhook delivery are committed
//! together before anyone can see the job finished. A job whose stages take
//! no time and that nothing holds never comes here: the submit runs it
//! through the same steps (`ActiveJob::run_at_once`) and commits its row
//! already ended; the engine only sends its webhook.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use shared::wire::{rfc3339, webhook_timestamp};
use shared::{DeliveryState, JobStatus, WebhookBody, WebhookError, WebhookEvent};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{now_ms, AdminAction, Command, Control, Due, Engine};
use crate::scenario::{Outcome, Plan, WebhookMode, STAGES};
use crate::store::{self, DeliveryRow, Headers, JobRow, Progress};
use crate::tenant::Ids;

/// Longest wait between two tries of a job's terminal write.
const FINAL_RETRY_MAX: Duration = Duration::from_secs(5);

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
    pub webhook_headers: Headers,
    pub started_at: Option<String>,
    pub log: String,
    /// When the current stage ends, if it is timed.
    due: Option<Instant>,
    finishing: bool,
    waiting: Vec<oneshot::Sender<Control>>,
    /// The terminal write (final progress and the webhook's delivery),
    /// kept until it commits: a failed write (disk full, read-only file)
    /// is retried with backoff, so the job never stays `running` in the
    /// store while the engine has forgotten it.
    final_write: Option<(Progress, Option<DeliveryRow>)>,
    final_failures: u32,
}

pub fn caller_job_id(metadata: &Value, camber_id: &str) -> String {
    match metadata.get("job_id") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => camber_id.to_owned(),
    }
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
            status: row.status,
            stage_idx: row
                .stage
                .as_deref()
                .and_then(|s| STAGES.iter().position(|x| *x == s))
                .unwrap_or(0),
            plan,
            webhook_url: row.webhook_url.clone(),
            webhook_headers: row.webhook_headers.clone(),
            started_at: row.started_at.clone(),
            log: row.log.clone(),
            due: None,
            finishing: false,
            waiting: Vec::new(),
            final_write: None,
            final_failures: 0,
        }
    }

    fn stage(&self) -> &'static str {
        STAGES[self.stage_idx]
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
            status: self.status,
            stage: (self.status == JobStatus::Running).then(|| self.stage().to_owned()),
            updated_at: now.to_owned(),
            started_at: self.started_at.clone(),
            finished_at: None,
            result: None,
            error: None,
            log: self.log.clone(),
        }
    }
}

/// What ending the current stage did to a job.
enum Step {
    /// The next stage has started.
    Next,
    /// The job ends here, with this status (and error, when failed).
    End(JobStatus, Option<WebhookError>),
}

/// A job's end as committed: its terminal row and its webhook delivery.
pub struct Ending {
    pub status: JobStatus,
    pub progress: Progress,
    pub delivery: Option<DeliveryRow>,
}

impl ActiveJob {
    /// The first stage starts.
    fn begin(&mut self) {
        self.status = JobStatus::Running;
        self.stage_idx = 0;
        self.started_at = Some(rfc3339(Utc::now()));
        self.log_line(&format!("{} started", STAGES[0]));
    }

    /// The current stage ends: the job fails in it, ends after the last
    /// one, or moves on to the next.
    fn step(&mut self) -> Step {
        if self.plan.failure_stage() == Some(self.stage_idx) {
            return Step::End(JobStatus::Failed, self.plan.error.clone());
        }
        let stage = self.stage();
        self.log_line(&format!("{stage} finished"));
        if self.stage_idx + 1 == STAGES.len() {
            let status = match self.plan.outcome {
                Outcome::Success => JobStatus::Completed,
                Outcome::Failure => JobStatus::Failed,
            };
            return Step::End(status, self.plan.error.clone());
        }
        self.stage_idx += 1;
        self.log_line(&format!("{} started", self.stage()));
        Step::Next
    }

    /// Whether the job's stages take no time and nothing holds it: it can
    /// run from submit to its end at once (see [`Self::run_at_once`]).
    pub fn instant(&self) -> bool {
        self.plan.stage_ms == 0 && !self.plan.hold && self.status == JobStatus::Pending
    }

    /// Runs an [`Self::instant`] job through all its stages now and returns
    /// its end, which the submit commits together with the job's row: one
    /// write, one commit, and the job is never seen pending or running.
    pub fn run_at_once(&mut self, ids: &Ids) -> Ending {
        self.begin();
        loop {
            if let Step::End(status, error) = self.step() {
                return self.ending(status, error, ids);
            }
        }
    }

    /// The job's terminal row and webhook delivery for `status`.
    fn ending(&mut self, status: JobStatus, error: Option<WebhookError>, ids: &Ids) -> Ending {
        let now = Utc::now();
        let now_s = rfc3339(now);
        let stage = self.stage();
        let (body, event) = match (status, error) {
            (JobStatus::Completed, _) => {
                self.log_line("job completed");
                let result = self.plan.result.clone().unwrap_or_else(|| {
                    crate::scenario::generated_result(
                        &mut ids.job_rng(self.seq),
                        self.plan.stage_ms,
                    )
                });
                let ts = webhook_timestamp(now);
                let body = WebhookBody::success(&self.id, &self.caller_job_id, ts, result);
                (body, WebhookEvent::Completed)
            }
            (_, err) => {
                let err = err.unwrap_or_else(|| crate::scenario::simulated_error(3));
                let reason = err
                    .details
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.log_line(&format!("{stage} failed: {} {reason}", err.code));
                self.log_line(&format!("job {status}"));
                let ts = webhook_timestamp(now);
                let body = WebhookBody::failure(&self.id, &self.caller_job_id, ts, err);
                (body, WebhookEvent::Failed)
            }
        };
        let mut progress = self.progress(&now_s);
        progress.status = status;
        progress.stage = None;
        progress.finished_at = Some(now_s.clone());
        progress.result = body.result.result.as_ref().map(Value::to_string);
        progress.error = body
            .result
            .error
            .as_ref()
            .map(|e| serde_json::to_string(e).unwrap_or_default());
        let delivery = self
            .webhook_url
            .clone()
            .filter(|_| self.plan.webhook_mode != WebhookMode::Drop)
            .map(|url| DeliveryRow {
                seq: 0,
                id: ids.delivery_id(self.seq),
                job_id: self.id.clone(),
                event,
                url,
                headers: self.webhook_headers.clone(),
                body: body.to_bytes(),
                state: DeliveryState::Pending,
                attempts: 0,
                sends_remaining: self.plan.sends as i64,
                failures: 0,
                bad_signature: self.plan.bad_signature,
                next_attempt_ms: now_ms() + self.plan.delay_ms as i64,
                created_at: now_s,
                tenant: self.tenant.clone(),
            });
        Ending {
            status,
            progress,
            delivery,
        }
    }
}

impl Engine {
    pub(super) fn start_job(&mut self, mut job: ActiveJob) {
        if job.status == JobStatus::Pending {
            job.begin();
            self.metrics.job_entered(JobStatus::Running);
            self.dirty.insert(job.id.clone());
        }
        let id = job.id.clone();
        self.jobs.insert(id.clone(), job);
        self.schedule_stage(&id);
    }

    /// (Re)sets the timer of the job's current stage; none when held.
    fn schedule_stage(&mut self, id: &str) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        if let Some(at) = job.due.take() {
            self.timers.remove(at, Due::Stage(id.to_owned()));
        }
        if job.plan.hold || job.finishing {
            return;
        }
        let at = Instant::now() + Duration::from_millis(job.plan.stage_ms);
        job.due = Some(at);
        self.timers.insert(at, Due::Stage(id.to_owned()));
    }

    pub(super) fn stage_due(&mut self, id: &str) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.due = None;
            if !job.finishing {
                self.advance(id, None);
            }
        }
    }

    pub(super) fn cancel(&mut self, id: &str, tenant: &str, reply: oneshot::Sender<Control>) {
        match self.jobs.get(id) {
            Some(j) if j.tenant == tenant && !j.finishing => {
                let err = WebhookError {
                    code: "CANCELLED".into(),
                    stage: j.stage().to_owned(),
                    details: serde_json::json!({"reason": "Cancelled by the client"}),
                };
                self.finish(id, JobStatus::Cancelled, Some(err), Some(reply));
            }
            _ => {
                let _ = reply.send(Control::NotActive);
            }
        }
    }

    pub(super) fn admin(&mut self, id: &str, action: AdminAction, reply: oneshot::Sender<Control>) {
        let Some(job) = self.jobs.get_mut(id).filter(|j| !j.finishing) else {
            let _ = reply.send(Control::NotActive);
            return;
        };
        match action {
            AdminAction::Advance => self.advance(id, Some(reply)),
            AdminAction::Complete(result) => {
                if let Some(r) = result {
                    job.plan.result = Some(Value::Object(r));
                }
                self.finish(id, JobStatus::Completed, None, Some(reply))
            }
            AdminAction::Fail(spec) => {
                let err = spec.resolve(job.stage());
                self.finish(id, JobStatus::Failed, Some(err), Some(reply))
            }
            AdminAction::Cancel => {
                let err = WebhookError {
                    code: "CANCELLED".into(),
                    stage: job.stage().to_owned(),
                    details: serde_json::json!({"reason": "Cancelled from the admin API"}),
                };
                self.finish(id, JobStatus::Cancelled, Some(err), Some(reply))
            }
        }
    }

    /// Ends the current stage: the job fails here, finishes, or starts the
    /// next stage.
    fn advance(&mut self, id: &str, reply: Option<oneshot::Sender<Control>>) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        if let Step::End(status, err) = job.step() {
            self.finish(id, status, err, reply);
            return;
        }
        match reply {
            None => {
                self.dirty.insert(id.to_owned());
            }
            Some(reply) => {
                let progress = job.progress(&rfc3339(Utc::now()));
                self.persist_now(progress, reply);
            }
        }
        self.schedule_stage(id);
    }

    pub(super) fn flush_progress(&mut self) {
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
        if let Some(at) = job.due.take() {
            self.timers.remove(at, Due::Stage(id.to_owned()));
        }
        job.finishing = true;
        job.waiting.extend(reply);
        // The final update below supersedes any progress not yet written.
        self.dirty.remove(id);
        let Ending {
            progress, delivery, ..
        } = job.ending(status, error, &self.settings.ids);
        job.final_write = Some((progress, delivery));
        // Remember the status for metrics when the commit lands.
        job.status = status;
        self.write_final(id);
    }

    /// (Re)issues a finishing job's terminal write.
    pub(super) fn write_final(&mut self, id: &str) {
        let Some((progress, delivery)) = self.jobs.get(id).and_then(|j| j.final_write.clone())
        else {
            return;
        };
        let (tx, id) = (self.tx.clone(), id.to_owned());
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
    }

    pub(super) fn finished(&mut self, id: &str, outcome: Result<Option<DeliveryRow>, String>) {
        if let Err(e) = &outcome {
            // Not committed (disk full, read-only database…): keep the job
            // and write its end again, 100 ms doubling up to 5 s, until it
            // commits. Waiting admin calls answer then.
            let Some(job) = self.jobs.get_mut(id) else {
                return;
            };
            job.final_failures += 1;
            let wait = Duration::from_millis(100 << job.final_failures.min(6)).min(FINAL_RETRY_MAX);
            if job.final_failures == 1 || job.final_failures % 20 == 0 {
                log::error!(
                    "could not record the end of job {id} ({} tries): {e}; retrying every {wait:?} at most",
                    job.final_failures
                );
            }
            self.timers
                .insert(Instant::now() + wait, Due::FinalWrite(id.to_owned()));
            return;
        }
        let Some(job) = self.jobs.remove(id) else {
            return;
        };
        if job.final_failures > 0 {
            log::info!(
                "recorded the end of job {id} after {} failed tries",
                job.final_failures
            );
        }
        self.metrics.active_jobs.fetch_sub(1, Relaxed);
        match outcome {
            Ok(delivery) => {
                self.metrics.job_entered(job.status);
                if let Some(row) = delivery {
                    self.enqueue_delivery(&row);
                }
            }
            Err(_) => unreachable!("handled above"),
        }
        for w in job.waiting {
            let _ = w.send(Control::Done);
        }
    }
}
