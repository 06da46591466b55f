//! Liveness, readiness, metrics and the OpenAPI document.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Bytes the readiness probe writes next to the database.
const PROBE_BYTES: usize = 16 * 1024;

/// Ready when a write goes through the store's writer and the database's
/// directory takes a new file. The second catches a full disk that the
/// first may not: SQLite reuses the WAL file's space, so a small write can
/// commit while nothing can grow.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db = state.settings.db.clone();
    if db != ":memory:" {
        let dir = std::path::Path::new(&db)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            );
        web::block(move || probe(&dir))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .map_err(|e| {
                ApiError::Unavailable(format!("the database's directory takes no new data: {e}"))
            })?;
    }
    state
        .store
        .write(crate::store::ping)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(format!(
            "{}# HELP mock_camber_waiting_requests Long-poll requests parked right now (wait_ms, wait_for).\n\
             # TYPE mock_camber_waiting_requests gauge\n\
             mock_camber_waiting_requests {}\n\
             # HELP mock_camber_wait_wakeups_total Parked long-poll requests woken to re-check by a change that can satisfy them.\n\
             # TYPE mock_camber_wait_wakeups_total counter\n\
             mock_camber_wait_wakeups_total {}\n\
             # HELP mock_camber_journal_bytes Memory held by the request journal (roughly; --journal-bytes bounds it).\n\
             # TYPE mock_camber_journal_bytes gauge\n\
             mock_camber_journal_bytes {}\n{}",
            state.metrics.render(),
            state.changes.waiting(),
            state.changes.wakeups(),
            state.journal.bytes(),
            state.store.metrics_text()
        ))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(include_str!("../../openapi.yaml"))
}

fn probe(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".mock-camber-ready-probe");
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&path);
    result
}
