//! Shared application state: settings, store, engine handle, runtime config,
//! tenants, journal and metrics.

use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Settings;
use crate::engine::EngineHandle;
use crate::error::ApiError;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::scenario::{CompiledRule, Rule};
use crate::store::Store;
use crate::tenant::{tenant_id, Ids, Tenant};

pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub journal: Journal,
    pub config: Mutex<RuntimeConfig>,
    pub last_seq: Arc<AtomicI64>,
    pub ids: Ids,
    pub tenants: Tenants,
    /// Draws for submit error injection; seeded, so a seeded run injects
    /// errors into the same submits.
    pub submit_rng: Mutex<StdRng>,
}

/// The knobs `GET|PUT /_mock/config` shows and changes.
pub struct RuntimeConfig {
    pub stage_ms: u64,
    pub failure_rate: f64,
    pub submit_error_rate: f64,
    pub latency_ms: u64,
    pub rules: Vec<CompiledRule>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigView {
    pub stage_ms: u64,
    pub failure_rate: f64,
    pub submit_error_rate: f64,
    pub latency_ms: u64,
    pub rules: Vec<Rule>,
}

impl RuntimeConfig {
    pub fn view(&self) -> ConfigView {
        ConfigView {
            stage_ms: self.stage_ms,
            failure_rate: self.failure_rate,
            submit_error_rate: self.submit_error_rate,
            latency_ms: self.latency_ms,
            rules: self.rules.iter().map(|r| r.rule.clone()).collect(),
        }
    }

    /// The first rule matching the submit body, with one use taken off.
    pub fn take_rule(&mut self, body: &Value, tenant: &str) -> Option<crate::scenario::Scenario> {
        let rule = self.rules.iter_mut().find(|r| r.matches(body, tenant))?;
        if let Some(n) = rule.rule.times.as_mut() {
            *n -= 1;
        }
        Some(rule.rule.scenario.clone())
    }
}

/// Parses scenario rules: a JSON list, or `{"rules": [...]}`.
pub fn parse_rules(v: Value) -> Result<Vec<CompiledRule>, String> {
    let list = match v {
        Value::Object(mut m) if m.contains_key("rules") => m.remove("rules").unwrap_or_default(),
        other => other,
    };
    let rules: Vec<Rule> =
        serde_json::from_value(list).map_err(|e| format!("scenario rules: {e}"))?;
    rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| CompiledRule::compile(r).map_err(|e| format!("rule {i}: {e}")))
        .collect()
}

/// Which bearer tokens are tenants.
pub struct Tenants {
    /// No key configured: every non-empty token is its own tenant.
    pub open: bool,
    pub ids: HashSet<String>,
}

impl Tenants {
    pub fn new(keys: &[String]) -> Self {
        let keys: Vec<&String> = keys.iter().filter(|k| !k.trim().is_empty()).collect();
        Self {
            open: keys.is_empty(),
            ids: keys.iter().map(|k| tenant_id(k.trim())).collect(),
        }
    }
}

pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().expect("state");
        std::future::ready(match bearer(req) {
            None => Err(ApiError::Unauthenticated(
                "missing API key: send Authorization: Bearer <key>",
            )),
            Some(key) => {
                let t = Tenant::from_key(key);
                if state.tenants.open || state.tenants.ids.contains(&t.id) {
                    Ok(t)
                } else {
                    Err(ApiError::Unauthenticated("unknown API key"))
                }
            }
        })
    }
}

/// Admission to `/_mock/`: the admin token when one is set.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().expect("state");
        std::future::ready(match &state.settings.admin_token {
            None => Ok(Admin),
            Some(token) => match bearer(req) {
                Some(given) if shared::signing::ct_eq(given.as_bytes(), token.as_bytes()) => {
                    Ok(Admin)
                }
                Some(_) => Err(ApiError::Unauthenticated("wrong admin token")),
                None => Err(ApiError::Unauthenticated(
                    "the admin API needs Authorization: Bearer <admin token>",
                )),
            },
        })
    }
}
