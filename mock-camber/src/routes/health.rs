//! Liveness, readiness, metrics and the OpenAPI document.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when a write goes through the store's writer.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .store
        .write(crate::store::ping)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(format!(
            "{}# HELP mock_camber_waiting_requests Long-poll requests parked right now (wait_ms, wait_for).\n\
             # TYPE mock_camber_waiting_requests gauge\n\
             mock_camber_waiting_requests {}\n\
             # HELP mock_camber_journal_bytes Memory held by the request journal (roughly; --journal-bytes bounds it).\n\
             # TYPE mock_camber_journal_bytes gauge\n\
             mock_camber_journal_bytes {}\n",
            state.metrics.render(),
            state.changes.waiting(),
            state.journal.bytes()
        ))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(include_str!("../../openapi.yaml"))
}
