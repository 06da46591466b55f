//! What a job will do: its `Plan` (outcome, timing, webhook faults), fixed
//! at submit from its scenario, and the simulator's own errors.

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::WebhookError;

use super::faults::{WebhookFault, WebhookFaults};
use super::spec::{Outcome, Scenario, WebhookMode, WebhookScenario};
use super::Rule;
use crate::jobs::stage::Stage;

/// Errors the simulator produces on its own, with their stage and reason.
pub const SIMULATED_ERRORS: [(&str, &str, &str); 6] = [
    ("FETCH_FAILED", "FETCH", "Could not download the input file"),
    (
        "FETCH_TIMEOUT",
        "FETCH",
        "Timed out downloading the input file",
    ),
    (
        "DECODE_FAILED",
        "OCR",
        "The input file could not be decoded",
    ),
    ("OCR_FAILURE", "OCR", "No text detected in image"),
    ("OCR_TIMEOUT", "OCR", "Text recognition timed out"),
    (
        "NORMALIZE_FAILED",
        "NORMALIZE",
        "Extracted fields do not fit the schema",
    ),
];

/// The concrete plan of one job, fixed at submit time and stored with it
/// (as JSON in `jobs.plan`, read back by the store's row mapping only).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "StoredPlan")]
pub struct Plan {
    pub outcome: Outcome,
    pub result: Option<Value>,
    pub error: Option<WebhookError>,
    pub stage_ms: u64,
    pub hold: bool,
    /// What is done to its webhook on purpose (drop, delay, sends, and
    /// what the sender alters).
    pub webhook: WebhookFaults,
    /// What chose this plan, recorded at submit (plans stored before
    /// schema v4 lack it).
    pub origin: Option<Origin>,
}

/// A plan as stored: the webhook faults as a list (`webhook_faults`), and
/// beside it the fields plans had before (`webhook_mode`, `delay_ms`,
/// `sends`, `bad_signature`), still written for the console and read from
/// plans stored without the list.
#[derive(Deserialize)]
struct StoredPlan {
    outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<WebhookError>,
    stage_ms: u64,
    hold: bool,
    #[serde(default)]
    webhook_mode: WebhookMode,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    sends: u32,
    #[serde(default)]
    bad_signature: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_faults: Option<WebhookFaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<Origin>,
}

impl From<StoredPlan> for Plan {
    fn from(s: StoredPlan) -> Self {
        let webhook = s.webhook_faults.unwrap_or_else(|| {
            WebhookScenario {
                mode: Some(s.webhook_mode),
                delay_ms: Some(s.delay_ms),
                count: Some(s.sends),
                bad_signature: Some(s.bad_signature),
                ..WebhookScenario::default()
            }
            .faults()
        });
        Self {
            outcome: s.outcome,
            result: s.result,
            error: s.error,
            stage_ms: s.stage_ms,
            hold: s.hold,
            webhook,
            origin: s.origin,
        }
    }
}

/// The mode a scenario would name for these faults (the console shows
/// it): drop, else duplicate, else delay, else deliver.
fn mode_of(faults: &WebhookFaults) -> WebhookMode {
    if faults.dropped() {
        WebhookMode::Drop
    } else if faults.sends() > 1 {
        WebhookMode::Duplicate
    } else if faults.delay_ms() > 0 {
        WebhookMode::Delay
    } else {
        WebhookMode::Deliver
    }
}

/// A plan as it is written: [`StoredPlan`]'s fields, borrowed (a plan is
/// serialised at every submit; a clone of it to serialise cost more than
/// the serialising).
#[derive(Serialize)]
struct StoredPlanRef<'a> {
    outcome: &'a Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a WebhookError>,
    stage_ms: u64,
    hold: bool,
    webhook_mode: WebhookMode,
    delay_ms: u64,
    sends: u32,
    bad_signature: bool,
    webhook_faults: &'a WebhookFaults,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a Origin>,
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredPlanRef {
            outcome: &self.outcome,
            result: self.result.as_ref(),
            error: self.error.as_ref(),
            stage_ms: self.stage_ms,
            hold: self.hold,
            webhook_mode: mode_of(&self.webhook),
            delay_ms: self.webhook.delay_ms(),
            sends: self.webhook.sends(),
            bad_signature: self.webhook.has(&WebhookFault::BadSignature),
            webhook_faults: &self.webhook,
            origin: self.origin.as_ref(),
        }
        .serialize(s)
    }
}

/// Where a job's scenario came from, as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// `metadata.mock`, `X-Mock-Scenario`, `rule`, or `defaults` (no
    /// scenario: the runtime config's stage_ms and failure_rate decided).
    pub source: String,
    /// The rule's position in the config's list when it matched, and the
    /// rule as it was then (the list may have changed since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// The scenario asked for, before defaults were filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// The runtime config's failure rate when the plan was made.
    pub failure_rate: f64,
}

impl Plan {
    /// The stage at whose end the job fails, if it fails.
    pub fn failure_stage(&self) -> Option<Stage> {
        let err = self
            .error
            .as_ref()
            .filter(|_| self.outcome == Outcome::Failure)?;
        Some(Stage::parse(&err.stage).unwrap_or(Stage::Normalize))
    }
}

impl From<&str> for Origin {
    fn from(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            rule_index: None,
            rule: None,
            scenario: None,
            failure_rate: 0.0,
        }
    }
}

/// Fixes a job's plan. `rng` is the job's own seeded generator, so the same
/// seed and submissions give the same outcomes and results.
pub fn plan(
    scenario: Option<&Scenario>,
    default_stage_ms: u64,
    failure_rate: f64,
    rng: &mut StdRng,
) -> Plan {
    let sc = scenario.cloned().unwrap_or_default();
    // Draw every random value up front so the sequence is the same whatever
    // the branch taken.
    let roll: f64 = rng.gen();
    let pick = rng.gen_range(0..SIMULATED_ERRORS.len());
    let stage_ms = sc.stage_ms.unwrap_or(default_stage_ms);
    let generated = generated_result(rng, stage_ms);

    let fails = match sc.outcome {
        Some(Outcome::Failure) => true,
        Some(Outcome::Success) => false,
        None => sc.error.is_some() || roll < failure_rate,
    };
    let (outcome, result, error) = if fails {
        let error = match sc.error {
            Some(e) => {
                let stage = e.stage.unwrap_or_else(|| stage_of(&e.code).to_owned());
                let reason = e.reason.unwrap_or_else(|| reason_of(&e.code).to_owned());
                WebhookError {
                    code: e.code,
                    stage,
                    details: json!({ "reason": reason }),
                }
            }
            None if sc.outcome == Some(Outcome::Failure) => simulated_error(3),
            None => simulated_error(pick),
        };
        (Outcome::Failure, None, Some(error))
    } else {
        (
            Outcome::Success,
            Some(sc.result.map_or(generated, Value::Object)),
            None,
        )
    };
    Plan {
        outcome,
        result,
        error,
        stage_ms,
        hold: sc.hold.unwrap_or(false),
        webhook: sc.webhook.unwrap_or_default().faults(),
        origin: None,
    }
}

pub fn simulated_error(i: usize) -> WebhookError {
    let (code, stage, reason) = SIMULATED_ERRORS[i % SIMULATED_ERRORS.len()];
    WebhookError {
        code: code.into(),
        stage: stage.into(),
        details: json!({ "reason": reason }),
    }
}

/// What `POST /_mock/jobs/{id}/fail` asked for. What it leaves out comes
/// from the job's stage when it fails: with no code, the simulator's own
/// error of that stage; with a known code and no stage, that code's stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailSpec {
    pub code: Option<String>,
    pub stage: Option<String>,
    pub reason: Option<String>,
}

impl FailSpec {
    pub fn resolve(self, current_stage: &str) -> WebhookError {
        let known = |code: &str| SIMULATED_ERRORS.iter().find(|(c, _, _)| *c == code);
        let (code, stage) = match self.code {
            Some(code) => {
                let stage = self
                    .stage
                    .or_else(|| known(&code).map(|k| k.1.to_owned()))
                    .unwrap_or_else(|| current_stage.to_owned());
                (code, stage)
            }
            None => {
                let stage = self.stage.unwrap_or_else(|| current_stage.to_owned());
                let code = SIMULATED_ERRORS
                    .iter()
                    .find(|(_, s, _)| *s == stage)
                    .map_or("SIMULATED_FAILURE", |k| k.0);
                (code.to_owned(), stage)
            }
        };
        let reason = self
            .reason
            .or_else(|| known(&code).map(|k| k.2.to_owned()))
            .unwrap_or_else(|| "Failed by the admin API".into());
        WebhookError {
            code,
            stage,
            details: json!({ "reason": reason }),
        }
    }
}

fn stage_of(code: &str) -> &'static str {
    SIMULATED_ERRORS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("NORMALIZE", |(_, s, _)| s)
}

fn reason_of(code: &str) -> &'static str {
    SIMULATED_ERRORS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("Simulated failure", |(_, _, r)| r)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The worker output the seed's mock produced, with seeded variation.
pub fn generated_result(rng: &mut StdRng, stage_ms: u64) -> Value {
    json!({
        "structured": {"field_1": "mock_value_1", "field_2": "mock_value_2"},
        "confidence": {
            "field_1": round2(rng.gen_range(0.80..0.99)),
            "field_2": round2(rng.gen_range(0.80..0.99)),
        },
        "quality_score": round2(rng.gen_range(0.80..0.99)),
        "page_count": 1,
        "processing_time_ms": stage_ms * Stage::ALL.len() as u64,
    })
}
