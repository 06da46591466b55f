//! The HTTP surface: ONE table of (path, method, handler) that `configure`
//! registers and a test compares with `openapi.yaml`; the shared app state;
//! JSON error responses in the contract's shape.

pub mod health;
pub mod jobs;
pub mod uploads;
pub mod webhooks;

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse, Route};
use futures_util::StreamExt;
use shared::error::codes;
use shared::ErrorBody;

use crate::config::Secret;
use crate::domain::JobId;
use crate::lifecycle::Lifecycle;
use crate::uploads::UploadSigner;

/// Shared by every worker (per-worker state, the Camber client, is separate).
pub struct AppState {
    pub lifecycle: Lifecycle,
    /// PUBLIC_URL without trailing slash.
    pub public_url: String,
    pub max_file_bytes: u64,
    /// The current secret first; a webhook verifying under any is accepted.
    pub webhook_secrets: Vec<Secret>,
    pub uploads: UploadSigner,
    pub upload_ttl: Duration,
}

/// Every route of the service. `configure` registers exactly these, and
/// `openapi.yaml` documents exactly these (a test holds the two together).
pub fn routes() -> Vec<(&'static str, Method, Route)> {
    vec![
        ("/jobs", Method::POST, web::post().to(jobs::create_job)),
        ("/jobs", Method::GET, web::get().to(jobs::list_jobs)),
        ("/jobs/{id}", Method::GET, web::get().to(jobs::get_job)),
        (
            "/jobs/{id}/upload",
            Method::PUT,
            web::put().to(uploads::upload),
        ),
        (
            "/jobs/{id}/artifacts/{name}",
            Method::GET,
            web::get().to(jobs::download_artifact),
        ),
        (
            "/internal/webhooks/camber",
            Method::POST,
            web::post().to(webhooks::camber_webhook),
        ),
        ("/healthz", Method::GET, web::get().to(health::healthz)),
        ("/readyz", Method::GET, web::get().to(health::readyz)),
        ("/metrics", Method::GET, web::get().to(health::metrics)),
        ("/openapi.yaml", Method::GET, web::get().to(health::openapi)),
    ]
}

/// Registers `routes()`, one resource per path; a known path with another
/// method answers 405 and an unknown path 404, both as JSON.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut by_path: Vec<(&'static str, Vec<Method>, Vec<Route>)> = Vec::new();
    for (path, method, route) in routes() {
        match by_path.iter_mut().find(|(p, _, _)| *p == path) {
            Some((_, methods, list)) => {
                methods.push(method);
                list.push(route);
            }
            None => by_path.push((path, vec![method], vec![route])),
        }
    }
    for (path, methods, list) in by_path {
        let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        let allow = allow.join(", ");
        let resource = list
            .into_iter()
            .fold(web::resource(path), |res, route| res.route(route))
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(&allow) }
            }));
        cfg.service(resource);
    }
    cfg.default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    error_response(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route")
}

/// 405 with the JSON error body and the `Allow` header (RFC 9110).
fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut res = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "this route does not accept that method",
    );
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(allow) {
        res.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    res
}

/// The contract's error body with `status`.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody::new(code, message))
}

/// The one mapping of the failures every route shares to responses: a body
/// that cannot be read is 413 `PAYLOAD_TOO_LARGE` or 400 `INVALID_REQUEST`
/// (every route; a body that is read but is not JSON is `INVALID_JSON`),
/// and a store failure is a logged 500 `INTERNAL` that says nothing more.
pub fn body_error_response(e: &BodyError) -> HttpResponse {
    match e {
        BodyError::TooLarge(_) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            e.to_string(),
        ),
        BodyError::Broken(_) => error_response(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            e.to_string(),
        ),
        BodyError::TimedOut(_) => {
            let mut res = error_response(
                StatusCode::REQUEST_TIMEOUT,
                codes::REQUEST_TIMEOUT,
                e.to_string(),
            );
            // The rest of the body may still come: close the connection.
            res.head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            res
        }
    }
}

/// See [`body_error_response`].
pub fn store_error_response(route: &str, e: &crate::store::StoreError) -> HttpResponse {
    log::error!("{route}: {e}");
    if e.is_storage_unavailable() {
        // Nothing was acknowledged; the client may try again shortly.
        let mut r = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::SERVICE_UNAVAILABLE,
            "storage unavailable (disk full or read-only); nothing was saved, try again",
        );
        r.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("1"),
        );
        return r;
    }
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL,
        "internal error; see the server log",
    )
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the body could not be read: {0}")]
    Broken(String),
    #[error("the request body did not arrive within {}s", .0.as_secs_f64())]
    TimedOut(Duration),
}

/// The deadline for a whole request body (`--body-timeout`), stored as
/// app data; see [`shared::body_deadline`] for how larger bodies get more.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Reads a request body, refusing it as soon as it passes `limit` bytes
/// (and before reading anything when Content-Length already says so), and
/// giving up with 408 when it has not all arrived within its deadline.
pub async fn read_body(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    limit: u64,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let timeout = req
        .app_data::<BodyTimeout>()
        .map_or(Duration::from_secs(30), |t| t.0);
    let deadline = shared::body_deadline(timeout, declared.unwrap_or(limit));
    match tokio::time::timeout(deadline, read_all(payload, declared, limit)).await {
        Ok(read) => read,
        Err(_) => Err(BodyError::TimedOut(deadline)),
    }
}

async fn read_all(
    mut payload: web::Payload,
    declared: Option<u64>,
    limit: u64,
) -> Result<web::Bytes, BodyError> {
    // Never reserve what a header merely claims: grow with what arrives.
    let mut body =
        web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit).min(64 * 1024) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a path id as one of our UUIDs (anything else names no job).
pub fn parse_job_id(raw: &str) -> Option<JobId> {
    JobId::parse(raw)
}
