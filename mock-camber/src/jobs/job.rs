//! A job's life, as a value: it runs FETCH → OCR → NORMALIZE (each stage
//! `stage_ms` long, or until advanced when held) and ends completed,
//! failed or cancelled, with the webhook delivery its end calls for. No
//! timers, no I/O: the engine's stage runner (`engine/stages.rs`) drives
//! it and commits what it returns, and a job whose stages take no time is
//! run to its end at submit ([`Job::run_at_once`]).

use chrono::Utc;
use serde_json::{Map, Value};
use shared::wire::{rfc3339, webhook_timestamp};
use shared::{DeliveryState, JobStatus, WebhookBody, WebhookError, WebhookEvent};

use super::stage::Stage;
use crate::scenario::{self, FailSpec, Outcome, Plan};
use crate::store::{AttemptKind, DeliveryRow, EventKind, Headers, JobEvent, JobRow, Progress};
use crate::tenant::Ids;

/// A job that is pending or running.
#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub id: String,
    pub tenant: String,
    /// `metadata.job_id`, else the Camber id: the webhook's `job_id`.
    pub caller_job_id: String,
    pub status: JobStatus,
    pub stage: Stage,
    pub plan: Plan,
    pub webhook_url: Option<String>,
    pub webhook_headers: Headers,
    pub started_at: Option<String>,
    pub log: String,
    /// Events not yet written: the next progress write takes them.
    pub events: Vec<JobEvent>,
    /// While a job runs to its end at once, the one time its events and
    /// log lines all take (formatted once, not once a line).
    instant: Option<String>,
}

pub fn caller_job_id(metadata: &Value, camber_id: &str) -> String {
    match metadata.get("job_id") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => camber_id.to_owned(),
    }
}

/// Who asks for a control action: a tenant acts on its own jobs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The tenant API (`POST /jobs/{id}/cancel`), by tenant id.
    Tenant(String),
    /// The admin API and the console (`/_mock/jobs/{id}/…`).
    Admin,
    /// The engine, when a timed stage's time is up (an `Advance`).
    StageTimer,
}

impl Caller {
    pub fn may_touch(&self, tenant: &str) -> bool {
        match self {
            Self::Tenant(t) => t == tenant,
            Self::Admin | Self::StageTimer => true,
        }
    }
}

/// What a control request asks of a running job.
#[derive(Debug)]
pub enum Action {
    /// End the current stage now.
    Advance,
    /// Complete now, with this `result` when given (else the planned one).
    Complete(Option<Map<String, Value>>),
    /// Fail now; what the request left out comes from the job's stage.
    Fail(FailSpec),
    /// Cancel (`CANCELLED`, a `failed` webhook).
    Cancel,
}

/// What a stage's end or a control action did to a job.
#[derive(Debug)]
pub enum Step {
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

impl Job {
    /// A stored job, to resume (its plan must have been read).
    pub fn from_row(row: &JobRow) -> Result<Self, String> {
        let plan = row.plan.clone().ok_or("its plan could not be read")?;
        Ok(Self::new(row, plan))
    }

    pub fn new(row: &JobRow, plan: Plan) -> Self {
        Self {
            seq: row.seq,
            id: row.id.clone(),
            tenant: row.tenant.clone(),
            caller_job_id: caller_job_id(&row.metadata, &row.id),
            status: row.status,
            stage: row.stage.unwrap_or(Stage::Fetch),
            plan,
            webhook_url: row.webhook_url.clone(),
            webhook_headers: row.webhook_headers.clone(),
            started_at: row.started_at.clone(),
            log: row.log.clone(),
            events: Vec::new(),
            instant: None,
        }
    }

    /// A new job's first events: pending, and held when its plan says.
    pub fn submitted(&mut self) {
        self.event(EventKind::Status, None, Some(JobStatus::Pending), None);
        if self.plan.hold {
            self.event(EventKind::Hold, None, None, None);
        }
    }

    fn event(
        &mut self,
        kind: EventKind,
        stage: Option<Stage>,
        status: Option<JobStatus>,
        detail: Option<String>,
    ) {
        let at = self.now();
        self.events.push(JobEvent {
            at,
            kind,
            stage,
            status,
            detail,
        });
    }

    /// The time to stamp an event or log line with.
    fn now(&self) -> String {
        match &self.instant {
            Some(at) => at.clone(),
            None => rfc3339(Utc::now()),
        }
    }

    fn log_line(&mut self, line: &str) {
        let at = self.now();
        self.log.push_str(&at);
        self.log.push(' ');
        self.log.push_str(line);
        self.log.push('\n');
    }

    /// The row update of a pending or running job, as of `now`, with the
    /// events since the last one.
    pub fn progress(&mut self, now: &str) -> Progress {
        Progress {
            events: std::mem::take(&mut self.events),
            id: self.id.clone(),
            status: self.status,
            stage: (self.status == JobStatus::Running).then_some(self.stage),
            updated_at: now.to_owned(),
            started_at: self.started_at.clone(),
            finished_at: None,
            result: None,
            error: None,
            log: self.log.clone(),
        }
    }

    /// The first stage starts.
    pub fn begin(&mut self) {
        self.status = JobStatus::Running;
        self.stage = Stage::Fetch;
        self.started_at = Some(self.now());
        self.log_line(&format!("{} started", self.stage));
        self.event(EventKind::Status, None, Some(JobStatus::Running), None);
        self.event(EventKind::StageStarted, Some(self.stage), None, None);
    }

    /// The current stage ends: the job fails in it, ends after the last
    /// one, or moves on to the next.
    pub fn step(&mut self) -> Step {
        if self.plan.failure_stage() == Some(self.stage) {
            return Step::End(JobStatus::Failed, self.plan.error.clone());
        }
        self.log_line(&format!("{} finished", self.stage));
        self.event(EventKind::StageFinished, Some(self.stage), None, None);
        let Some(next) = self.stage.next() else {
            let status = match self.plan.outcome {
                Outcome::Success => JobStatus::Completed,
                Outcome::Failure => JobStatus::Failed,
            };
            return Step::End(status, self.plan.error.clone());
        };
        self.stage = next;
        self.log_line(&format!("{next} started"));
        self.event(EventKind::StageStarted, Some(next), None, None);
        Step::Next
    }

    /// What `action` does: the next stage, or an end. Whether the caller
    /// may act on this job is the engine's check ([`Caller::may_touch`]).
    pub fn control(&mut self, action: Action, caller: &Caller) -> Step {
        let (kind, detail) = match (&action, caller) {
            (Action::Advance, Caller::StageTimer) => (None, None),
            (Action::Advance, _) => (Some(EventKind::Advance), None),
            (Action::Complete(_), _) => (Some(EventKind::Complete), None),
            (Action::Fail(_), _) => (Some(EventKind::Fail), None),
            (Action::Cancel, Caller::Tenant(_)) => (Some(EventKind::Cancel), Some("tenant")),
            (Action::Cancel, _) => (Some(EventKind::Cancel), Some("admin")),
        };
        if let Some(kind) = kind {
            self.event(kind, Some(self.stage), None, detail.map(str::to_owned));
        }
        match action {
            Action::Advance => self.step(),
            Action::Complete(result) => {
                if let Some(r) = result {
                    self.plan.result = Some(Value::Object(r));
                }
                Step::End(JobStatus::Completed, None)
            }
            Action::Fail(spec) => {
                Step::End(JobStatus::Failed, Some(spec.resolve(self.stage.as_str())))
            }
            Action::Cancel => {
                let reason = match caller {
                    Caller::Tenant(_) => "Cancelled by the client",
                    Caller::Admin | Caller::StageTimer => "Cancelled from the admin API",
                };
                let err = WebhookError {
                    code: "CANCELLED".into(),
                    stage: self.stage.as_str().to_owned(),
                    details: serde_json::json!({ "reason": reason }),
                };
                Step::End(JobStatus::Cancelled, Some(err))
            }
        }
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
        self.instant = Some(rfc3339(Utc::now()));
        self.begin();
        let ending = loop {
            if let Step::End(status, error) = self.step() {
                break self.ending(status, error, ids);
            }
        };
        self.instant = None;
        ending
    }

    /// The job's terminal row and webhook delivery for `status`.
    pub fn ending(&mut self, status: JobStatus, error: Option<WebhookError>, ids: &Ids) -> Ending {
        let now = Utc::now();
        let now_s = self.instant.clone().unwrap_or_else(|| rfc3339(now));
        let ts = webhook_timestamp(now);
        let (body, event) = match (status, error) {
            (JobStatus::Completed, _) => {
                self.log_line("job completed");
                let result = self.plan.result.clone().unwrap_or_else(|| {
                    scenario::generated_result(&mut ids.job_rng(self.seq), self.plan.stage_ms)
                });
                let body = WebhookBody::success(&self.id, &self.caller_job_id, ts, result);
                (body, WebhookEvent::Completed)
            }
            (_, err) => {
                let err = err.unwrap_or_else(|| scenario::simulated_error(3));
                let reason = err.details.get("reason").and_then(Value::as_str);
                let detail = format!("{} {}", err.code, reason.unwrap_or(""));
                self.log_line(&format!("{} failed: {detail}", self.stage));
                self.event(EventKind::StageFailed, Some(self.stage), None, Some(detail));
                self.log_line(&format!("job {status}"));
                let body = WebhookBody::failure(&self.id, &self.caller_job_id, ts, err);
                (body, WebhookEvent::Failed)
            }
        };
        self.event(EventKind::Status, None, Some(status), None);
        let mut progress = self.progress(&now_s);
        progress.status = status;
        progress.stage = None;
        progress.finished_at = Some(now_s.clone());
        let faults = &self.plan.webhook;
        let delivery = (self.webhook_url.clone())
            .filter(|_| !faults.dropped())
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
                sends_remaining: faults.sends() as i64,
                failures: 0,
                faults: faults.at_send(),
                kind: AttemptKind::Scheduled,
                next_attempt_ms: Utc::now().timestamp_millis() + faults.delay_ms() as i64,
                created_at: now_s,
                tenant: self.tenant.clone(),
            });
        // The body is in its bytes now: the row takes its parts, uncopied.
        progress.result = body.result.result;
        progress.error = body.result.error;
        Ending {
            status,
            progress,
            delivery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventKind as K;
    use rand::SeedableRng;

    fn held_job() -> Job {
        let sc = crate::scenario::Scenario::parse(&serde_json::json!({"hold": true})).unwrap();
        let plan = scenario::plan(Some(&sc), 0, 0.0, &mut rand::rngs::StdRng::seed_from_u64(1));
        let row = JobRow {
            seq: 1,
            id: "cmb_1".into(),
            tenant: "t".into(),
            tenant_mask: "t".into(),
            app: "a".into(),
            status: JobStatus::Pending,
            stage: None,
            metadata: Value::Null,
            input: Value::Null,
            plan: None,
            webhook_url: None,
            webhook_headers: Headers::default(),
            created_at: String::new(),
            updated_at: String::new(),
            started_at: None,
            finished_at: None,
            result: None,
            error: None,
            log: String::new(),
            delivery_state: None,
            delivery_attempts: 0,
            delivery_failures: 0,
        };
        Job::new(&row, plan)
    }

    #[test]
    fn every_status_stage_and_control_change_is_an_event_taken_by_the_next_write() {
        let mut job = held_job();
        job.submitted();
        job.begin();
        let first = job.progress("now").events;
        let kinds: Vec<_> = first.iter().map(|e| (e.kind, e.stage, e.status)).collect();
        assert_eq!(
            kinds,
            [
                (K::Status, None, Some(JobStatus::Pending)),
                (K::Hold, None, None),
                (K::Status, None, Some(JobStatus::Running)),
                (K::StageStarted, Some(Stage::Fetch), None),
            ]
        );
        assert!(job.progress("now").events.is_empty(), "taken once");
        assert!(matches!(
            job.control(Action::Advance, &Caller::Admin),
            Step::Next
        ));
        let Step::End(status, err) = job.control(Action::Cancel, &Caller::Tenant("t".into()))
        else {
            panic!("a cancel ends the job");
        };
        let end = job.ending(status, err, &Ids::new(1));
        let kinds: Vec<_> = (end.progress.events.iter())
            .map(|e| (e.kind, e.stage, e.detail.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                (K::Advance, Some(Stage::Fetch), None),
                (K::StageFinished, Some(Stage::Fetch), None),
                (K::StageStarted, Some(Stage::Ocr), None),
                (K::Cancel, Some(Stage::Ocr), Some("tenant")),
                (
                    K::StageFailed,
                    Some(Stage::Ocr),
                    Some("CANCELLED Cancelled by the client")
                ),
                (K::Status, None, None),
            ]
        );
        assert_eq!(end.progress.events[5].status, Some(JobStatus::Cancelled));
    }
}
