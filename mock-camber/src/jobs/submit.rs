//! What `POST /jobs` decides, given what the route parsed: whether a fault
//! is injected, which scenario applies (the body's or header's, else the
//! first matching rule, else the defaults), the job's plan, id and row, its
//! idempotency record, and, for a job whose stages take no time, its end;
//! then one commit, and the job handed to the engine. The route renders
//! the [`Decision`].

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use chrono::Utc;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::wire::rfc3339;
use shared::{JobStatus, SubmitResponse};

use super::job::Job;
use crate::error::ApiError;
use crate::routes::body::Submit;
use crate::scenario::{self, Origin, Scenario, SubmitFault};
use crate::state::AppState;
use crate::store::{
    self, DeliveryRow, Headers, IdemRecord, JobEvent, JobRow, NewJob, SubmitOutcome,
};
use crate::tenant::Tenant;

/// The runtime config's knobs a submit reads, taken once.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSnapshot {
    pub submit_error_rate: f64,
    pub stage_ms: u64,
    pub failure_rate: f64,
}

impl ConfigSnapshot {
    pub fn of(state: &AppState) -> Self {
        let c = state.config.lock();
        Self {
            submit_error_rate: c.submit_error_rate,
            stage_ms: c.stage_ms,
            failure_rate: c.failure_rate,
        }
    }
}

/// The fault this submit draws (from the seeded submit generator, so a
/// seeded run injects errors into the same submits), counted; none when
/// the rate is 0 (and then nothing is drawn).
pub fn draw_fault(state: &AppState, config: ConfigSnapshot) -> Option<SubmitFault> {
    if config.submit_error_rate <= 0.0 {
        return None;
    }
    let (roll, pick): (f64, bool) = {
        let mut rng = state.submit_rng.lock();
        (rng.gen(), rng.gen())
    };
    let fault = SubmitFault::draw(config.submit_error_rate, roll, pick)?;
    state.metrics.submit_errors_injected.fetch_add(1, Relaxed);
    Some(fault)
}

/// A parsed submit.
pub struct Request<'a> {
    pub tenant: &'a Tenant,
    /// The body as received (its hash keys the idempotency record).
    pub raw: &'a [u8],
    /// The body as JSON (what scenario rules match); its `input` and
    /// `metadata` become the job's.
    pub body: Value,
    pub submit: Submit,
    pub idempotency_key: Option<String>,
    pub config: ConfigSnapshot,
}

/// What became of a submit.
#[derive(Debug)]
pub enum Decision {
    /// A new job: 201 with this response body; its id, and the receiver
    /// audit its scenario asks for (`webhook.audit`).
    Created(String, String, Option<scenario::AuditSpec>),
    /// The same key and body again: the original response.
    Replayed(String),
    /// The same key with another body: 409.
    KeyReused,
}

/// Everything one submit commits.
struct Prepared {
    row: JobRow,
    /// Its events so far, written with the row.
    events: Vec<JobEvent>,
    idem: Option<IdemRecord>,
    job: Job,
    response: String,
    /// The job's end when it ran to it at submit, with its delivery.
    ended: Option<(JobStatus, Option<DeliveryRow>)>,
    /// The receiver audit its scenario asks for.
    audit: Option<scenario::AuditSpec>,
}

/// Decides, commits and hands off one submit.
pub async fn submit(state: &AppState, req: Request<'_>) -> Result<Decision, ApiError> {
    let Prepared {
        row,
        events,
        idem,
        job,
        response,
        ended,
        audit,
    } = prepare(state, req)?;
    let job_id = row.id.clone();
    let (ended, delivery) = match ended {
        Some((status, delivery)) => (Some(status), delivery),
        None => (None, None),
    };
    // Steady: a forward jump of the system clock does not expire keys.
    let now_unix = crate::clock::now().timestamp();
    // A scenario's audit is stored with its job: a restart still starts it.
    let waiting_audit = audit.as_ref().map(|spec| store::ScenarioAuditRow {
        job_id: job_id.clone(),
        state_url: spec.state_url.clone(),
        state_pointer: spec.state_pointer.clone(),
    });
    // Rendered here, on this worker: the writer thread only binds.
    let new = NewJob::of(row, &job.plan, &events).map_err(ApiError::internal)?;
    // Shared with the write (which may run twice), not copied: the write
    // is dropped before it answers, so the row is ours alone again then.
    let delivery = delivery.map(Arc::new);
    let written = delivery.clone();
    let outcome = state
        .store
        .write(move |c| {
            let outcome = store::insert_job(c, &new, idem.as_ref(), now_unix)?;
            if let SubmitOutcome::Created = outcome {
                if let Some(d) = &written {
                    store::insert_delivery(c, d)?;
                }
                if let Some(a) = &waiting_audit {
                    store::insert_scenario_audit(c, a)?;
                }
            }
            Ok(outcome)
        })
        .await?;
    let delivery = delivery.map(Arc::unwrap_or_clone);
    let m = &state.metrics;
    match outcome {
        SubmitOutcome::Created => {
            m.submits.fetch_add(1, Relaxed);
            m.job_entered(JobStatus::Pending);
            match ended {
                Some(status) => {
                    m.job_entered(JobStatus::Running);
                    m.job_entered(status);
                    if let Some(d) = delivery {
                        state.engine.deliver(d);
                    }
                }
                None => state.engine.submit(job),
            }
            Ok(Decision::Created(response, job_id, audit))
        }
        SubmitOutcome::Replayed(original) => {
            m.submits_replayed.fetch_add(1, Relaxed);
            Ok(Decision::Replayed(original))
        }
        SubmitOutcome::KeyReused => Ok(Decision::KeyReused),
    }
}

/// The scenario that applies and what chose it: the body's or header's,
/// else the first matching rule (which uses it up), else the defaults.
fn choose_scenario(state: &AppState, req: &mut Request<'_>) -> (Option<Scenario>, Origin) {
    let (scenario, mut origin) = match req.submit.scenario.take() {
        Some(s) => (Some(s), Origin::from(req.submit.scenario_source)),
        None => match state.config.lock().take_rule(&req.body, &req.tenant.id) {
            Some((i, rule)) => (
                Some(rule.scenario.clone()),
                Origin {
                    rule_index: Some(i),
                    rule: Some(rule),
                    ..Origin::from("rule")
                },
            ),
            None => (None, Origin::from("defaults")),
        },
    };
    origin.scenario = scenario.clone();
    origin.failure_rate = req.config.failure_rate;
    (scenario, origin)
}

/// The job's plan, row, idempotency record and (for an instant job) end.
fn prepare(state: &AppState, mut req: Request<'_>) -> Result<Prepared, ApiError> {
    let (scenario, origin) = choose_scenario(state, &mut req);
    let audit = (scenario.as_ref())
        .and_then(|s| s.webhook.as_ref()?.audit.as_ref())
        .and_then(scenario::AuditScenario::wanted);
    let seq = state.last_seq.fetch_add(1, SeqCst) + 1;
    let id = state.ids.job_id(seq);
    let cfg = req.config;
    let mut rng = state.ids.job_rng(seq);
    let mut plan = scenario::plan(scenario.as_ref(), cfg.stage_ms, cfg.failure_rate, &mut rng);
    plan.origin = Some(origin);
    let submit = req.submit;
    let (input, metadata) = Submit::take_input_and_metadata(req.body);
    let now = rfc3339(Utc::now());
    let response = serde_json::to_string(&SubmitResponse {
        id: id.clone(),
        job_id: id.clone(),
        status: JobStatus::Pending,
        app: submit.app.clone(),
        created_at: now.clone(),
    })
    .map_err(ApiError::internal)?;
    let mut row = JobRow {
        seq,
        id,
        tenant: req.tenant.id.clone(),
        tenant_mask: req.tenant.mask.clone(),
        app: submit.app,
        status: JobStatus::Pending,
        stage: None,
        webhook_url: (submit.webhook_url).or_else(|| state.settings.webhook_url.clone()),
        webhook_headers: Headers::from_map(&submit.webhook_headers),
        metadata,
        input,
        plan: None,
        created_at: now.clone(),
        updated_at: now,
        started_at: None,
        finished_at: None,
        result: None,
        error: None,
        log: String::new(),
        delivery_state: None,
        delivery_attempts: 0,
        delivery_failures: 0,
    };
    // The job keeps the plan; the row is written with it (NewJob::of).
    let mut job = Job::new(&row, plan);
    job.submitted();
    let mut events = Vec::new();
    let idem = req.idempotency_key.map(|key| IdemRecord {
        key,
        body_hash: hex::encode(Sha256::digest(req.raw)),
        response: response.clone(),
    });
    // Stages that take no time and nothing holding the job: it runs to its
    // end now, and its row is written already ended, with its webhook
    // delivery, in the same transaction: one write and one commit per job.
    let ended = job.instant().then(|| {
        let mut e = job.run_at_once(&state.ids);
        events = std::mem::take(&mut e.progress.events);
        row.apply(e.progress);
        (e.status, e.delivery)
    });
    // A job the engine runs writes its first events with its row.
    if ended.is_none() {
        events = std::mem::take(&mut job.events);
    }
    Ok(Prepared {
        row,
        events,
        idem,
        job,
        response,
        ended,
        audit,
    })
}
