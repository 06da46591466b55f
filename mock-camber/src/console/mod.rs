//! The QA console's server side (`GET /_mock/` and what it reads beyond
//! the admin lists): the admin session check, the overview's counts and
//! rates (`stats`), a job's whole story (`story`), a stream of live updates
//! (Server-Sent Events, `events`), cancel and redeliver-dead, and the page
//! with its embedded assets (`assets`). The route table in `routes` points
//! at these handlers.

pub mod assets;
mod events;
pub mod stats;
mod story;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use shared::WebhookState;

use crate::auth::{bearer, Admin};
use crate::error::ApiError;
use crate::jobs::job::Action;
use crate::routes::admin::control;
use crate::state::AppState;
use crate::store::{self, DeliveryFilter, JobRow};

pub use events::events;
pub use story::job;

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

/// The overview as of change `version` (read before calling): shared by
/// every caller that asks at the same counter within a second, so several
/// open consoles woken by one change cost one read of the store.
async fn stats_at(state: &AppState, version: u64) -> Result<Value, ApiError> {
    if let Some(value) = state.stats_cache.get(version) {
        return Ok(value);
    }
    let (counts, tenants) = state
        .store
        .read(|c| Ok((stats::counts(c)?, store::tenants(c)?)))
        .await?;
    let value = stats::overview(&counts, &tenants, &state.metrics);
    state.stats_cache.put(version, value.clone());
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

/// The deliveries of one job (with their attempts), all or in one state.
async fn deliveries_of(
    state: &AppState,
    job_id: &str,
    only: Option<WebhookState>,
) -> Result<Vec<(store::DeliveryRow, Vec<store::AttemptRow>)>, ApiError> {
    let filter = DeliveryFilter {
        job_id: Some(job_id.to_owned()),
        state: only,
        limit: crate::routes::paging::MAX_LIMIT,
        ..Default::default()
    };
    Ok(state
        .store
        .read(move |c| store::list_deliveries(c, &filter))
        .await?)
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
