//! Every route of the daemon, registered from one table so the OpenAPI
//! document can be checked against what is actually served.

pub mod admin;
pub mod audits;
pub mod body;
pub mod health;
pub mod jobs;
pub mod paging;
pub mod runtime;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use shared::{JobStatus, JobView, WebhookState, WebhookView};

use crate::console::{self, assets};
use crate::error::ApiError;
use crate::store::JobRow;

pub use paging::{page, parse_cursor, parse_limit, parse_status, DEFAULT_LIMIT, MAX_LIMIT};

/// (path, method, handler) of every route.
// structure: route table
pub fn routes() -> shared::http::RouteTable {
    vec![
        ("/jobs", Method::POST, web::post().to(jobs::submit)),
        ("/jobs", Method::GET, web::get().to(jobs::list)),
        ("/jobs/{id}", Method::GET, web::get().to(jobs::get)),
        (
            "/jobs/{id}/cancel",
            Method::POST,
            web::post().to(jobs::cancel),
        ),
        ("/jobs/{id}/logs", Method::GET, web::get().to(jobs::logs)),
        ("/healthz", Method::GET, web::get().to(health::healthz)),
        ("/readyz", Method::GET, web::get().to(health::readyz)),
        ("/metrics", Method::GET, web::get().to(health::metrics)),
        ("/openapi.yaml", Method::GET, web::get().to(health::openapi)),
        ("/_mock/", Method::GET, web::get().to(assets::page)),
        (
            "/_mock/assets/{name}",
            Method::GET,
            web::get().to(assets::asset),
        ),
        (
            "/_mock/session",
            Method::GET,
            web::get().to(console::session),
        ),
        ("/_mock/stats", Method::GET, web::get().to(console::stats)),
        ("/_mock/events", Method::GET, web::get().to(console::events)),
        ("/_mock/jobs", Method::GET, web::get().to(admin::jobs)),
        ("/_mock/jobs/{id}", Method::GET, web::get().to(console::job)),
        (
            "/_mock/jobs/{id}/cancel",
            Method::POST,
            web::post().to(console::cancel),
        ),
        (
            "/_mock/jobs/{id}/redeliver",
            Method::POST,
            web::post().to(console::redeliver_dead),
        ),
        (
            "/_mock/jobs/{id}/advance",
            Method::POST,
            web::post().to(admin::advance),
        ),
        (
            "/_mock/jobs/{id}/complete",
            Method::POST,
            web::post().to(admin::complete),
        ),
        (
            "/_mock/jobs/{id}/fail",
            Method::POST,
            web::post().to(admin::fail),
        ),
        (
            "/_mock/jobs/{id}/audit",
            Method::POST,
            web::post().to(audits::start),
        ),
        ("/_mock/audits", Method::GET, web::get().to(audits::list)),
        (
            "/_mock/audits/{id}",
            Method::GET,
            web::get().to(audits::get),
        ),
        (
            "/_mock/deliveries",
            Method::GET,
            web::get().to(admin::deliveries),
        ),
        (
            "/_mock/deliveries/{id}/redeliver",
            Method::POST,
            web::post().to(admin::redeliver),
        ),
        (
            "/_mock/requests",
            Method::GET,
            web::get().to(admin::requests),
        ),
        (
            "/_mock/config",
            Method::GET,
            web::get().to(runtime::get_config),
        ),
        (
            "/_mock/config",
            Method::PUT,
            web::put().to(runtime::put_config),
        ),
        (
            "/_mock/config/validate",
            Method::POST,
            web::post().to(runtime::validate_config),
        ),
        ("/_mock/reset", Method::POST, web::post().to(admin::reset)),
    ]
}

/// Registers the table (`shared::http::configure_routes`): one resource
/// per path, whose other methods answer 405 with the JSON error body and
/// `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    shared::http::configure_routes(cfg, routes(), method_not_allowed);
}

/// 405 with the JSON error body (`configure_routes` adds `Allow`).
fn method_not_allowed(req: &HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.path()
    )))
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Maps extractor errors (query strings, paths) to the contract's body.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest(format!("bad query string: {err}")).into()
}

// ---------------------------------------------------------------- views

pub fn job_view(row: &JobRow) -> JobView {
    let status = row.status;
    JobView {
        id: row.id.clone(),
        job_id: row.id.clone(),
        app: row.app.clone(),
        status,
        stage: row.stage.map(|s| s.as_str().to_owned()),
        metadata: row.metadata.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        started_at: row.started_at.clone(),
        finished_at: row.finished_at.clone(),
        result: row
            .result
            .clone()
            .filter(|_| status == JobStatus::Completed),
        error: row.error.clone().filter(|_| status != JobStatus::Completed),
        webhook: row.webhook_url.as_ref().map(|url| WebhookView {
            url: url.clone(),
            state: match (&row.delivery_state, status.is_terminal()) {
                (Some(s), _) => WebhookState::of(*s, row.delivery_failures),
                (None, true) => WebhookState::Dropped,
                (None, false) => WebhookState::Scheduled,
            },
            attempts: row.delivery_attempts as u32,
        }),
    }
}
