//! The receiver audit (`POST /_mock/jobs/{id}/audit`, docs/receiver-audit.md):
//! a battery of requests sent to one job's webhook URL in a task of its
//! own, outside the engine's outbox, so the job and its genuine delivery
//! are never touched; the report is one row of `audits`.
//!
//! - `cases.rs`: the battery and its signed requests;
//! - `verdict.rs`: what a case expects, and its verdict and reason;
//! - `hostile.rs`: the 5 MB body and the dripped one;
//! - `runner.rs`: sending them, bounded, and recording the report;
//! - `target.rs`: where it sends, with which secrets, a case and one request;
//! - `state.rs`: reading the caller's state of the job (`state_url`);
//! - `report.rs`: the report's shape and JSON view;
//! - `cli.rs`: `mock-camber audit`, the same over HTTP for a pipeline.

pub mod cases;
pub mod cli;
pub mod hostile;
pub mod report;
pub mod runner;
pub mod state;
pub mod target;
pub mod verdict;

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use shared::wire::{rfc3339, webhook_timestamp};
use shared::{JobStatus, WebhookBody, WebhookEvent};

use crate::config::Settings;
use crate::error::ApiError;
use crate::store::{self, DeliveryRow, JobRow, Store};
use target::Target;

/// Most audits running at once, over all jobs.
pub const MAX_RUNNING: usize = 4;
/// Most scenario audits waiting for their job's delivery at once.
pub const MAX_WAITING: usize = 1024;

/// The jobs whose audit is running: one at a time per job, at most
/// [`MAX_RUNNING`] in all.
#[derive(Default, Clone)]
pub struct Audits {
    running: Arc<Mutex<HashSet<String>>>,
    /// Scenario audits waiting for their delivery (`MAX_WAITING`).
    pub waiting: Arc<std::sync::atomic::AtomicUsize>,
}

/// A job's place among the running audits, given back when dropped.
struct Claim {
    running: Arc<Mutex<HashSet<String>>>,
    job_id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.running.lock().remove(&self.job_id);
    }
}

impl Audits {
    fn claim(&self, job_id: &str) -> Result<Claim, ApiError> {
        let mut running = self.running.lock();
        if running.contains(job_id) {
            return Err(ApiError::Conflict(format!(
                "an audit of job {job_id} is already running"
            )));
        }
        if running.len() >= MAX_RUNNING {
            return Err(ApiError::Conflict(format!(
                "{MAX_RUNNING} audits are already running; try again when one is done"
            )));
        }
        running.insert(job_id.to_owned());
        Ok(Claim {
            running: self.running.clone(),
            job_id: job_id.to_owned(),
        })
    }

    /// Starts an audit of job `job_id` (ended, or held, with a
    /// `webhook.url`); answers its id once its row is committed (for a
    /// scenario's audit, `from_scenario`, in the write that forgets its
    /// stored wait).
    pub async fn start(
        &self,
        store: &Store,
        settings: &Settings,
        job_id: String,
        state: Option<state::StateRead>,
        from_scenario: bool,
    ) -> Result<String, ApiError> {
        let read_id = job_id.clone();
        let (job, delivery) = store
            .read(move |c| {
                Ok((
                    store::get_job(c, &read_id)?,
                    store::latest_delivery(c, &read_id)?,
                ))
            })
            .await?;
        let job = job.ok_or_else(|| ApiError::NotFound(format!("no job {job_id}")))?;
        let mut target = target(settings, &job, delivery)?;
        target.state = state;
        let claim = self.claim(&job_id)?;
        let id = format!("aud_{:016x}", rand::random::<u64>());
        let at = rfc3339(chrono::Utc::now());
        let (row_id, row_job) = (id.clone(), job_id.clone());
        store
            .write(move |c| {
                if from_scenario {
                    store::delete_scenario_audit(c, &row_job)?;
                }
                store::insert_audit(c, &row_id, &row_job, &at)
            })
            .await?;
        let (store, audit_id) = (store.clone(), id.clone());
        actix_web::rt::spawn(async move {
            runner::run(store, audit_id, target).await;
            drop(claim);
        });
        Ok(id)
    }
}

/// What the audit of `job` sends to: its newest delivery's bytes, or for a
/// held job without one, the success body it would send.
fn target(
    settings: &Settings,
    job: &JobRow,
    delivery: Option<DeliveryRow>,
) -> Result<Target, ApiError> {
    let Some(url) = job.webhook_url.clone() else {
        return Err(ApiError::Conflict(format!(
            "job {} has no webhook.url to audit",
            job.id
        )));
    };
    let held = job.plan.as_ref().is_some_and(|p| p.hold) && !job.status.is_terminal();
    let (delivery_id, event, body) = match delivery {
        Some(d) => (d.id, d.event, d.body),
        None if held => {
            let caller_id = job
                .metadata
                .get("job_id")
                .and_then(Value::as_str)
                .unwrap_or("");
            let ts = webhook_timestamp(chrono::Utc::now());
            let body = WebhookBody::success(&job.id, caller_id, ts, serde_json::json!({}));
            (
                format!("dlv_audit_{}", job.id),
                WebhookEvent::Completed,
                body.to_bytes(),
            )
        }
        None => {
            let why = if job.status == JobStatus::Pending || !job.status.is_terminal() {
                "is still running (audit a job that has ended or is held)"
            } else {
                "ended without a webhook delivery"
            };
            return Err(ApiError::Conflict(format!("job {} {why}", job.id)));
        }
    };
    let tenant_secrets = crate::tenant::tenant_secrets(&settings.api_keys);
    let secrets =
        crate::engine::signing_secrets(&tenant_secrets, &settings.webhook_secrets, &job.tenant);
    Ok(Target {
        url,
        delivery_id,
        event,
        body,
        secrets: secrets.to_vec(),
        caller: job.webhook_headers.clone(),
        timeout: settings.delivery_timeout,
        policy: settings.webhook_policy.clone(),
        caller_job_id: (job.metadata.get("job_id").and_then(Value::as_str))
            .unwrap_or("")
            .to_owned(),
        state: None,
    })
}
