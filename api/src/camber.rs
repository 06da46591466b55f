//! The Camber client: submit a job, read a job back. It speaks only the
//! HTTP contract (base URL + bearer key), so mock-camber and real Camber are
//! the same thing to it. https endpoints go through rustls.
//!
//! `awc::Client` is `!Send`: build one per actix worker / per System thread
//! from a shared `CamberConfig`.

use std::sync::Arc;
use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};
use shared::retry::parse_retry_after;
use shared::{JobView, SubmitRequest, SubmitResponse, WebhookTarget};

use crate::config::Secret;
use crate::domain::Outcome;
use crate::store::JobRecord;

/// Largest Camber response body we read.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Connecting takes at most this long, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct CamberConfig {
    /// Base URL without trailing slash.
    pub endpoint: String,
    pub api_key: Secret,
    pub app: String,
    /// Where Camber should send the webhook: PUBLIC_URL + /internal/webhooks/camber.
    pub callback_url: String,
    pub timeout: Duration,
    /// TLS for https endpoints: the public roots plus `--camber-ca-cert`.
    pub tls: Arc<rustls::ClientConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum CamberError {
    /// Down, timed out, 5xx or 429: worth another try.
    #[error("Camber is unavailable: {reason}")]
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Any other 4xx: trying again would give the same answer.
    #[error("Camber rejected the request with {status}: {message}")]
    Rejected { status: u16, message: String },
    /// 2xx with a body we cannot understand.
    #[error("Camber sent an unexpected response: {0}")]
    BadResponse(String),
    /// The job does not exist on Camber (a 404 to GET /jobs/{id}).
    #[error("Camber does not know this job")]
    NotFound,
}

/// A Camber job as a poll sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteState {
    Running,
    Finished(Outcome),
}

pub struct CamberClient {
    http: awc::Client,
    cfg: Arc<CamberConfig>,
}

impl CamberClient {
    pub fn new(cfg: Arc<CamberConfig>) -> Self {
        let connector = awc::Connector::new()
            .rustls_0_23(cfg.tls.clone())
            .timeout(cfg.timeout.min(MAX_CONNECT_TIMEOUT));
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(cfg.timeout)
            .disable_redirects()
            .finish();
        Self { http, cfg }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.cfg.endpoint, path)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.cfg.api_key.expose())
    }

    /// The body api sends to Camber's `POST /jobs` (the shared
    /// `SubmitRequest`): `input` flat, so a mock rule on `/input/filename`
    /// matches.
    pub fn submit_body(&self, job: &JobRecord) -> SubmitRequest {
        SubmitRequest {
            app: self.cfg.app.clone(),
            input: json!({
                "job_id": job.id,
                "portal_schema_name": job.portal_schema_name,
                "filename": job.filename,
                "mime_type": job.mime_type,
                "file_size_bytes": job.file_size_bytes,
            }),
            metadata: Some(json!({"job_id": job.id})),
            webhook: Some(WebhookTarget {
                url: self.cfg.callback_url.clone(),
                headers: Default::default(),
            }),
        }
    }

    /// `POST /jobs` with `Idempotency-Key` = our id, so a retry after a lost
    /// answer gets the same Camber job back. Returns the Camber id.
    pub async fn submit(&self, job: &JobRecord) -> Result<String, CamberError> {
        let body = self.submit_body(job);
        let res = self
            .http
            .post(self.url("/jobs"))
            .insert_header(("Authorization", self.bearer()))
            .insert_header((shared::headers::IDEMPOTENCY_KEY, job.id.as_str()))
            .send_json(&body)
            .await;
        let (status, headers_retry, bytes) = read_response(res).await?;
        if !status.is_success() {
            return Err(classify(status, headers_retry, &bytes));
        }
        let answer: SubmitResponse = serde_json::from_slice(&bytes).map_err(|e| {
            CamberError::BadResponse(format!("submit answer is not a Camber job: {e}"))
        })?;
        answer
            .camber_id()
            .map(str::to_owned)
            .ok_or_else(|| CamberError::BadResponse("submit answer has no `id`".into()))
    }

    /// `GET /jobs/{id}` mapped to what the api cares about.
    pub async fn job_state(&self, camber_job_id: &str) -> Result<RemoteState, CamberError> {
        self.job_view(camber_job_id).await.map(|v| remote_state(&v))
    }

    /// `GET /jobs/{id}` under this api's key: Camber scopes it to our
    /// tenant, so another tenant's job is `NotFound`.
    pub async fn job_view(&self, camber_job_id: &str) -> Result<JobView, CamberError> {
        let res = self
            .http
            .get(self.url(&format!("/jobs/{camber_job_id}")))
            .insert_header(("Authorization", self.bearer()))
            .send()
            .await;
        let (status, retry_after, bytes) = read_response(res).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(CamberError::NotFound);
        }
        if !status.is_success() {
            return Err(classify(status, retry_after, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CamberError::BadResponse(format!("not a Camber job view: {e}")))
    }
}

/// A job view's state: terminal statuses become an outcome.
pub fn remote_state(view: &JobView) -> RemoteState {
    match Outcome::from_view(view) {
        Some(outcome) => RemoteState::Finished(outcome),
        None => RemoteState::Running,
    }
}

async fn read_response<S>(
    res: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
) -> Result<(StatusCode, Option<Duration>, actix_web::web::Bytes), CamberError>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let mut res = res.map_err(|e| CamberError::Unavailable {
        reason: e.to_string(),
        retry_after: None,
    })?;
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let bytes =
        res.body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| CamberError::Unavailable {
                reason: format!("reading the answer: {e}"),
                retry_after: None,
            })?;
    Ok((status, retry_after, bytes))
}

fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> CamberError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        CamberError::Unavailable {
            reason: format!("{status}: {message}"),
            retry_after,
        }
    } else {
        CamberError::Rejected {
            status: status.as_u16(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(v: Value) -> JobView {
        serde_json::from_value(v).expect("a job view, read leniently")
    }

    #[test]
    fn terminal_views_become_outcomes() {
        let done = view(json!({"status": "completed", "result": {"a": 1}}));
        assert_eq!(
            remote_state(&done),
            RemoteState::Finished(Outcome::Completed(json!({"a": 1})))
        );
        let failed =
            view(json!({"status": "failed", "error": {"code": "OCR_FAILURE", "stage": "OCR"}}));
        assert!(
            matches!(remote_state(&failed), RemoteState::Finished(Outcome::Failed(e)) if e.code == "OCR_FAILURE")
        );
        let cancelled = view(json!({"status": "cancelled"}));
        assert!(
            matches!(remote_state(&cancelled), RemoteState::Finished(Outcome::Failed(e)) if e.code == "CANCELLED")
        );
        assert_eq!(
            remote_state(&view(json!({"status": "running", "unknown": "ignored"}))),
            RemoteState::Running
        );
        assert!(serde_json::from_value::<JobView>(json!({"status": "paused"})).is_err());
    }

    #[test]
    fn server_errors_and_429_are_retryable_other_4xx_are_not() {
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, b""),
            CamberError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(1)),
                b""
            ),
            CamberError::Unavailable {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, br#"{"error":{"code":"UNAUTHENTICATED","message":"bad key"}}"#),
            CamberError::Rejected { status: 401, message } if message == "bad key"
        ));
    }
}
