//! The Camber job API, tenant-scoped by API key: submit, poll, list, cancel,
//! logs.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use shared::headers as h;
use shared::JobStatus;

use super::body::{invalid, journal_body, read_body, Submit};
use super::{job_view, page, parse_cursor, parse_limit, parse_status};
use crate::error::ApiError;
use crate::jobs::control;
use crate::jobs::job::{Action, Caller};
use crate::jobs::submit::{self, ConfigSnapshot, Decision};
use crate::state::AppState;
use crate::store::{self, JobFilter, JobRow};
use crate::tenant::Tenant;
use crate::wait::{self, Wait};

pub async fn submit(
    req: HttpRequest,
    tenant: Tenant,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res = submit_inner(&req, tenant, payload, &state).await;
    if res.is_err() {
        state
            .metrics
            .submits_rejected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    res
}

async fn submit_inner(
    req: &HttpRequest,
    tenant: Tenant,
    payload: web::Payload,
    state: &web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(req, payload, state.settings.max_body_bytes).await?;
    journal_body(req, &raw);
    let config = ConfigSnapshot::of(state);
    if let Some(fault) = submit::draw_fault(state, config) {
        return Err(ApiError::Injected {
            status: fault.status(),
            retry_after_secs: fault.retry_after_secs(),
            message: fault.message(),
        });
    }
    let body: Value = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    let scenario = header(req, h::MOCK_SCENARIO, "X-Mock-Scenario is not text")?
        // An empty header (as some proxies and clients send) is no scenario.
        .filter(|v| !v.trim().is_empty());
    let submit = Submit::parse(&body, scenario, &state.settings.webhook_policy)?;
    let idempotency_key = header(req, h::IDEMPOTENCY_KEY, IDEM_KEY_RULE)?
        .map(|s| Some(s.to_owned()).filter(|s| !s.is_empty() && s.len() <= 255))
        .map(|k| k.ok_or_else(|| invalid(IDEM_KEY_RULE)))
        .transpose()?;
    let request = submit::Request {
        tenant: &tenant,
        raw: &raw,
        body,
        submit,
        idempotency_key,
        config,
    };
    let created = HttpResponse::Created;
    Ok(match submit::submit(state, request).await? {
        Decision::Created(body, job_id, audit) => {
            if let Some(spec) = audit {
                super::audits::after_delivery(state.clone(), job_id, spec);
            }
            created().content_type("application/json").body(body)
        }
        Decision::Replayed(original) => created()
            .insert_header((h::IDEMPOTENT_REPLAYED, "true"))
            .content_type("application/json")
            .body(original),
        Decision::KeyReused => return Err(ApiError::IdempotencyKeyReused),
    })
}

const IDEM_KEY_RULE: &str = "Idempotency-Key must be 1 to 255 characters of text";

/// A request header as text, if present; `not_text` when it is not.
fn header<'a>(
    req: &'a HttpRequest,
    name: &str,
    not_text: &str,
) -> Result<Option<&'a str>, ApiError> {
    (req.headers().get(name))
        .map(|v| v.to_str().map_err(|_| invalid(not_text)))
        .transpose()
}

/// The tenant's job, or 404 exactly as if it did not exist.
async fn own_job(state: &AppState, tenant: &Tenant, id: String) -> Result<JobRow, ApiError> {
    control::find(state, &Caller::Tenant(tenant.id.clone()), id).await
}

/// `wait_for` of `GET /jobs/{id}`: the state a caller waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitFor {
    Running,
    Completed,
    Failed,
    Terminal,
}

impl WaitFor {
    fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "terminal" => Self::Terminal,
            _ => {
                return Err(ApiError::InvalidRequest(
                    "`wait_for` must be one of running, completed, failed, terminal".into(),
                ))
            }
        })
    }

    fn reached(self, s: JobStatus) -> bool {
        match self {
            Self::Running => s == JobStatus::Running,
            Self::Completed => s == JobStatus::Completed,
            Self::Failed => s == JobStatus::Failed,
            Self::Terminal => s.is_terminal(),
        }
    }
}

pub async fn get(
    req: HttpRequest,
    tenant: Tenant,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let q = |k: &str| query.get(k).map(String::as_str).filter(|s| !s.is_empty());
    // `wait_ms` alone waits for the end (`terminal`); `wait_for` alone is a
    // wait of 0 ms: the view if the job is in that state now, else 408.
    let want = match (q("wait_for"), q("wait_ms")) {
        (None, None) => {
            let row = own_job(&state, &tenant, id).await?;
            return Ok(HttpResponse::Ok().json(job_view(&row)));
        }
        (None, Some(_)) => WaitFor::Terminal,
        (Some(w), _) => WaitFor::parse(w)?,
    };
    let wait = Wait {
        ms: wait::parse_wait_ms(q("wait_ms").unwrap_or("0"))?,
        min_count: 1,
    };
    let (done, row) = wait_on_job(&req, &state, &tenant, id.clone(), want, wait).await?;
    Ok(job_wait_answer(&id, q("wait_for"), want, wait, done, &row))
}

/// Parks until the tenant's job `id` reaches `want` or an end (`true`), or
/// the wait runs out (`false`); answers the job as it is then.
async fn wait_on_job(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    tenant: &Tenant,
    id: String,
    want: WaitFor,
    wait: Wait,
) -> Result<(bool, JobRow), ApiError> {
    // Woken only by this job reaching what is wanted or an end.
    let interest = wait::Interest::Job {
        id: id.clone(),
        statuses: JobStatus::ALL
            .iter()
            .copied()
            .filter(|s| want.reached(*s) || s.is_terminal())
            .collect(),
    };
    state
        .changes
        .until_or_gone(interest, wait.deadline(), wait::client_gone(req), || {
            let (state, tenant, id) = (state.clone(), tenant.clone(), id.clone());
            async move {
                let row = own_job(&state, &tenant, id).await?;
                let status = row.status;
                // A job that ended otherwise will never get there: say so now.
                Ok((want.reached(status) || status.is_terminal(), row))
            }
        })
        .await
}

/// The answer to a job wait: the view when it got there, 409 when the job
/// ended otherwise, 408 with the view when the wait ran out.
fn job_wait_answer(
    id: &str,
    wait_for: Option<&str>,
    want: WaitFor,
    wait: Wait,
    done: bool,
    row: &JobRow,
) -> HttpResponse {
    let view = job_view(row);
    if done && want.reached(view.status) {
        return HttpResponse::Ok().json(view);
    }
    if done {
        // Ended otherwise: the wait could never be satisfied, so say so now.
        return wait::error_with(
            StatusCode::CONFLICT,
            shared::error::codes::CONFLICT,
            format!(
                "job `{id}` ended {} and will never be {}",
                view.status.as_str(),
                wait_for.unwrap_or_default()
            ),
            "job",
            &view,
        );
    }
    wait::timed_out(
        format!(
            "job `{id}` is still {} after {} ms",
            view.status.as_str(),
            wait.ms
        ),
        "job",
        &view,
    )
}

pub async fn list(
    tenant: Tenant,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // An empty value is "not given", as on the admin lists.
    let q = |k: &str| query.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let limit = parse_limit(q("limit"))?;
    let filter = JobFilter {
        tenants: Some(vec![tenant.id]),
        status: parse_status(q("status"))?,
        app: q("app").map(str::to_owned),
        search: None,
        before_seq: parse_cursor(q("cursor"))?,
        limit,
    };
    let rows = state
        .store
        .read(move |c| store::list_jobs(c, &filter))
        .await?;
    let (rows, next) = page(rows, limit, |r| r.seq);
    let jobs: Vec<_> = rows.iter().map(job_view).collect();
    Ok(HttpResponse::Ok().json(json!({"jobs": jobs, "next": next})))
}

pub async fn cancel(
    tenant: Tenant,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = Caller::Tenant(tenant.id);
    let row = control::control(&state, caller, id.into_inner(), Action::Cancel).await?;
    Ok(HttpResponse::Ok().json(job_view(&row)))
}

pub async fn logs(
    tenant: Tenant,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = own_job(&state, &tenant, id.into_inner()).await?;
    let tail = query
        .get("tail")
        .map(|t| match t.parse::<usize>() {
            Ok(n) => Ok(n),
            // More lines than any log has: all of them.
            Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => Ok(usize::MAX),
            Err(_) => Err(invalid("`tail` must be a whole number")),
        })
        .transpose()?;
    let lines: Vec<&str> = row.log.lines().collect();
    let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut text = lines[from..].join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}
