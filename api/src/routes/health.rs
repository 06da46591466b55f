//! `/healthz` (process up), `/readyz` (database and artifacts writable), `/metrics`
//! (Prometheus text), `/openapi.yaml` (this service's contract).

use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;
use crate::metrics::REFUSED_IN_A_ROW_WARNING;
use crate::store;

pub const OPENAPI: &str = include_str!("../../openapi.yaml");

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready = a file written and synced in the artifact directory, and a real
/// write committed through the writer thread (a full disk fails both). Still
/// ready, but said under `warnings`: the last webhooks were all refused for
/// their signature (a `WEBHOOK_SECRET` that differs from Camber's).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let artifacts = state.lifecycle.artifacts.clone();
    match web::block(move || artifacts.probe()).await {
        Ok(Ok(())) => {}
        failed => {
            let e = failed.map_or_else(|e| e.to_string(), |r| r.unwrap_err().to_string());
            log::error!("readyz: the artifact directory takes no files: {e}");
            return ApiError::Unavailable("the artifact directory is not writable".into())
                .error_response();
        }
    }
    match state.lifecycle.store.write(store::ping).await {
        Ok(()) => {
            let refused = state.lifecycle.metrics.signatures.refused_in_a_row();
            if refused >= REFUSED_IN_A_ROW_WARNING {
                HttpResponse::Ok().json(json!({
                    "status": "ready",
                    "warnings": [format!(
                        "the last {refused} Camber webhooks were all refused (401): their \
                         X-Webhook-Secret does not verify with this api's WEBHOOK_SECRET; \
                         jobs finish only through the reconciler until the secrets match"
                    )],
                }))
            } else {
                HttpResponse::Ok().json(json!({"status": "ready"}))
            }
        }
        Err(e) => {
            log::error!("readyz: {e}");
            ApiError::Unavailable("the store is not writable".into()).error_response()
        }
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.lifecycle.store.read(store::count_by_status).await {
        Ok(counts) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(state.lifecycle.metrics.render(&counts) + &state.lifecycle.store.metrics_text()),
        Err(e) => ApiError::Internal(format!("metrics: {e}")).error_response(),
    }
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}
