//! What the QA console (`GET /_mock/`) reads beyond the admin lists: the
//! admin session check, the overview's counts and rates, a job's whole
//! story, and a stream of live updates (Server-Sent Events).

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::DateTime;
use futures_util::stream;
use serde_json::{json, Value};
use shared::WebhookState;
use tokio::time::Instant;

use super::admin::{admin_view, control, delivery_view};
use crate::auth::{bearer, Admin};
use crate::engine::shown_headers;
use crate::error::ApiError;
use crate::jobs::job::Action;
use crate::state::AppState;
use crate::store::{self, DeliveryFilter, JobRow};

/// `GET /_mock/session`: whether the daemon wants an admin token and
/// whether the one sent (if any) is it. Always 200, so the console can ask
/// before it has a token without a failed request in the browser's log.
pub async fn session(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let required = state.settings.admin_token.is_some();
    let sent = bearer(&req).is_some();
    let authorized = match &state.settings.admin_token {
        None => true,
        Some(token) => bearer(&req)
            .is_some_and(|given| shared::signing::ct_eq(given.as_bytes(), token.as_bytes())),
    };
    HttpResponse::Ok().json(json!({
        "admin_token_required": required,
        "token_sent": sent,
        "authorized": authorized,
    }))
}

/// The overview strip: jobs by status and deliveries by state (from the
/// store), the webhook queue and active jobs (gauges), rates over the last
/// minute (the daemon's counters), the tenants seen (masked).
async fn stats_value(state: &AppState) -> Result<Value, ApiError> {
    let (counts, tenants) = state
        .store
        .read(|c| Ok((store::counts(c)?, store::tenants(c)?)))
        .await?;
    let mut jobs = serde_json::Map::new();
    let mut total = 0;
    for (status, n) in &counts.jobs {
        jobs.insert(status.as_str().to_owned(), json!(n));
        total += n;
    }
    jobs.insert("total".into(), json!(total));
    let m = &state.metrics;
    use std::sync::atomic::Ordering::Relaxed;
    Ok(json!({
        "jobs": jobs,
        "deliveries": {
            "total": counts.deliveries_total,
            "pending": counts.deliveries_pending,
            "failing": counts.deliveries_failing,
            "dead": counts.deliveries_dead,
            "delivered": counts.deliveries_total
                - counts.deliveries_pending
                - counts.deliveries_failing
                - counts.deliveries_dead,
        },
        "webhook_queue_depth": m.queue_depth.load(Relaxed),
        "active_jobs": m.active_jobs.load(Relaxed),
        "rates": m.rates(),
        "tenants": tenants.iter().map(|t| json!({"tenant": t.mask, "jobs": t.jobs})).collect::<Vec<_>>(),
    }))
}

/// An overview, the change counter it was read at, and when.
pub struct CachedStats {
    version: u64,
    at: Instant,
    value: Value,
}

/// How long an overview read at an unchanged counter stays good: only its
/// rates age.
const STATS_FRESH: Duration = Duration::from_secs(1);

/// The overview as of change `version` (read before calling): shared by
/// every caller that asks at the same counter within a second, so several
/// open consoles woken by one change cost one read of the store.
async fn stats_at(state: &AppState, version: u64) -> Result<Value, ApiError> {
    if let Some(c) = &*state.stats_cache.lock() {
        if c.version == version && c.at.elapsed() < STATS_FRESH {
            return Ok(c.value.clone());
        }
    }
    let value = stats_value(state).await?;
    *state.stats_cache.lock() = Some(CachedStats {
        version,
        at: Instant::now(),
        value: value.clone(),
    });
    Ok(value)
}

/// `GET /_mock/stats`.
pub async fn stats(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let version = state.changes.version();
    Ok(HttpResponse::Ok().json(stats_at(&state, version).await?))
}

async fn find_job(state: &AppState, id: String) -> Result<JobRow, ApiError> {
    let lookup = id.clone();
    state
        .store
        .read(move |c| store::get_job(c, &lookup))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job `{id}`")))
}

/// One stage of a job as its log tells it.
fn timeline(log: &str) -> Vec<Value> {
    let mut stages: Vec<Value> = Vec::new();
    for line in log.lines() {
        let Some((at, what)) = line.split_once(' ') else {
            continue;
        };
        let mut words = what.splitn(2, ' ');
        let (subject, verb) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if subject == "job" {
            continue;
        }
        if verb == "started" {
            stages.push(
                json!({"stage": subject, "started_at": at, "ended_at": null, "outcome": "running"}),
            );
        } else if let Some(s) = stages.iter_mut().rev().find(|s| s["stage"] == subject) {
            s["ended_at"] = json!(at);
            s["outcome"] = json!(if verb.starts_with("failed") {
                "failed"
            } else {
                "finished"
            });
            if let Some(detail) = verb.strip_prefix("failed: ") {
                s["detail"] = json!(detail);
            }
        }
    }
    stages
}

/// The deliveries of one job (with their attempts), all or in one state.
async fn deliveries_of(
    state: &AppState,
    job_id: &str,
    only: Option<WebhookState>,
) -> Result<Vec<(store::DeliveryRow, Vec<store::AttemptRow>)>, ApiError> {
    let filter = DeliveryFilter {
        job_id: Some(job_id.to_owned()),
        state: only,
        limit: super::MAX_LIMIT,
        ..Default::default()
    };
    Ok(state
        .store
        .read(move |c| store::list_deliveries(c, &filter))
        .await?)
}

/// `GET /_mock/jobs/{id}`: the job (as the admin list shows it) with its
/// input, plan and what chose it, stage timeline, log lines, and every
/// delivery with every attempt and the headers each carried.
pub async fn job(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find_job(&state, id.into_inner()).await?;
    let deliveries = deliveries_of(&state, &row.id, None).await?;
    let mut plan: Value = serde_json::to_value(&row.plan).unwrap_or(Value::Null);
    let origin = plan
        .as_object_mut()
        .and_then(|p| p.remove("origin"))
        .unwrap_or(Value::Null);
    let mut view = admin_view(&row);
    view["input"] = row.input.clone();
    view["plan"] = plan;
    view["chosen_by"] = origin;
    view["timeline"] = json!(timeline(&row.log));
    view["log"] = json!(row.log.lines().collect::<Vec<_>>());
    view["deliveries"] = deliveries
        .iter()
        .map(|(d, attempts)| {
            let mut v = delivery_view(d, attempts);
            for (a, shown) in attempts
                .iter()
                .zip(v["attempts"].as_array_mut().into_iter().flatten())
            {
                let ts = DateTime::parse_from_rfc3339(&a.at).map_or(0, |t| t.timestamp());
                let mut headers =
                    shown_headers(&d.id, d.event, a.n as u32, ts, &d.faults, &d.headers);
                mask_caller_headers(&mut headers, &d.headers);
                shown["headers"] = json!(headers);
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /_mock/jobs/{id}/cancel`: as the job's tenant could.
pub async fn cancel(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    control(&state, id.into_inner(), Action::Cancel).await
}

/// `POST /_mock/jobs/{id}/redeliver`: sends every dead delivery of the job
/// again; answers which (none is not an error: nothing was dead).
pub async fn redeliver_dead(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find_job(&state, id.into_inner()).await?;
    let dead = deliveries_of(&state, &row.id, Some(WebhookState::Dead)).await?;
    let mut ids = Vec::with_capacity(dead.len());
    for (d, _) in dead {
        ids.push(d.id.clone());
        state.engine.redeliver(d).await;
    }
    Ok(HttpResponse::Accepted().json(json!({"job_id": row.id, "redelivered": ids})))
}

/// Shortest time between two events of one stream while things change.
const EVENT_GAP: Duration = Duration::from_millis(250);
/// An event at least this often, so rates move and a gone client is seen.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A stream ends after this; the console reconnects.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

struct Feed {
    state: web::Data<AppState>,
    changes: tokio::sync::watch::Receiver<u64>,
    started: Instant,
    last: Option<Instant>,
}

/// `GET /_mock/events`: `text/event-stream` of `stats` events, each the
/// body of `GET /_mock/stats` plus `"version"` (the store's change
/// counter): one at once, then one after each change (at most every
/// 250 ms) or every 2 s. The console re-reads the page it shows when the
/// version moves; nothing is re-fetched on a timer.
pub async fn events(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let feed = Feed {
        changes: state.changes.subscribe(),
        state,
        started: Instant::now(),
        last: None,
    };
    let body = stream::unfold(feed, |mut f| async move {
        if let Some(last) = f.last {
            let closing = f.state.changes.clone();
            let end = f.started + STREAM_LIFETIME;
            tokio::select! {
                () = closing.closed() => return None,
                () = tokio::time::sleep_until(end) => return None,
                _ = tokio::time::timeout_at(last + HEARTBEAT, f.changes.changed()) => {}
            }
            tokio::time::sleep_until(last + EVENT_GAP).await;
        }
        let version = *f.changes.borrow_and_update();
        f.last = Some(Instant::now());
        let event = match stats_at(&f.state, version).await {
            Ok(mut v) => {
                v["version"] = json!(version);
                format!("event: stats\ndata: {v}\n\n")
            }
            Err(e) => {
                if let ApiError::Internal(cause) = &e {
                    log::error!("console event stream: {cause}");
                }
                format!(
                    "event: problem\ndata: {}\n\n",
                    json!({"message": e.to_string()})
                )
            }
        };
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(event)), f))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Every value the caller set in `webhook.headers` is shown masked (its
/// names are free, so any may carry a receiver's credential); the row
/// keeps the real values, which the sender needs.
fn mask_caller_headers(shown: &mut [(String, String)], caller: &crate::store::Headers) {
    const THEIRS: &str = " (the caller's)";
    for (k, v) in caller.iter() {
        let name = k.to_ascii_lowercase();
        if let Some(slot) = shown.iter_mut().find(|(o, _)| *o == name) {
            let masked = crate::journal::mask_secret(v);
            slot.1 = if slot.1.ends_with(THEIRS) {
                format!("{masked}{THEIRS}")
            } else {
                masked
            };
        }
    }
}
