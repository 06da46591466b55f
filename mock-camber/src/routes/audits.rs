//! The receiver audit's admin routes (`audit/`): start one for a job,
//! list them, read one report.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::optional_object_body;
use super::{page, parse_cursor, parse_limit};
use crate::audit::report;
use crate::audit::state::StateRead;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::body::read_body;
use crate::state::AppState;
use crate::store;

/// Body of `POST /_mock/jobs/{id}/audit`, optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditBody {
    /// A template such as `http://api:8000/jobs/{job_id}`.
    state_url: Option<String>,
    /// The JSON pointer of the status in its answer, e.g. `/status`.
    state_pointer: Option<String>,
}

impl AuditBody {
    /// The state read the body asks for (`state_pointer` alone reads
    /// nothing; `state_url` alone reads the whole answer).
    fn state_read(&self) -> Option<StateRead> {
        Some(StateRead {
            url: self.state_url.clone()?,
            pointer: self.state_pointer.clone().unwrap_or_default(),
        })
    }

    fn check(&self) -> Result<(), ApiError> {
        let bad = |m: &str| Err(ApiError::InvalidRequest(format!("bad audit body: {m}")));
        if let Some(url) = &self.state_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
                return bad("`state_url` must be an http(s) URL of at most 2048 bytes");
            }
        }
        if let Some(p) = &self.state_pointer {
            if !(p.is_empty() || p.starts_with('/')) || p.len() > 256 {
                return bad("`state_pointer` must be a JSON pointer (`/status`)");
            }
        }
        Ok(())
    }
}

/// `POST /_mock/jobs/{id}/audit`: 202 with the audit's id.
pub async fn start(
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(&req, payload, state.settings.max_body_bytes).await?;
    let body: AuditBody = optional_object_body(&raw, "audit", &[])?;
    body.check()?;
    let job_id = id.into_inner();
    let audit_id = (state.audits)
        .start(
            &state.store,
            &state.settings,
            job_id.clone(),
            body.state_read(),
        )
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/_mock/audits/{audit_id}")))
        .json(json!({"id": audit_id, "job_id": job_id, "state": "running"})))
}

/// `GET /_mock/audits`: newest first, `limit`, `cursor`, `job_id`.
pub async fn list(
    _: Admin,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = |k: &str| query.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let limit = parse_limit(q("limit"))?;
    let before = parse_cursor(q("cursor"))?;
    let job_id = q("job_id").map(str::to_owned);
    let rows = state
        .store
        .read(move |c| store::list_audits(c, job_id.as_deref(), before, limit))
        .await?;
    let (rows, next) = page(rows, limit, |r| r.seq);
    let audits: Vec<_> = rows.iter().map(report::view).collect();
    Ok(HttpResponse::Ok().json(json!({"audits": audits, "next": next})))
}

/// `GET /_mock/audits/{id}`: one report.
pub async fn get(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let read_id = id.clone();
    let row = state
        .store
        .read(move |c| store::get_audit(c, &read_id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audit {id}")))?;
    Ok(HttpResponse::Ok().json(report::view(&row)))
}
