//! `POST /internal/webhooks/camber`, where Camber's webhook arrives: the
//! signature is checked over the raw bytes, in constant time, before
//! anything is parsed; the body is read as the shared contract's
//! `WebhookBody`; then ONE call applies Camber's final word, and
//! `store::finish_job`'s transaction alone decides whether it applied, was
//! a duplicate, names an unknown job or another Camber job.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use shared::error::codes;
use shared::WebhookBody;

use super::{
    body_error_response, error_response, read_body, store_error_response, AppState, BodyError,
};
use crate::camber::{CamberClient, CamberError};
use crate::domain::{JobId, Outcome, Source};
use crate::metrics::inc;
use crate::store::{Finish, StoreError};

/// Largest webhook body. Camber's webhooks are small (an id, a status and a
/// result of a few KB); the body is read before its signature can be
/// checked, so an unsigned sender must not make us hold megabytes.
pub const MAX_WEBHOOK_BODY: u64 = 1024 * 1024;

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
    #[error("camber_job_id is not a Camber job of this api (GET /jobs/{{id}} under its key: {0})")]
    NotOurCamberJob(String),
    #[error("cannot confirm camber_job_id with Camber now ({0}); send it again later")]
    CannotConfirm(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => StatusCode::UNAUTHORIZED,
            WebhookError::Body(e) => e.status(),
            WebhookError::InvalidJson => StatusCode::BAD_REQUEST,
            WebhookError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebhookError::NotFound => StatusCode::NOT_FOUND,
            WebhookError::CamberIdMismatch | WebhookError::NotOurCamberJob(_) => {
                StatusCode::CONFLICT
            }
            WebhookError::CannotConfirm(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Store(e) if e.is_storage_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => codes::UNAUTHENTICATED,
            WebhookError::Body(e) => return body_error_response(e),
            WebhookError::InvalidJson => codes::INVALID_JSON,
            WebhookError::InvalidRequest(_) => codes::INVALID_REQUEST,
            WebhookError::NotFound => codes::NOT_FOUND,
            WebhookError::CamberIdMismatch | WebhookError::NotOurCamberJob(_) => codes::CONFLICT,
            WebhookError::CannotConfirm(_) => codes::SERVICE_UNAVAILABLE,
            WebhookError::Store(e) => return store_error_response("webhook route", e),
        };
        error_response(self.status_code(), code, self.to_string())
    }
}

fn acknowledged(duplicate: bool) -> HttpResponse {
    HttpResponse::Ok().json(json!({"acknowledged": true, "duplicate": duplicate}))
}

pub async fn camber_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    camber: web::Data<CamberClient>,
) -> Result<HttpResponse, WebhookError> {
    let metrics = &state.lifecycle.metrics;
    let result = handle(&req, payload, &state, &camber).await;
    match &result {
        Ok((_, true)) => inc(&metrics.webhooks_duplicate),
        Ok((_, false)) => inc(&metrics.webhooks_applied),
        Err(e @ (WebhookError::MissingSignature | WebhookError::BadSignature)) => {
            inc(&metrics.webhooks_unauthorized);
            metrics.signatures.refused(
                matches!(e, WebhookError::MissingSignature),
                crate::metrics::monotonic_ms(),
            );
        }
        Err(_) => inc(&metrics.webhooks_rejected),
    }
    result.map(|(resp, _)| resp)
}

/// The body as the contract's `WebhookBody`: not JSON (or not an object)
/// is 400 `INVALID_JSON`; JSON that is not the contract (a missing field,
/// an unknown `status`) is 422 naming what is wrong. Unknown fields are
/// ignored, as real Camber may add some.
pub fn parse_body(raw: &[u8]) -> Result<WebhookBody, WebhookError> {
    let value: Value = serde_json::from_slice(raw).map_err(|_| WebhookError::InvalidJson)?;
    if !value.is_object() {
        return Err(WebhookError::InvalidJson);
    }
    let body: WebhookBody = serde_json::from_value(value)
        .map_err(|e| WebhookError::InvalidRequest(format!("not a Camber webhook: {e}")))?;
    for (field, v) in [
        ("job_id", &body.job_id),
        ("camber_job_id", &body.camber_job_id),
    ] {
        if v.is_empty() {
            return Err(WebhookError::InvalidRequest(format!(
                "`{field}` must be a non-empty string"
            )));
        }
    }
    Ok(body)
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    camber: &CamberClient,
) -> Result<(HttpResponse, bool), WebhookError> {
    let signature = req
        .headers()
        .get(shared::headers::WEBHOOK_SECRET)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .ok_or(WebhookError::MissingSignature)?;
    let raw = read_body(req, payload, MAX_WEBHOOK_BODY).await?;
    if !shared::signing::verify_hex_any(&state.webhook_secrets, &raw, &signature) {
        return Err(WebhookError::BadSignature);
    }
    state.lifecycle.metrics.signatures.accepted();
    let body = parse_body(&raw)?;
    let outcome = Outcome::try_from(&body).map_err(WebhookError::InvalidRequest)?;
    let id = JobId::parse(&body.job_id).ok_or(WebhookError::NotFound)?;
    let (known, packaged) = state
        .lifecycle
        .read_for_finish(&id, &body.camber_job_id, &outcome)
        .await?;
    if let Some(job) = known.as_ref().filter(|j| j.camber_job_id.is_none()) {
        confirm_camber_job(camber, &job.id, &body.camber_job_id).await?;
    }
    let to = outcome.status();
    match state
        .lifecycle
        .finish(
            &id,
            known.as_ref(),
            packaged,
            body.camber_job_id,
            outcome,
            Source::Webhook,
        )
        .await?
    {
        Finish::Applied(from) => {
            log::info!("job {id}: {} → {} by webhook", from.as_str(), to.as_str());
            Ok((acknowledged(false), false))
        }
        Finish::Duplicate => Ok((acknowledged(true), true)),
        Finish::NotFound => Err(WebhookError::NotFound),
        Finish::CamberIdMismatch => Err(WebhookError::CamberIdMismatch),
    }
}

/// A webhook for a job with no recorded Camber id (its submit answer has
/// not arrived yet) names a Camber id we cannot check against our own
/// record. Every tenant of a shared Camber (or mock) may sign with the same
/// secret, so the id is confirmed with Camber itself, under this api's key:
/// the job must be ours (tenant-scoped: another tenant's is a 404) and
/// carry our job id in its metadata.
async fn confirm_camber_job(
    camber: &CamberClient,
    job_id: &JobId,
    camber_job_id: &str,
) -> Result<(), WebhookError> {
    match camber.job_view(camber_job_id).await {
        Ok(view)
            if view.metadata.get("job_id").and_then(Value::as_str) == Some(job_id.as_str()) =>
        {
            Ok(())
        }
        Ok(_) => Err(WebhookError::NotOurCamberJob(format!(
            "{camber_job_id} belongs to another job"
        ))),
        Err(CamberError::NotFound) => Err(WebhookError::NotOurCamberJob(format!(
            "{camber_job_id} is unknown"
        ))),
        Err(e) => Err(WebhookError::CannotConfirm(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{WebhookBody, WebhookError as CamberError};

    /// The bytes the mock sends parse into the shared type and back to the
    /// same bytes: renaming a wire field breaks this test in api too.
    #[test]
    fn the_mocks_webhook_bytes_round_trip_through_the_shared_type() {
        let sent = WebhookBody::failure(
            "cmb_1",
            "0190a4f2-0000-7000-8000-000000000001",
            "2026-01-26T10:30:45.123456".into(),
            CamberError {
                code: "OCR_FAILURE".into(),
                stage: "OCR".into(),
                details: json!({"reason": "No text detected in image"}),
            },
        );
        let bytes = sent.to_bytes();
        let got = parse_body(&bytes).unwrap();
        assert_eq!(got, sent);
        assert_eq!(got.to_bytes(), bytes);
        assert!(
            matches!(Outcome::try_from(&got), Ok(Outcome::Failed(e)) if e["code"] == "OCR_FAILURE")
        );
    }

    #[test]
    fn bodies_that_are_not_the_contract_are_refused_with_the_right_code() {
        assert!(matches!(
            parse_body(b"not json"),
            Err(WebhookError::InvalidJson)
        ));
        assert!(matches!(parse_body(b"[1]"), Err(WebhookError::InvalidJson)));
        let unknown = br#"{"camber_job_id":"c","job_id":"j","status":"paused","timestamp":"t","result":{"status":"SUCCESS","job_id":"j"}}"#;
        assert!(
            matches!(parse_body(unknown), Err(WebhookError::InvalidRequest(m)) if m.contains("paused"))
        );
        let extra = br#"{"camber_job_id":"c","job_id":"j","status":"success","timestamp":"t","result":{"status":"SUCCESS","job_id":"j","result":{"a":1}},"new_field":true}"#;
        assert!(parse_body(extra).is_ok(), "unknown fields are ignored");
        let mixed = br#"{"camber_job_id":"c","job_id":"j","status":"success","timestamp":"t","result":{"status":"FAILED","job_id":"j"}}"#;
        let body = parse_body(mixed).unwrap();
        assert!(
            Outcome::try_from(&body).is_err(),
            "status and result.status disagree"
        );
    }
}
