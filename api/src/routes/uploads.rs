//! `PUT /jobs/{id}/upload?expires=…&signature=…`: stores the job's input.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;
use shared::error::codes;

use super::{
    body_error_response, error_response, parse_job_id, read_body, store_error_response, AppState,
    BodyError,
};
use crate::metrics::inc;
use crate::store::{self, StoreError};

const FORBIDDEN: &str = "FORBIDDEN";

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload URL's signature is missing or wrong")]
    BadSignature,
    #[error("the upload URL has expired")]
    Expired,
    #[error("no job with this id")]
    NotFound,
    /// Larger than the job's `file_size_bytes`, or unreadable.
    #[error("{0}")]
    Body(#[from] BodyError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl ResponseError for UploadError {
    fn status_code(&self) -> StatusCode {
        match self {
            UploadError::BadSignature | UploadError::Expired => StatusCode::FORBIDDEN,
            UploadError::NotFound => StatusCode::NOT_FOUND,
            UploadError::Body(e) => e.status(),
            UploadError::Store(e) if e.is_storage_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            UploadError::BadSignature | UploadError::Expired => FORBIDDEN,
            UploadError::NotFound => codes::NOT_FOUND,
            UploadError::Body(e) => return body_error_response(e),
            UploadError::Store(e) => return store_error_response("upload route", e),
        };
        error_response(self.status_code(), code, self.to_string())
    }
}

#[derive(serde::Deserialize)]
struct UploadParams {
    expires: Option<String>,
    signature: Option<String>,
}

/// Signature first (nothing about the job is revealed to a bad URL), then
/// expiry, then the size limit, which is the job's own `file_size_bytes`.
pub async fn upload(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, UploadError> {
    let params = web::Query::<UploadParams>::from_query(req.query_string())
        .map_err(|_| UploadError::BadSignature)?
        .into_inner();
    let expires = params
        .expires
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or(UploadError::BadSignature)?;
    let signature = params.signature.ok_or(UploadError::BadSignature)?;
    if !state.uploads.verify(path.as_str(), expires, &signature) {
        return Err(UploadError::BadSignature);
    }
    if chrono::Utc::now().timestamp() > expires {
        return Err(UploadError::Expired);
    }
    let id = parse_job_id(&path).ok_or(UploadError::NotFound)?;

    let lookup = id.clone();
    let job = state
        .lifecycle
        .store
        .read(move |c| store::get_job(c, &lookup))
        .await?
        .ok_or(UploadError::NotFound)?;
    let body = read_body(&req, payload, job.file_size_bytes)
        .await
        .map_err(UploadError::Body)?;

    let artifacts = state.lifecycle.artifacts.clone();
    let write_id = id.clone();
    let size = tokio::task::spawn_blocking(move || artifacts.write_input(&write_id, &body))
        .await
        .map_err(|e| StoreError::Blocking(e.to_string()))?
        .map_err(|e| StoreError::artifacts("writing the input", e))?;
    inc(&state.lifecycle.metrics.uploads);
    Ok(HttpResponse::Ok().json(json!({"job_id": id, "name": "input", "size": size})))
}
