//! The HTTP surface: ONE table of (path, method, handler) that `configure`
//! registers and a test compares with `openapi.yaml`; the shared app state;
//! bounded body reads. Errors are `crate::error::ApiError`.

pub mod health;
pub mod jobs;
pub mod uploads;
pub mod webhooks;

use std::time::Duration;

use actix_web::http::Method;
use actix_web::{web, HttpRequest};
use shared::http::RouteTable;

use crate::config::Secret;
use crate::domain::JobId;
use crate::error::{self, ApiError};
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
// structure: route table
pub fn routes() -> RouteTable {
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

/// Registers `routes()` (`shared::http::configure_routes`): a known path
/// with another method answers 405 with `Allow`, an unknown path 404, both
/// as JSON.
pub fn configure(cfg: &mut web::ServiceConfig) {
    shared::http::configure_routes(cfg, routes(), error::method_not_allowed);
    cfg.default_service(web::to(error::not_found));
}

/// The deadline for a whole request body (`--body-timeout`), stored as
/// app data; see [`shared::body_deadline`] for how larger bodies get more.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Reads a request body with `shared::http::read_body`: refused as soon as
/// it passes `limit` bytes, 408 when it has not all arrived within its
/// deadline (`BodyTimeout`).
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: u64,
) -> Result<web::Bytes, ApiError> {
    let timeout = req
        .app_data::<BodyTimeout>()
        .map_or(Duration::from_secs(30), |t| t.0);
    Ok(shared::http::read_body(req, payload, limit, timeout).await?)
}

/// Parses a path id as one of our UUIDs (anything else names no job).
pub fn parse_job_id(raw: &str) -> Option<JobId> {
    JobId::parse(raw)
}
