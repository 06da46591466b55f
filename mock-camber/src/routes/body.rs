//! Request bodies of the Camber API: read with a size limit, kept for the
//! request journal, and a submit body validated field by field.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpMessage, HttpRequest};
use serde_json::{json, Value};

use crate::engine::policy::Policy;
use crate::error::ApiError;
use crate::journal::JournalBody;
use crate::scenario::Scenario;

/// Reads the body with `shared::http::read_body`, refusing it as soon as
/// it passes `limit`, and giving up with 408 when it has not all arrived
/// within the body deadline (`--body-timeout`, see
/// [`shared::body_deadline`]); a body that breaks off (a bad chunk) is 400
/// `INVALID_REQUEST`, as on api.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use shared::http::BodyError;
    let timeout = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map_or(std::time::Duration::from_secs(30), |s| {
            s.settings.body_timeout
        });
    shared::http::read_body(req, payload, limit as u64, timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(_) => ApiError::PayloadTooLarge(limit),
            BodyError::Broken(why) => {
                ApiError::BadBody(format!("the body could not be read: {why}"))
            }
            BodyError::TimedOut(deadline) => ApiError::BodyTimeout(deadline),
        })
}

/// A submit body that passed validation.
pub struct Submit {
    pub app: String,
    pub scenario: Option<Scenario>,
    /// Where `scenario` came from: `metadata.mock` or `X-Mock-Scenario`.
    pub scenario_source: &'static str,
    pub webhook_url: Option<String>,
    pub webhook_headers: serde_json::Map<String, Value>,
}

pub fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest(msg.into())
}

impl Submit {
    /// `policy`: where webhooks may go (`--webhook-allow`/`--webhook-deny`),
    /// checked here without DNS and again at send time.
    pub fn parse(
        body: &Value,
        scenario_header: Option<&str>,
        policy: &Policy,
    ) -> Result<Self, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        let app = match obj.get("app") {
            None | Some(Value::Null) => return Err(invalid("`app` is required")),
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(_) => return Err(invalid("`app` must be a non-empty string")),
        };
        // `input` and `metadata` are checked here and left in the body:
        // [`Submit::take_input_and_metadata`] moves them into the job.
        match obj.get("input") {
            None | Some(Value::Null) => return Err(invalid("`input` is required")),
            Some(Value::Object(_)) => {}
            Some(_) => return Err(invalid("`input` must be a JSON object")),
        };
        let no_metadata = json!({});
        let metadata = match obj.get("metadata") {
            None | Some(Value::Null) => &no_metadata,
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(invalid("`metadata` must be a JSON object")),
        };
        let (scenario, scenario_source) = scenario_of(metadata, scenario_header)?;
        let (webhook_url, webhook_headers) = webhook_of(obj.get("webhook"), policy)?;
        Ok(Self {
            app,
            scenario,
            scenario_source,
            webhook_url,
            webhook_headers,
        })
    }

    /// `input` and `metadata` (`{}` when absent or null), moved out of a
    /// body [`Submit::parse`] accepted: the job takes them uncopied.
    pub fn take_input_and_metadata(body: Value) -> (Value, Value) {
        let Value::Object(mut obj) = body else {
            return (json!({}), json!({}));
        };
        let input = obj.remove("input").unwrap_or_else(|| json!({}));
        let metadata = match obj.remove("metadata") {
            Some(v @ Value::Object(_)) => v,
            _ => json!({}),
        };
        (input, metadata)
    }
}

/// The job's scenario and where it came from: `metadata.mock`, else the
/// `X-Mock-Scenario` header (which must be JSON even when the body's wins).
fn scenario_of(
    metadata: &Value,
    scenario_header: Option<&str>,
) -> Result<(Option<Scenario>, &'static str), ApiError> {
    let mut scenario = match metadata.get("mock") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            Scenario::parse(v)
                .map_err(|e| invalid(format!("`metadata.mock` is not a scenario: {e}")))?,
        ),
    };
    let mut scenario_source = "metadata.mock";
    if let Some(raw) = scenario_header {
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| invalid(format!("X-Mock-Scenario is not JSON: {e}")))?;
        // The body's own scenario wins over the header's.
        if scenario.is_none() {
            scenario_source = "X-Mock-Scenario";
            scenario = Some(
                Scenario::parse(&v)
                    .map_err(|e| invalid(format!("X-Mock-Scenario is not a scenario: {e}")))?,
            );
        }
    }
    Ok((scenario, scenario_source))
}

/// `webhook.url` (checked, and let through by `policy`) and
/// `webhook.headers` (valid, never `Host`).
fn webhook_of(
    webhook: Option<&Value>,
    policy: &Policy,
) -> Result<(Option<String>, serde_json::Map<String, Value>), ApiError> {
    match webhook {
        None | Some(Value::Null) => Ok((None, Default::default())),
        Some(Value::Object(w)) => {
            let url = match w.get("url") {
                Some(Value::String(u)) => u.clone(),
                None | Some(Value::Null) => return Err(invalid("`webhook.url` is required")),
                Some(_) => return Err(invalid("`webhook.url` must be a string")),
            };
            check_url(&url)?;
            check_destination(&url, policy)?;
            let headers = match w.get("headers") {
                None | Some(Value::Null) => Default::default(),
                Some(Value::Object(hs)) => {
                    check_headers(hs)?;
                    hs.clone()
                }
                Some(_) => return Err(invalid("`webhook.headers` must be a JSON object")),
            };
            Ok((Some(url), headers))
        }
        Some(_) => Err(invalid("`webhook` must be a JSON object")),
    }
}

/// Each `webhook.headers` entry is a valid HTTP header with a string
/// value, and none is `Host`.
fn check_headers(hs: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    for (k, v) in hs {
        let Value::String(v) = v else {
            return Err(invalid(format!("`webhook.headers.{k}` must be a string")));
        };
        if k.eq_ignore_ascii_case("host") {
            return Err(invalid(format!(
                "`webhook.headers.{k}` may not be set: a webhook's Host \
                 is the host of `webhook.url`"
            )));
        }
        if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
            return Err(invalid(format!(
                "`webhook.headers.{k}` is not a valid HTTP header"
            )));
        }
    }
    Ok(())
}

pub fn check_url(url: &str) -> Result<(), ApiError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .parse::<actix_web::http::Uri>()
            .ok()
            .is_some_and(|u| u.host().is_some_and(|h| !h.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "`webhook.url` must be an absolute http(s) URL (got `{url}`)"
        )))
    }
}

/// `webhook.url`'s host against `--webhook-allow`/`--webhook-deny`, with
/// no DNS lookup (a host name's addresses are checked at send time).
fn check_destination(url: &str, policy: &Policy) -> Result<(), ApiError> {
    if policy.is_open() {
        return Ok(());
    }
    let uri =
        (url.parse::<actix_web::http::Uri>()).map_err(|_| invalid("`webhook.url` is not a URL"))?;
    let host = uri.host().unwrap_or("");
    policy
        .check_host(host)
        .map_err(|why| invalid(format!("`webhook.url` is refused: {why}")))
}

/// Stored in the request so the journal can record what was sent (raw,
/// truncated: see `JournalBody`).
pub fn journal_body(req: &HttpRequest, body: &[u8]) {
    req.extensions_mut().insert(JournalBody::new(body));
}
