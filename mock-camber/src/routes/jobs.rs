//! The Camber job API, tenant-scoped by API key: submit, poll, list, cancel,
//! logs.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::headers as h;
use shared::wire::rfc3339;
use shared::{JobStatus, SubmitResponse};

use super::body::{invalid, journal_body, read_body, Submit};
use super::{job_view, page, parse_cursor, parse_limit, parse_status};
use crate::engine::{ActiveJob, Control};
use crate::error::ApiError;
use crate::scenario;
use crate::state::AppState;
use crate::store::{self, Headers, IdemRecord, JobFilter, JobRow, SubmitOutcome};
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
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(req, payload, state.settings.max_body_bytes).await?;
    journal_body(req, &raw);

    let (error_rate, stage_ms, failure_rate) = {
        let c = state.config.lock();
        (c.submit_error_rate, c.stage_ms, c.failure_rate)
    };
    if error_rate > 0.0 {
        let (roll, pick): (f64, bool) = {
            let mut rng = state.submit_rng.lock();
            (rng.gen(), rng.gen())
        };
        if roll < error_rate {
            state
                .metrics
                .submit_errors_injected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(if pick {
                ApiError::Injected {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    retry_after_secs: 1,
                    message: "injected: Camber is unavailable, retry later",
                }
            } else {
                ApiError::Injected {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    retry_after_secs: 1,
                    message: "injected: too many requests, retry later",
                }
            });
        }
    }

    let body: Value = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    let scenario_header = req
        .headers()
        .get(h::MOCK_SCENARIO)
        .map(|v| {
            v.to_str()
                .map_err(|_| invalid("X-Mock-Scenario is not text"))
        })
        .transpose()?
        // An empty header (as some proxies and clients send) is no scenario.
        .filter(|v| !v.trim().is_empty());
    let submit = Submit::parse(&body, scenario_header, &state.settings.webhook_policy)?;
    let idem_key = req
        .headers()
        .get(h::IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .map(str::to_owned)
                .ok_or_else(|| invalid("Idempotency-Key must be 1 to 255 characters of text"))
        })
        .transpose()?;

    let (scenario, mut origin) = match submit.scenario {
        Some(s) => (Some(s), scenario::Origin::from(submit.scenario_source)),
        None => match state.config.lock().take_rule(&body, &tenant.id) {
            Some((i, rule)) => (
                Some(rule.scenario.clone()),
                scenario::Origin {
                    rule_index: Some(i),
                    rule: Some(rule),
                    ..scenario::Origin::from("rule")
                },
            ),
            None => (None, scenario::Origin::from("defaults")),
        },
    };
    origin.scenario = scenario.clone();
    origin.failure_rate = failure_rate;
    let seq = state
        .last_seq
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    let id = state.ids.job_id(seq);
    let mut plan = scenario::plan(
        scenario.as_ref(),
        stage_ms,
        failure_rate,
        &mut state.ids.job_rng(seq),
    );
    plan.origin = Some(origin);
    let webhook_url = submit
        .webhook_url
        .or_else(|| state.settings.webhook_url.clone());
    let now = rfc3339(Utc::now());
    let response = SubmitResponse {
        id: id.clone(),
        job_id: id.clone(),
        status: JobStatus::Pending,
        app: submit.app.clone(),
        created_at: now.clone(),
    };
    let response_json = serde_json::to_string(&response).map_err(ApiError::internal)?;
    let row = JobRow {
        seq,
        id: id.clone(),
        tenant: tenant.id.clone(),
        tenant_mask: tenant.mask.clone(),
        app: submit.app,
        status: JobStatus::Pending,
        stage: None,
        metadata: submit.metadata.to_string(),
        input: submit.input.to_string(),
        plan: serde_json::to_string(&plan).map_err(ApiError::internal)?,
        webhook_url,
        webhook_headers: Headers::from_map(&submit.webhook_headers),
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
    let idem = idem_key.map(|key| IdemRecord {
        key,
        body_hash: hex::encode(Sha256::digest(&raw)),
        response: response_json.clone(),
    });
    let mut active = ActiveJob::new(&row, plan, &submit.metadata);
    let mut row = row;
    // Stages that take no time and nothing holding the job: it runs to its
    // end now, and its row is written already ended, with its webhook
    // delivery, in the same transaction: one write and one commit per job.
    let (ended, delivery) = match active.instant().then(|| active.run_at_once(&state.ids)) {
        Some(e) => {
            row.apply(e.progress);
            (Some(e.status), e.delivery)
        }
        None => (None, None),
    };
    // Steady: a forward jump of the system clock does not expire keys.
    let now_unix = crate::clock::now().timestamp();
    let (outcome, delivery) = state
        .store
        .write(move |c| {
            let outcome = store::insert_job(c, &row, idem.as_ref(), now_unix)?;
            if let (SubmitOutcome::Created, Some(d)) = (&outcome, &delivery) {
                store::insert_delivery(c, d)?;
            }
            Ok((outcome, delivery))
        })
        .await?;
    match outcome {
        SubmitOutcome::Created => {
            state
                .metrics
                .submits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.metrics.job_entered(JobStatus::Pending);
            match ended {
                Some(status) => {
                    state.metrics.job_entered(JobStatus::Running);
                    state.metrics.job_entered(status);
                    if let Some(d) = delivery {
                        state.engine.deliver(d);
                    }
                }
                None => state.engine.submit(active),
            }
            Ok(HttpResponse::Created()
                .content_type("application/json")
                .body(response_json))
        }
        SubmitOutcome::Replayed(original) => {
            state
                .metrics
                .submits_replayed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(HttpResponse::Created()
                .insert_header((h::IDEMPOTENT_REPLAYED, "true"))
                .content_type("application/json")
                .body(original))
        }
        SubmitOutcome::KeyReused => Err(ApiError::IdempotencyKeyReused),
    }
}

/// The tenant's job, or 404 exactly as if it did not exist.
async fn own_job(state: &AppState, tenant: &Tenant, id: String) -> Result<JobRow, ApiError> {
    let not_found = ApiError::NotFound(format!("no job `{id}`"));
    match state.store.read(move |c| store::get_job(c, &id)).await? {
        Some(row) if row.tenant == tenant.id => Ok(row),
        _ => Err(not_found),
    }
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
    // Woken only by this job reaching what is wanted or an end.
    let interest = wait::Interest::Job {
        id: id.clone(),
        statuses: JobStatus::ALL
            .iter()
            .copied()
            .filter(|s| want.reached(*s) || s.is_terminal())
            .collect(),
    };
    let (done, row) = state
        .changes
        .until_or_gone(interest, wait.deadline(), wait::client_gone(&req), || {
            let (state, tenant, id) = (state.clone(), tenant.clone(), id.clone());
            async move {
                let row = own_job(&state, &tenant, id).await?;
                let status = row.status;
                // A job that ended otherwise will never get there: say so now.
                Ok((want.reached(status) || status.is_terminal(), row))
            }
        })
        .await?;
    let view = job_view(&row);
    if done && want.reached(view.status) {
        return Ok(HttpResponse::Ok().json(view));
    }
    if done {
        // Ended otherwise: the wait could never be satisfied, so say so now.
        return Ok(wait::error_with(
            StatusCode::CONFLICT,
            shared::error::codes::CONFLICT,
            format!(
                "job `{id}` ended {} and will never be {}",
                view.status.as_str(),
                q("wait_for").unwrap_or_default()
            ),
            "job",
            &view,
        ));
    }
    Ok(wait::timed_out(
        format!(
            "job `{id}` is still {} after {} ms",
            view.status.as_str(),
            wait.ms
        ),
        "job",
        &view,
    ))
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
    let id = id.into_inner();
    let row = own_job(&state, &tenant, id.clone()).await?;
    let outcome = state.engine.cancel(id.clone(), tenant.id.clone()).await;
    if outcome == Control::NotActive {
        return Err(ApiError::Conflict(format!(
            "job `{id}` is already {} and cannot be cancelled",
            row.status
        )));
    }
    let row = own_job(&state, &tenant, id).await?;
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
