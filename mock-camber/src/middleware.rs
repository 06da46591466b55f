//! The one request middleware: every response gets an `X-Request-Id`; the
//! Camber API's requests (not admin, health or metrics) wait out the
//! injected `latency_ms` and go into the request journal with their status.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use chrono::Utc;
use serde_json::Value;
use shared::wire::rfc3339;

use crate::auth::bearer;
use crate::journal::{mask_header, Entry, JournalBody};
use crate::state::AppState;
use crate::tenant::tenant_label;

/// `req_<6 hex of this process><10 hex counter>`: unique per process run.
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        Self {
            prefix: format!("{:06x}", rand::random::<u32>() & 0xff_ffff),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("req_{}{n:010x}", self.prefix)
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// Used with `actix_web::middleware::from_fn`; needs `web::Data<AppState>`
/// and `web::Data<RequestIds>` in the app data.
pub async fn journal_and_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = req
        .app_data::<web::Data<RequestIds>>()
        .expect("RequestIds in app data")
        .next();
    let started = is_api_path(req.path()).then(|| started_entry(&req));
    let mut res = next.call(req).await?;
    if let Some(mut entry) = started {
        let state = res
            .request()
            .app_data::<web::Data<AppState>>()
            .cloned()
            .expect("state");
        let latency = state.config.lock().latency_ms;
        if latency > 0 {
            actix_rt::time::sleep(Duration::from_millis(latency)).await;
        }
        entry.status = res.status().as_u16();
        if let Some(body) = res.request().extensions_mut().remove::<JournalBody>() {
            entry.body = body;
        }
        state.journal.record(entry);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static(shared::headers::REQUEST_ID), v);
    }
    Ok(res)
}

/// Requests to the Camber API go into the journal; admin, health and
/// metrics requests do not.
fn is_api_path(path: &str) -> bool {
    path == "/jobs" || path.starts_with("/jobs/")
}

fn started_entry(req: &ServiceRequest) -> Entry {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes());
            (
                k.as_str().to_owned(),
                Value::String(mask_header(k.as_str(), &v)),
            )
        })
        .collect();
    let path = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    Entry {
        seq: 0,
        at: rfc3339(Utc::now()),
        method: req.method().to_string(),
        path,
        tenant: bearer(req.request()).map(tenant_label),
        headers,
        body: JournalBody::default(),
        status: 0,
    }
}
