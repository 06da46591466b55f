//! The mock's own admin API under `/_mock/` (not part of Camber): inspection
//! of every tenant's jobs, deliveries and requests; time control; runtime
//! config; reset.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{job_view, page, parse_cursor, parse_limit, parse_status, MAX_LIMIT};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::jobs::job::{Action, Caller};
use crate::journal;
use crate::routes::body::read_body;
use crate::scenario::FailSpec;
use crate::state::AppState;
use crate::store::{self, DeliveryFilter, JobFilter};
use crate::tenant::tenant_id;
use crate::wait::{self, Wait};
use shared::{DeliveryState, WebhookEvent, WebhookState};
use std::sync::Arc;

type Query = web::Query<HashMap<String, String>>;

fn q<'a>(query: &'a Query, k: &str) -> Option<&'a str> {
    query.get(k).map(String::as_str).filter(|s| !s.is_empty())
}

/// `limit` and `wait_ms` / `min_count` of a list. A `min_count` above
/// `limit` raises the page to `min_count` items, so the page can hold what
/// was waited for; both are at most [`MAX_LIMIT`].
fn page_and_wait(query: &Query) -> Result<(usize, Option<Wait>), ApiError> {
    let limit = parse_limit(q(query, "limit"))?;
    let wait = Wait::parse(q(query, "wait_ms"), q(query, "min_count"))?;
    let min_count = wait.map_or(0, |w| w.min_count);
    if min_count > MAX_LIMIT {
        return Err(ApiError::InvalidRequest(format!(
            "`min_count` must be at most {MAX_LIMIT} (one page)"
        )));
    }
    Ok((limit.max(min_count), wait))
}

/// Runs `list` (which answers the page and its `next`) once, or, with
/// `wait_ms`, until the page holds `min_count` items; then answers
/// `{key: items, "next": …}`, or 408 with the items so far.
async fn list_or_wait<F, Fut>(
    req: &HttpRequest,
    state: &AppState,
    wait: Option<Wait>,
    interest: wait::Interest,
    key: &str,
    list: F,
) -> Result<HttpResponse, ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Value>, Option<String>), ApiError>>,
{
    let Some(w) = wait else {
        let (items, next) = list().await?;
        return Ok(HttpResponse::Ok().json(json!({key: items, "next": next})));
    };
    let (done, (items, next)) = state
        .changes
        .until_or_gone(interest, w.deadline(), wait::client_gone(req), || async {
            let page = list().await?;
            Ok((page.0.len() >= w.min_count, page))
        })
        .await?;
    if done {
        return Ok(HttpResponse::Ok().json(json!({key: items, "next": next})));
    }
    Ok(wait::timed_out(
        format!(
            "{} of the {} matching {key} waited for were there within {} ms",
            items.len(),
            w.min_count,
            w.ms
        ),
        key,
        items,
    ))
}

pub async fn jobs(
    req: HttpRequest,
    _: Admin,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (limit, wait) = page_and_wait(&query)?;
    // A raw key or its masked form (what the console shows).
    let tenants = match q(&query, "tenant").map(str::to_owned) {
        None => None,
        Some(t) => Some(
            state
                .store
                .read(move |c| store::tenant_ids_matching(c, &t, &tenant_id(&t)))
                .await?,
        ),
    };
    let search = q(&query, "q").map(str::to_owned);
    if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::InvalidRequest(
            "`q` is at most 200 characters".into(),
        ));
    }
    let filter = Arc::new(JobFilter {
        tenants,
        status: parse_status(q(&query, "status"))?,
        app: q(&query, "app").map(str::to_owned),
        search,
        before_seq: parse_cursor(q(&query, "cursor"))?,
        limit,
    });
    let interest = wait::Interest::Jobs {
        tenants: filter.tenants.clone(),
        app: filter.app.clone(),
        status: filter.status,
    };
    list_or_wait(&req, &state, wait, interest, "jobs", || {
        let (state, filter) = (state.clone(), filter.clone());
        async move {
            let rows = state
                .store
                .read(move |c| store::list_jobs(c, &filter))
                .await?;
            let (rows, next) = page(rows, limit, |r| r.seq);
            Ok((rows.iter().map(admin_view).collect(), next))
        }
    })
    .await
}

/// Cancel, advance, complete or fail, as the admin API asks: the job as
/// committed after it (see `jobs::control`).
pub(crate) async fn control(
    state: &AppState,
    id: String,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let row = crate::jobs::control::control(state, Caller::Admin, id, action).await?;
    Ok(HttpResponse::Ok().json(admin_view(&row)))
}

/// A job view plus its tenant, masked: what the admin API shows of a job.
pub(crate) fn admin_view(row: &store::JobRow) -> Value {
    let mut v = serde_json::to_value(job_view(row)).unwrap_or_default();
    v["tenant"] = Value::String(row.tenant_mask.clone());
    v
}

pub async fn advance(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    control(&state, id.into_inner(), Action::Advance).await
}

/// An optional JSON object body (empty = `T::default()`); it and its
/// `nested` fields must be objects, since serde also reads structs from
/// arrays.
pub(crate) fn optional_object_body<T: serde::de::DeserializeOwned + Default>(
    raw: &[u8],
    what: &str,
    nested: &[&str],
) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    let bad = |e: String| ApiError::InvalidRequest(format!("bad {what} body: {e}"));
    crate::scenario::expect_object(&v, "the body").map_err(bad)?;
    for field in nested {
        if let Some(inner) = v.get(*field).filter(|i| !i.is_null()) {
            crate::scenario::expect_object(inner, &format!("`{field}`")).map_err(bad)?;
        }
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

/// Body of `/complete`, optional: `{"result": {...}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    result: Option<serde_json::Map<String, Value>>,
}

pub async fn complete(
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(&req, payload, state.settings.max_body_bytes).await?;
    let body: CompleteBody = optional_object_body(&raw, "complete", &[])?;
    control(&state, id.into_inner(), Action::Complete(body.result)).await
}

/// Body of `/fail`, all optional: `{"code", "stage", "reason"}` or
/// `{"error": {...}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    code: Option<String>,
    stage: Option<String>,
    reason: Option<String>,
    error: Option<Box<FailBody>>,
}

pub async fn fail(
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(&req, payload, state.settings.max_body_bytes).await?;
    let body: FailBody = optional_object_body(&raw, "fail", &["error"])?;
    let body = match body.error {
        Some(inner) => *inner,
        None => body,
    };
    if let Some(stage) = body.stage.as_deref() {
        crate::scenario::check_stage(stage)
            .map_err(|e| ApiError::InvalidRequest(format!("bad fail body: {e}")))?;
    }
    let spec = FailSpec {
        code: body.code,
        stage: body.stage,
        reason: body.reason,
    };
    control(&state, id.into_inner(), Action::Fail(spec)).await
}

pub(crate) fn delivery_view(d: &store::DeliveryRow, attempts: &[store::AttemptRow]) -> Value {
    json!({
        "id": d.id,
        "job_id": d.job_id,
        "event": d.event,
        "url": d.url,
        "state": WebhookState::of(d.state, d.failures),
        "attempts": attempts.iter().map(|a| json!({
            "n": a.n,
            "at": a.at,
            "status": a.status,
            "latency_ms": a.latency_ms,
            "error": a.error,
            "response_excerpt": a.response_excerpt,
        })).collect::<Vec<_>>(),
        "created_at": d.created_at,
    })
}

pub async fn deliveries(
    req: HttpRequest,
    _: Admin,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (limit, wait) = page_and_wait(&query)?;
    let st = q(&query, "state")
        .map(|s| {
            WebhookState::parse(s)
                .filter(|s| WebhookState::OF_DELIVERY.contains(s))
                .ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "`state` must be one of pending (no failed attempt yet), failing \
                         (an attempt failed, retrying), delivered, dead"
                            .into(),
                    )
                })
        })
        .transpose()?;
    let event = q(&query, "event")
        .map(|e| {
            WebhookEvent::parse(e).ok_or_else(|| {
                ApiError::InvalidRequest("`event` must be job.completed or job.failed".into())
            })
        })
        .transpose()?;
    let filter = Arc::new(DeliveryFilter {
        job_id: q(&query, "job_id").map(str::to_owned),
        state: st,
        event,
        before_seq: parse_cursor(q(&query, "cursor"))?,
        limit,
    });
    let interest = wait::Interest::Deliveries {
        job_id: filter.job_id.clone(),
        // `pending` and `failing` are both stored `pending`: a change of
        // either wakes the wait, which then reads its page again.
        state: filter.state.and_then(WebhookState::stored),
        event: filter.event,
    };
    list_or_wait(&req, &state, wait, interest, "deliveries", || {
        let (state, filter) = (state.clone(), filter.clone());
        async move {
            let rows = state
                .store
                .read(move |c| store::list_deliveries(c, &filter))
                .await?;
            let (rows, next) = page(rows, limit, |(d, _)| d.seq);
            Ok((
                rows.iter().map(|(d, a)| delivery_view(d, a)).collect(),
                next,
            ))
        }
    })
    .await
}

pub async fn redeliver(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let lookup = id.clone();
    let Some(row) = state
        .store
        .read(move |c| store::get_delivery(c, &lookup))
        .await?
    else {
        return Err(ApiError::NotFound(format!("no delivery `{id}`")));
    };
    // What a read shows next: pending again, its failures kept (a
    // finished one gets one manual attempt, see `engine::AttemptKind`).
    let shown = WebhookState::of(DeliveryState::Pending, row.failures);
    state.engine.redeliver(row).await;
    Ok(HttpResponse::Accepted().json(json!({"id": id, "state": shown})))
}

pub async fn requests(
    req: HttpRequest,
    _: Admin,
    query: Query,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (limit, wait) = page_and_wait(&query)?;
    let before = parse_cursor(q(&query, "cursor"))?.map(|c| c as u64);
    let filter = Arc::new(journal_filter(&query)?);
    let page = || state.journal.page(&filter, before, limit);
    let (done, (items, next)) = match wait {
        None => (true, page()),
        Some(w) => {
            state
                .changes
                .until_or_gone(
                    wait::Interest::Requests(filter.clone()),
                    w.deadline(),
                    wait::client_gone(&req),
                    || {
                        let p = page();
                        std::future::ready(Ok((p.0.len() >= w.min_count, p)))
                    },
                )
                .await?
        }
    };
    Ok(requests_page(done.then_some(next).ok_or(wait), &items))
}

/// The journal filter of `GET /_mock/requests`: `method`, `path`, `status`.
fn journal_filter(query: &Query) -> Result<journal::Filter, ApiError> {
    Ok(journal::Filter {
        method: q(query, "method").map(str::to_owned),
        path: q(query, "path")
            .map(journal::PathMatch::parse)
            .transpose()
            .map_err(ApiError::InvalidRequest)?,
        status: q(query, "status")
            .map(|s| {
                s.parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| {
                        ApiError::InvalidRequest(
                            "`status` must be an HTTP status code (100 to 599)".into(),
                        )
                    })
            })
            .transpose()?,
    })
}

/// `{"requests": […], "next": …}` once done (`Ok(next)`), or on a timeout
/// (`Err(wait)`) the error body with `requests` after it; written straight
/// from the entries (no JSON tree of the page).
fn requests_page(
    done: Result<Option<u64>, Option<Wait>>,
    items: &[journal::Entry],
) -> HttpResponse {
    #[derive(serde::Serialize)]
    struct Page<'a> {
        requests: &'a [journal::Entry],
        next: Option<String>,
    }
    #[derive(serde::Serialize)]
    struct TimedOut<'a> {
        error: shared::error::ErrorDetail,
        requests: &'a [journal::Entry],
    }
    match done {
        Ok(next) => HttpResponse::Ok().json(Page {
            requests: items,
            next: next.map(|n| n.to_string()),
        }),
        Err(wait) => {
            let w = wait.expect("only a wait can time out");
            let message = format!(
                "{} of the {} matching request(s) waited for arrived within {} ms",
                items.len(),
                w.min_count,
                w.ms
            );
            let error = shared::ErrorBody::new(shared::error::codes::WAIT_TIMEOUT, message).error;
            HttpResponse::RequestTimeout().json(TimedOut {
                error,
                requests: items,
            })
        }
    }
}

pub async fn reset(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    state.engine.reset().await;
    state.journal.clear();
    HttpResponse::Ok().json(json!({"reset": true}))
}
