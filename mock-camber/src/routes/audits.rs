//! The receiver audit's admin routes (`audit/`): start one for a job,
//! list them, read one report.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::optional_object_body;
use super::{page, parse_cursor, parse_limit};
use crate::audit::report;
use crate::audit::state::StateRead;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::body::read_body;
use crate::scenario::{check_audit, AuditSpec};
use crate::state::AppState;
use crate::store;
use crate::wait;
use shared::DeliveryState;

/// Body of `POST /_mock/jobs/{id}/audit`, optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditBody {
    /// A template such as `http://api:8000/jobs/{job_id}`.
    state_url: Option<String>,
    /// The JSON pointer of the status in its answer, e.g. `/status`.
    state_pointer: Option<String>,
}

impl AuditBody {
    fn spec(&self) -> AuditSpec {
        AuditSpec {
            state_url: self.state_url.clone(),
            state_pointer: self.state_pointer.clone(),
        }
    }
}

/// The state read a spec asks for (`state_pointer` alone reads nothing;
/// `state_url` alone reads the whole answer).
fn state_read(spec: &AuditSpec) -> Option<StateRead> {
    Some(StateRead {
        url: spec.state_url.clone()?,
        pointer: spec.state_pointer.clone().unwrap_or_default(),
    })
}

/// How long a scenario's audit waits for the genuine delivery.
const AFTER_DELIVERY_WAIT: Duration = Duration::from_secs(3600);

/// A scenario's `webhook.audit`: waits (as long-polls do, woken by the
/// delivery's commits) until the job's webhook is delivered, then starts
/// its audit. The wait is stored with the job (`scenario_audits`) and
/// forgotten only when the audit starts or is given up, so a restart
/// waits again ([`resume_after_delivery`]).
pub(crate) fn after_delivery(state: web::Data<AppState>, job_id: String, spec: AuditSpec) {
    use std::sync::atomic::Ordering::SeqCst;
    let waiting = state.audits.waiting.clone();
    if waiting.fetch_add(1, SeqCst) >= crate::audit::MAX_WAITING {
        waiting.fetch_sub(1, SeqCst);
        log::warn!("no audit of job {job_id}: too many scenario audits are waiting");
        return;
    }
    actix_web::rt::spawn(async move {
        let deadline = tokio::time::Instant::now() + AFTER_DELIVERY_WAIT;
        let started = match delivered(&state, &job_id, deadline).await {
            Ok(true) => {
                let (store, settings) = (&state.store, &state.settings);
                let read = state_read(&spec);
                (state.audits)
                    .start(store, settings, job_id.clone(), read, true)
                    .await
                    .map(drop)
            }
            // The server is stopping: the stored wait resumes at the next start.
            Ok(false) if tokio::time::Instant::now() < deadline => Ok(()),
            Ok(false) => Err(ApiError::Conflict(
                "its webhook was not delivered within an hour".into(),
            )),
            Err(e) => Err(e),
        };
        waiting.fetch_sub(1, SeqCst);
        if let Err(e) = started {
            log::warn!("the scenario's audit of job {job_id} did not start: {e}");
            let id = job_id.clone();
            (state.store).write_bg("scenario audit given up", move |c| {
                store::delete_scenario_audit(c, &id)
            });
        }
    });
}

/// Parks until job `job_id`'s newest delivery is delivered (`true`), or
/// `deadline` passes or the server stops (`false`).
async fn delivered(
    state: &web::Data<AppState>,
    job_id: &str,
    deadline: tokio::time::Instant,
) -> Result<bool, ApiError> {
    let interest = wait::Interest::Deliveries {
        job_id: Some(job_id.to_owned()),
        state: Some(DeliveryState::Delivered),
        event: None,
    };
    let check = || {
        let (state, id) = (state.clone(), job_id.to_owned());
        async move {
            let d = state
                .store
                .read(move |c| store::latest_delivery(c, &id))
                .await?;
            Ok((d.is_some_and(|d| d.state == DeliveryState::Delivered), ()))
        }
    };
    let (done, ()) = state.changes.until(interest, deadline, check).await?;
    Ok(done)
}

/// At start-up: the scenario audits a stop left waiting for their
/// delivery wait again (one already delivered starts at once).
pub(crate) fn resume_after_delivery(state: &web::Data<AppState>) -> Result<(), store::StoreError> {
    let rows =
        (state.store).read_now(|c| store::waiting_scenario_audits(c, crate::audit::MAX_WAITING))?;
    if !rows.is_empty() {
        log::info!(
            "resuming {} scenario audit(s) waiting for their delivery",
            rows.len()
        );
    }
    for r in rows {
        let spec = AuditSpec {
            state_url: r.state_url,
            state_pointer: r.state_pointer,
        };
        after_delivery(state.clone(), r.job_id, spec);
    }
    Ok(())
}

/// `POST /_mock/jobs/{id}/audit`: 202 with the audit's id.
pub async fn start(
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(&req, payload, state.settings.max_body_bytes).await?;
    let body: AuditBody = optional_object_body(&raw, "audit", &[])?;
    let spec = body.spec();
    check_audit(&spec).map_err(|e| ApiError::InvalidRequest(format!("bad audit body: {e}")))?;
    let job_id = id.into_inner();
    let audit_id = (state.audits)
        .start(
            &state.store,
            &state.settings,
            job_id.clone(),
            state_read(&spec),
            false,
        )
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/_mock/audits/{audit_id}")))
        .json(json!({"id": audit_id, "job_id": job_id, "state": "running"})))
}

/// `GET /_mock/audits`: newest first, `limit`, `cursor`, `job_id`.
pub async fn list(
    _: Admin,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = |k: &str| query.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let limit = parse_limit(q("limit"))?;
    let before = parse_cursor(q("cursor"))?;
    let job_id = q("job_id").map(str::to_owned);
    let rows = state
        .store
        .read(move |c| store::list_audits(c, job_id.as_deref(), before, limit))
        .await?;
    let (rows, next) = page(rows, limit, |r| r.seq);
    let audits: Vec<_> = rows.iter().map(report::view).collect();
    Ok(HttpResponse::Ok().json(json!({"audits": audits, "next": next})))
}

/// `GET /_mock/audits/{id}`: one report; with `wait_ms`, a long-poll
/// answering once it is `done` (woken by the report's commit), else 408
/// with the report as it is under `audit`.
pub async fn get(
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let wait_ms = query.get("wait_ms").filter(|s| !s.is_empty());
    let Some(ms) = wait_ms.map(|ms| wait::parse_wait_ms(ms)).transpose()? else {
        return Ok(HttpResponse::Ok().json(report::view(&read_audit(&state, &id).await?)));
    };
    let w = wait::Wait { ms, min_count: 1 };
    let interest = wait::Interest::Audit { id: id.clone() };
    let (done, row) = state
        .changes
        .until_or_gone(interest, w.deadline(), wait::client_gone(&req), || async {
            let row = read_audit(&state, &id).await?;
            Ok((row.state == "done", row))
        })
        .await?;
    if done {
        return Ok(HttpResponse::Ok().json(report::view(&row)));
    }
    Ok(wait::timed_out(
        format!("audit `{id}` is still {} after {ms} ms", row.state),
        "audit",
        report::view(&row),
    ))
}

async fn read_audit(state: &AppState, id: &str) -> Result<store::AuditRow, ApiError> {
    let read_id = id.to_owned();
    state
        .store
        .read(move |c| store::get_audit(c, &read_id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audit {id}")))
}
