//! `GET|PUT /_mock/config` (the runtime config: stage and injected latency,
//! failure and submit-error rates, scenario rules) and a dry run of a PUT
//! for the console, which shows a config's errors inline before saving it.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::body::read_body;
use crate::scenario::{parse_rules, CompiledRule, MAX_SCENARIO_MS};
use crate::state::AppState;

pub async fn get_config(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.config.lock().view())
}

/// Most injected latency per request: a minute (clients time out long before).
const MAX_LATENCY_MS: u64 = 60_000;

/// A config change that passed validation: only the fields named.
struct Patch {
    stage_ms: Option<u64>,
    latency_ms: Option<u64>,
    failure_rate: Option<f64>,
    submit_error_rate: Option<f64>,
    rules: Option<Vec<CompiledRule>>,
}

/// Validates a whole `PUT /_mock/config` body before anything changes.
fn parse_patch(raw: &[u8]) -> Result<Patch, ApiError> {
    let body: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut fields) = body else {
        return Err(ApiError::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let rate = |name: &str, v: &Value| -> Result<f64, ApiError> {
        v.as_f64()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("`{name}` must be a number from 0 to 1"))
            })
    };
    let ms = |name: &str, v: &Value, max: u64| -> Result<u64, ApiError> {
        v.as_number()
            .and_then(shared::number::whole_u64)
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "`{name}` must be a whole number of ms from 0 to {max}"
                ))
            })
    };
    // Validate everything before changing anything.
    let stage_ms = fields
        .get("stage_ms")
        .map(|v| ms("stage_ms", v, MAX_SCENARIO_MS))
        .transpose()?;
    let latency_ms = fields
        .get("latency_ms")
        .map(|v| ms("latency_ms", v, MAX_LATENCY_MS))
        .transpose()?;
    let failure_rate = fields
        .get("failure_rate")
        .map(|v| rate("failure_rate", v))
        .transpose()?;
    let submit_error_rate = fields
        .get("submit_error_rate")
        .map(|v| rate("submit_error_rate", v))
        .transpose()?;
    let rules = fields
        .remove("rules")
        .map(|v| parse_rules(v).map_err(ApiError::InvalidRequest))
        .transpose()?;
    if let Some(unknown) = fields.keys().find(|k| {
        ![
            "stage_ms",
            "latency_ms",
            "failure_rate",
            "submit_error_rate",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ApiError::InvalidRequest(format!(
            "unknown config field `{unknown}`"
        )));
    }
    Ok(Patch {
        stage_ms,
        latency_ms,
        failure_rate,
        submit_error_rate,
        rules,
    })
}

/// Changes only the fields named; answers the whole new config.
pub async fn put_config(
    req: HttpRequest,
    _: Admin,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(&req, payload, state.settings.max_body_bytes).await?;
    let p = parse_patch(&raw)?;
    let mut c = state.config.lock();
    if let Some(v) = p.stage_ms {
        c.stage_ms = v;
    }
    if let Some(v) = p.latency_ms {
        c.latency_ms = v;
    }
    if let Some(v) = p.failure_rate {
        c.failure_rate = v;
    }
    if let Some(v) = p.submit_error_rate {
        c.submit_error_rate = v;
    }
    if let Some(v) = p.rules {
        c.rules = v;
    }
    Ok(HttpResponse::Ok().json(c.view()))
}

/// `POST /_mock/config/validate`: what `PUT /_mock/config` would say of
/// this body, without changing anything. Always 200 (`{"valid", "error"}`),
/// so the console can check as the user types.
pub async fn validate_config(
    req: HttpRequest,
    _: Admin,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = read_body(&req, payload, state.settings.max_body_bytes).await?;
    Ok(HttpResponse::Ok().json(match parse_patch(&raw) {
        Ok(_) => json!({"valid": true, "error": null}),
        Err(e) => json!({"valid": false, "error": {"code": e.code(), "message": e.to_string()}}),
    }))
}
