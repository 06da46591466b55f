//! `PUT /jobs/{id}/upload?expires=…&signature=…`: stores the job's input.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{parse_job_id, read_body, AppState};
use crate::error::ApiError;
use crate::metrics::inc;
use crate::store::{self, StoreError};

/// Why an upload URL is refused (403).
const BAD_SIGNATURE: &str = "the upload URL's signature is missing or wrong";
const EXPIRED: &str = "the upload URL has expired";

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
) -> Result<HttpResponse, ApiError> {
    let params = web::Query::<UploadParams>::from_query(req.query_string())
        .map_err(|_| ApiError::Forbidden(BAD_SIGNATURE))?
        .into_inner();
    let expires = params
        .expires
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or(ApiError::Forbidden(BAD_SIGNATURE))?;
    let signature = params.signature.ok_or(ApiError::Forbidden(BAD_SIGNATURE))?;
    if !state.uploads.verify(path.as_str(), expires, &signature) {
        return Err(ApiError::Forbidden(BAD_SIGNATURE));
    }
    if chrono::Utc::now().timestamp() > expires {
        return Err(ApiError::Forbidden(EXPIRED));
    }
    let id = parse_job_id(&path).ok_or(ApiError::NotFound("no job with this id"))?;

    let lookup = id.clone();
    let job = state
        .lifecycle
        .store
        .read(move |c| store::get_job(c, &lookup))
        .await?
        .ok_or(ApiError::NotFound("no job with this id"))?;
    // Larger than the job's `file_size_bytes`, or unreadable.
    let body = read_body(&req, payload, job.file_size_bytes).await?;

    let artifacts = state.lifecycle.artifacts.clone();
    let write_id = id.clone();
    let size = tokio::task::spawn_blocking(move || artifacts.write_input(&write_id, &body))
        .await
        .map_err(|e| StoreError::Blocking(e.to_string()))?
        .map_err(|e| StoreError::artifacts("writing the input", e))?;
    inc(&state.lifecycle.metrics.uploads);
    Ok(HttpResponse::Ok().json(json!({"job_id": id, "name": "input", "size": size})))
}
