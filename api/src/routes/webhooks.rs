//! `POST /internal/webhooks/camber` (SPEC §6): the signature is checked over
//! the raw bytes, in constant time, before anything is parsed; then the job
//! is found by the body's `job_id` (our id) and Camber's final word applied.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use shared::error::codes;

use super::{error_response, parse_job_id, read_body, AppState, BodyError};
use crate::domain::{Outcome, Source};
use crate::metrics::inc;
use crate::store::{self, Finish, StoreError};

/// Largest webhook body (results can be large).
const MAX_WEBHOOK_BODY: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("missing X-Webhook-Secret")]
    MissingSignature,
    #[error("X-Webhook-Secret does not match the body")]
    BadSignature,
    #[error("{0}")]
    Body(#[from] BodyError),
    #[error("the body is not a JSON object")]
    InvalidJson,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no job with this job_id")]
    NotFound,
    #[error("camber_job_id does not match the job's Camber id")]
    CamberIdMismatch,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => StatusCode::UNAUTHORIZED,
            WebhookError::Body(BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Body(BodyError::Broken(_)) | WebhookError::InvalidJson => {
                StatusCode::BAD_REQUEST
            }
            WebhookError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebhookError::NotFound => StatusCode::NOT_FOUND,
            WebhookError::CamberIdMismatch => StatusCode::CONFLICT,
            WebhookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let code = match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => codes::UNAUTHENTICATED,
            WebhookError::Body(BodyError::TooLarge(_)) => codes::PAYLOAD_TOO_LARGE,
            WebhookError::Body(BodyError::Broken(_)) | WebhookError::InvalidJson => {
                codes::INVALID_JSON
            }
            WebhookError::InvalidRequest(_) => codes::INVALID_REQUEST,
            WebhookError::NotFound => codes::NOT_FOUND,
            WebhookError::CamberIdMismatch => codes::CONFLICT,
            WebhookError::Store(e) => {
                log::error!("webhook route: {e}");
                return error_response(
                    status,
                    codes::INTERNAL,
                    "internal error; see the server log",
                );
            }
        };
        error_response(status, code, self.to_string())
    }
}

fn required_str<'a>(body: &'a Value, field: &str) -> Result<&'a str, WebhookError> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            WebhookError::InvalidRequest(format!("`{field}` must be a non-empty string"))
        })
}

fn acknowledged(duplicate: bool) -> HttpResponse {
    HttpResponse::Ok().json(json!({"acknowledged": true, "duplicate": duplicate}))
}

pub async fn camber_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebhookError> {
    let metrics = &state.lifecycle.metrics;
    let result = handle(&req, payload, &state).await;
    match &result {
        Ok((_, true)) => inc(&metrics.webhooks_duplicate),
        Ok((_, false)) => inc(&metrics.webhooks_applied),
        Err(WebhookError::MissingSignature | WebhookError::BadSignature) => {
            inc(&metrics.webhooks_unauthorized)
        }
        Err(_) => inc(&metrics.webhooks_rejected),
    }
    result.map(|(resp, _)| resp)
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(HttpResponse, bool), WebhookError> {
    let signature = req
        .headers()
        .get(shared::headers::WEBHOOK_SECRET)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .ok_or(WebhookError::MissingSignature)?;
    let raw = read_body(req, payload, MAX_WEBHOOK_BODY).await?;
    if !shared::signing::verify_hex(state.webhook_secret.expose().as_bytes(), &raw, &signature) {
        return Err(WebhookError::BadSignature);
    }

    let body: Value = serde_json::from_slice(&raw).map_err(|_| WebhookError::InvalidJson)?;
    if !body.is_object() {
        return Err(WebhookError::InvalidJson);
    }
    let job_id = required_str(&body, "job_id")?;
    let camber_job_id = required_str(&body, "camber_job_id")?.to_owned();
    let id = parse_job_id(job_id).ok_or(WebhookError::NotFound)?;

    let lookup = id.clone();
    let job = state
        .lifecycle
        .store
        .read(move |c| store::get_job(c, &lookup))
        .await?
        .ok_or(WebhookError::NotFound)?;
    if job
        .camber_job_id
        .as_deref()
        .is_some_and(|stored| stored != camber_job_id)
    {
        return Err(WebhookError::CamberIdMismatch);
    }
    let outcome = match body.get("status").and_then(Value::as_str) {
        Some("success") => Outcome::Completed(
            body.pointer("/result/result")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        Some("failed") => Outcome::Failed(
            body.pointer("/result/error")
                .cloned()
                .unwrap_or_else(|| json!({"code": "UNKNOWN", "stage": null, "details": {}})),
        ),
        other => {
            return Err(WebhookError::InvalidRequest(format!(
                "`status` must be `success` or `failed`, not {}",
                other.map_or("missing".to_owned(), |s| format!("`{s}`"))
            )))
        }
    };
    if job.status.is_terminal() {
        return Ok((acknowledged(true), true));
    }

    match state
        .lifecycle
        .finish(&job, camber_job_id, outcome, Source::Webhook)
        .await?
    {
        Finish::Applied(from) => {
            log::info!(
                "job {id}: {} → {} by webhook",
                from.as_str(),
                job_status_after(&body)
            );
            Ok((acknowledged(false), false))
        }
        Finish::Duplicate => Ok((acknowledged(true), true)),
        Finish::NotFound => Err(WebhookError::NotFound),
        Finish::CamberIdMismatch => Err(WebhookError::CamberIdMismatch),
    }
}

fn job_status_after(body: &Value) -> &'static str {
    if body.get("status").and_then(Value::as_str) == Some("success") {
        "completed"
    } else {
        "failed"
    }
}
