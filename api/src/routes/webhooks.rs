//! `POST /internal/webhooks/camber`, where Camber's webhook arrives: the
//! signature is checked over the raw bytes, in constant time, before
//! anything is parsed; the body is read as the shared contract's
//! `WebhookBody`; then ONE call applies Camber's final word, and
//! `store::finish_job`'s transaction alone decides whether it applied, was
//! a duplicate, names an unknown job or another Camber job.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use shared::WebhookBody;

use super::{read_body, AppState};
use crate::camber::{CamberClient, CamberError};
use crate::domain::{JobId, Outcome, Source};
use crate::error::{ApiError, SignatureError};
use crate::metrics::inc;
use crate::store::{Finish, JobRecord};

/// Largest webhook body. Camber's webhooks are small (an id, a status and a
/// result of a few KB); the body is read before its signature can be
/// checked, so an unsigned sender must not make us hold megabytes.
pub const MAX_WEBHOOK_BODY: u64 = 1024 * 1024;

const NO_SUCH_JOB: &str = "no job with this job_id";

fn acknowledged(duplicate: bool) -> HttpResponse {
    HttpResponse::Ok().json(json!({"acknowledged": true, "duplicate": duplicate}))
}

pub async fn camber_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    camber: web::Data<CamberClient>,
) -> Result<HttpResponse, ApiError> {
    let metrics = &state.lifecycle.metrics;
    let result = handle(&req, payload, &state, &camber).await;
    match &result {
        Ok((_, true)) => inc(&metrics.webhooks_duplicate),
        Ok((_, false)) => inc(&metrics.webhooks_applied),
        Err(ApiError::Signature(refused)) => {
            inc(&metrics.webhooks_unauthorized);
            metrics.signatures.refused(
                *refused == SignatureError::Missing,
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
pub fn parse_body(raw: &[u8]) -> Result<WebhookBody, ApiError> {
    let not_an_object = || ApiError::InvalidJson("the body is not a JSON object".into());
    let value: Value = serde_json::from_slice(raw).map_err(|_| not_an_object())?;
    if !value.is_object() {
        return Err(not_an_object());
    }
    let body: WebhookBody = serde_json::from_value(value)
        .map_err(|e| ApiError::InvalidRequest(format!("not a Camber webhook: {e}")))?;
    for (field, v) in [
        ("job_id", &body.job_id),
        ("camber_job_id", &body.camber_job_id),
    ] {
        if v.is_empty() {
            return Err(ApiError::InvalidRequest(format!(
                "`{field}` must be a non-empty string"
            )));
        }
    }
    Ok(body)
}

/// Camber sends `application/json`; a body declared as anything else
/// (`text/plain`, a form) is refused, 415, so that a proxy or sender that
/// changed what the body is cannot have it applied. No `Content-Type` at
/// all is read as JSON.
fn json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let declared = value.to_str().unwrap_or_default();
    let essence = declared.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "the webhook's Content-Type is `{declared}`; Camber sends application/json"
    )))
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    camber: &CamberClient,
) -> Result<(HttpResponse, bool), ApiError> {
    let signature = req
        .headers()
        .get(shared::headers::WEBHOOK_SECRET)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .ok_or(ApiError::Signature(SignatureError::Missing))?;
    let raw = read_body(req, payload, MAX_WEBHOOK_BODY).await?;
    if !shared::signing::verify_hex_any(&state.webhook_secrets, &raw, &signature) {
        return Err(ApiError::Signature(SignatureError::Mismatch));
    }
    state.lifecycle.metrics.signatures.accepted();
    json_content_type(req)?;
    let body = parse_body(&raw)?;
    let outcome = Outcome::try_from(&body).map_err(ApiError::InvalidRequest)?;
    let id = JobId::parse(&body.job_id).ok_or(ApiError::NotFound(NO_SUCH_JOB))?;
    let (known, packaged) = state
        .lifecycle
        .read_for_finish(&id, &body.camber_job_id, &outcome)
        .await?;
    // No Camber id recorded yet: confirmed by our own submit's answer when
    // it is still being committed, else by asking Camber.
    let answered = |j: &JobRecord| (state.lifecycle.answers).says(&j.id, &body.camber_job_id);
    if let Some(job) = known
        .as_ref()
        .filter(|j| j.camber_job_id.is_none() && !answered(j))
    {
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
        Finish::NotFound => Err(ApiError::NotFound(NO_SUCH_JOB)),
        Finish::CamberIdMismatch => Err(ApiError::Conflict(
            "camber_job_id does not match the job's Camber id".into(),
        )),
    }
}

fn not_our_camber_job(why: &str) -> ApiError {
    ApiError::Conflict(format!(
        "camber_job_id is not a Camber job of this api (GET /jobs/{{id}} under its key: {why})"
    ))
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
) -> Result<(), ApiError> {
    match camber.job_view(camber_job_id).await {
        Ok(view)
            if view.metadata.get("job_id").and_then(Value::as_str) == Some(job_id.as_str()) =>
        {
            Ok(())
        }
        Ok(_) => Err(not_our_camber_job(&format!(
            "{camber_job_id} belongs to another job"
        ))),
        Err(CamberError::NotFound) => {
            Err(not_our_camber_job(&format!("{camber_job_id} is unknown")))
        }
        Err(e) => Err(ApiError::Unavailable(format!(
            "cannot confirm camber_job_id with Camber now ({e}); send it again later"
        ))),
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
            matches!(Outcome::try_from(&got), Ok(Outcome::Failed(e)) if e.code == "OCR_FAILURE")
        );
    }

    #[test]
    fn bodies_that_are_not_the_contract_are_refused_with_the_right_code() {
        let not_an_object = |r: Result<WebhookBody, ApiError>| matches!(r, Err(ApiError::InvalidJson(m)) if m == "the body is not a JSON object");
        assert!(not_an_object(parse_body(b"not json")));
        assert!(not_an_object(parse_body(b"[1]")));
        let unknown = br#"{"camber_job_id":"c","job_id":"j","status":"paused","timestamp":"t","result":{"status":"SUCCESS","job_id":"j"}}"#;
        assert!(
            matches!(parse_body(unknown), Err(ApiError::InvalidRequest(m)) if m.contains("paused"))
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
