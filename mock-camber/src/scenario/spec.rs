//! What a user writes: a job's `Scenario` (`metadata.mock`,
//! `X-Mock-Scenario`, a rule's `scenario`) and its `webhook` knobs, as JSON
//! (every knob: docs/curl-tour.md). Its typed effects are in `plan` and
//! `faults`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::faults::{check_content_type, WebhookFault, WebhookFaults};
use crate::jobs::stage::Stage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioError {
    pub code: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookMode {
    #[default]
    Deliver,
    Drop,
    Duplicate,
    Delay,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookScenario {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WebhookMode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::number::opt_whole_u64"
    )]
    pub delay_ms: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::number::opt_whole_u32"
    )]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_signature: Option<bool>,
    /// Send the genuine body with this `Content-Type` instead of
    /// `application/json` (see `WebhookFault::ContentType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Audit the receiver right after the genuine delivery is delivered
    /// (`audit/`, docs/receiver-audit.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditScenario>,
}

/// `webhook.audit`: `true`, or how to read the caller's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuditScenario {
    On(bool),
    With(AuditSpec),
}

/// `webhook.audit` as an object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_pointer: Option<String>,
}

impl AuditScenario {
    /// The audit asked for, if any: `false` asks for none.
    pub fn wanted(&self) -> Option<AuditSpec> {
        match self {
            AuditScenario::On(true) => Some(AuditSpec::default()),
            AuditScenario::On(false) => None,
            AuditScenario::With(spec) => Some(spec.clone()),
        }
    }
}

impl WebhookScenario {
    /// The faults a scenario's `webhook` object asks for. `duplicate`
    /// sends at least twice, `delay` waits 2 s unless `delay_ms` says.
    pub fn faults(&self) -> WebhookFaults {
        let wh = self;
        let mode = wh.mode.unwrap_or_default();
        let mut out = Vec::new();
        if mode == WebhookMode::Drop {
            out.push(WebhookFault::Drop);
        }
        let delay = match mode {
            WebhookMode::Delay => wh.delay_ms.unwrap_or(2000),
            _ => wh.delay_ms.unwrap_or(0),
        };
        if delay > 0 {
            out.push(WebhookFault::Delay(delay));
        }
        let sends = match mode {
            WebhookMode::Duplicate => wh.count.unwrap_or(2).max(2),
            _ => wh.count.unwrap_or(1).max(1),
        };
        if sends > 1 {
            out.push(WebhookFault::Sends(sends));
        }
        if wh.bad_signature == Some(true) {
            out.push(WebhookFault::BadSignature);
        }
        if let Some(ct) = &wh.content_type {
            out.push(WebhookFault::ContentType(ct.clone()));
        }
        WebhookFaults(out)
    }
}

/// What a caller may ask of one job, from `metadata.mock`, `X-Mock-Scenario`,
/// a rule or the defaults (every knob: docs/curl-tour.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ScenarioError>,
    /// An object, as Camber's results are (returned verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Map<String, Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::number::opt_whole_u64"
    )]
    pub stage_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookScenario>,
}

/// Longest simulated stage and webhook delay a scenario (or the runtime
/// config) may ask for: a day. Larger values would overflow due times.
pub const MAX_SCENARIO_MS: u64 = 86_400_000;
/// Most sends of one event a scenario may ask for (`webhook.count`).
pub const MAX_SENDS: u32 = 100;

impl Scenario {
    pub fn parse(v: &Value) -> Result<Self, String> {
        Self::check_shape(v)?;
        let sc: Self = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        sc.check()?;
        Ok(sc)
    }

    /// serde reads a struct from a JSON array too (fields by position);
    /// a scenario and its `error` and `webhook` must be objects.
    pub fn check_shape(v: &Value) -> Result<(), String> {
        expect_object(v, "the scenario")?;
        for field in ["error", "webhook"] {
            match v.get(field) {
                None | Some(Value::Null) | Some(Value::Object(_)) => {}
                Some(_) => return Err(format!("`{field}` must be an object")),
            }
        }
        match v.get("webhook").and_then(|w| w.get("audit")) {
            None | Some(Value::Null | Value::Bool(_) | Value::Object(_)) => Ok(()),
            Some(_) => Err("`webhook.audit` must be true, false or an object".into()),
        }
    }

    /// Range checks serde cannot express.
    pub fn check(&self) -> Result<(), String> {
        let wh = self.webhook.as_ref();
        if let Some(stage) = self.error.as_ref().and_then(|e| e.stage.as_deref()) {
            check_stage(stage)?;
        }
        if self.stage_ms.is_some_and(|ms| ms > MAX_SCENARIO_MS) {
            return Err(format!(
                "`stage_ms` must be at most {MAX_SCENARIO_MS} (a day)"
            ));
        }
        if wh
            .and_then(|w| w.delay_ms)
            .is_some_and(|ms| ms > MAX_SCENARIO_MS)
        {
            return Err(format!(
                "`webhook.delay_ms` must be at most {MAX_SCENARIO_MS} (a day)"
            ));
        }
        if wh
            .and_then(|w| w.count)
            .is_some_and(|n| n == 0 || n > MAX_SENDS)
        {
            return Err(format!("`webhook.count` must be from 1 to {MAX_SENDS}"));
        }
        if let Some(ct) = wh.and_then(|w| w.content_type.as_deref()) {
            check_content_type(ct)?;
        }
        if let Some(spec) = wh
            .and_then(|w| w.audit.as_ref())
            .and_then(AuditScenario::wanted)
        {
            check_audit(&spec)?;
        }
        Ok(())
    }
}

/// `webhook.audit`'s `state_url` (http(s), at most 2048 characters) and
/// `state_pointer` (a JSON pointer, at most 256 characters).
pub fn check_audit(spec: &AuditSpec) -> Result<(), String> {
    if let Some(url) = &spec.state_url {
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.chars().count() > 2048
        {
            return Err("`state_url` must be an http(s) URL of at most 2048 characters".into());
        }
    }
    if let Some(p) = &spec.state_pointer {
        if !(p.is_empty() || p.starts_with('/')) || p.chars().count() > 256 {
            return Err("`state_pointer` must be a JSON pointer (`/status`)".into());
        }
    }
    Ok(())
}

/// A stage an error may name: one of [`Stage::ALL`].
pub fn check_stage(stage: &str) -> Result<(), String> {
    match Stage::parse(stage) {
        Some(_) => Ok(()),
        None => Err(format!(
            "`stage` must be one of {} (got `{stage}`)",
            Stage::ALL.map(Stage::as_str).join(", ")
        )),
    }
}

/// `what` must be a JSON object (serde would also read a struct from an array).
pub fn expect_object(v: &Value, what: &str) -> Result<(), String> {
    if v.is_object() {
        Ok(())
    } else {
        Err(format!("{what} must be a JSON object"))
    }
}
