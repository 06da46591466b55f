//! Per-job scenarios (`metadata.mock`, `X-Mock-Scenario`), scenario rules,
//! and the plan a job is given at submit time: outcome, timing, webhook mode.

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::WebhookError;

mod rules;

pub use rules::*;

pub const STAGES: [&str; 3] = ["FETCH", "OCR", "NORMALIZE"];

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
        Ok(())
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
        Ok(())
    }
}

/// A stage an error may name: one of [`STAGES`].
pub fn check_stage(stage: &str) -> Result<(), String> {
    if STAGES.contains(&stage) {
        Ok(())
    } else {
        Err(format!(
            "`stage` must be one of {} (got `{stage}`)",
            STAGES.join(", ")
        ))
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

/// The concrete plan of one job, fixed at submit time and stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WebhookError>,
    pub stage_ms: u64,
    pub hold: bool,
    pub webhook_mode: WebhookMode,
    pub delay_ms: u64,
    /// How many times the event is sent (duplicate mode sends at least 2).
    pub sends: u32,
    pub bad_signature: bool,
    /// What chose this plan, recorded at submit (plans stored before
    /// schema v4 lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
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
    /// Index of the stage at whose end the job fails, if it fails.
    pub fn failure_stage(&self) -> Option<usize> {
        let err = self
            .error
            .as_ref()
            .filter(|_| self.outcome == Outcome::Failure)?;
        Some(
            STAGES
                .iter()
                .position(|s| *s == err.stage)
                .unwrap_or(STAGES.len() - 1),
        )
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
    let wh = sc.webhook.unwrap_or_default();
    let mode = wh.mode.unwrap_or_default();
    let sends = match mode {
        WebhookMode::Duplicate => wh.count.unwrap_or(2).max(2),
        _ => wh.count.unwrap_or(1).max(1),
    };
    Plan {
        outcome,
        result,
        error,
        stage_ms,
        hold: sc.hold.unwrap_or(false),
        webhook_mode: mode,
        delay_ms: match mode {
            WebhookMode::Delay => wh.delay_ms.unwrap_or(2000),
            _ => wh.delay_ms.unwrap_or(0),
        },
        sends,
        bad_signature: wh.bad_signature.unwrap_or(false),
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
        "processing_time_ms": stage_ms * STAGES.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn error_alone_implies_failure_with_its_stage_filled_in() {
        let sc = Scenario::parse(&json!({"error": {"code": "OCR_TIMEOUT"}})).unwrap();
        let p = plan(Some(&sc), 25, 0.0, &mut rng());
        assert_eq!(p.outcome, Outcome::Failure);
        let e = p.error.unwrap();
        assert_eq!((e.code.as_str(), e.stage.as_str()), ("OCR_TIMEOUT", "OCR"));
    }

    #[test]
    fn unknown_scenario_fields_are_refused() {
        assert!(Scenario::parse(&json!({"outcom": "failure"})).is_err());
        assert!(Scenario::parse(&json!({"webhook": {"mode": "explode"}})).is_err());
    }

    #[test]
    fn failure_rate_one_fails_every_plain_job_and_zero_none() {
        let mut r = rng();
        assert!((0..20).all(|_| plan(None, 0, 1.0, &mut r).outcome == Outcome::Failure));
        assert!((0..20).all(|_| plan(None, 0, 0.0, &mut r).outcome == Outcome::Success));
    }

    #[test]
    fn duplicate_sends_at_least_twice() {
        let sc = Scenario::parse(&json!({"webhook": {"mode": "duplicate"}})).unwrap();
        assert_eq!(plan(Some(&sc), 0, 0.0, &mut rng()).sends, 2);
        let sc = Scenario::parse(&json!({"webhook": {"mode": "duplicate", "count": 3}})).unwrap();
        assert_eq!(plan(Some(&sc), 0, 0.0, &mut rng()).sends, 3);
    }

    #[test]
    fn rules_match_by_pointer_regex_exact_and_tenant() {
        let rule: Rule = serde_json::from_value(json!({
            "match": {"/input/filename": "/fail-ocr/", "/app": "worker"},
            "scenario": {"outcome": "failure"}
        }))
        .unwrap();
        let r = CompiledRule::compile(rule).unwrap();
        let body = json!({"app": "worker", "input": {"filename": "x-fail-ocr.pdf"}});
        assert!(r.matches(&body, "t"));
        let other = json!({"app": "other", "input": {"filename": "x-fail-ocr.pdf"}});
        assert!(!r.matches(&other, "t"));
        let missing = json!({"app": "worker", "input": {}});
        assert!(!r.matches(&missing, "t"));

        let scoped: Rule = serde_json::from_value(json!({
            "match": {}, "tenant": "key-a", "scenario": {}
        }))
        .unwrap();
        let scoped = CompiledRule::compile(scoped).unwrap();
        assert!(scoped.matches(&body, &crate::tenant::tenant_id("key-a")));
        assert!(!scoped.matches(&body, &crate::tenant::tenant_id("key-b")));
    }

    #[test]
    fn rules_that_never_fire_or_fire_for_everything_are_refused_by_index() {
        let err = |v: Value| parse_rules(v).err().expect("refused");
        let ok = json!({"match": {"/app": "x"}, "scenario": {}});
        let e = err(json!([ok, {"match": {"/app": "x"}, "times": 0, "scenario": {}}]));
        assert!(e.starts_with("rule 1: `times` is 0"), "{e}");
        let e = err(json!({"rules": [{"match": {}, "scenario": {}}]}));
        assert!(e.starts_with("rule 0: `match` is empty"), "{e}");
        let e = err(json!([ok, ok, {"match": {"/app": "x"}, "scenario": {"outcom": "failure"}}]));
        assert!(e.starts_with("rule 2: unknown field `outcom`"), "{e}");
        let e = err(json!({"match": {"/app": "x"}, "scenario": {}}));
        assert!(e.contains("expected a list of rules"), "{e}");
        // A tenant-scoped rule may match all of that tenant's jobs, and a
        // rule with uses left is fine.
        let fine = json!([{"match": {}, "tenant": "key-a", "scenario": {}},
                          {"match": {"/app": "x"}, "times": 2, "scenario": {}}]);
        assert_eq!(parse_rules(fine).unwrap().len(), 2);
    }

    #[test]
    fn an_admin_failure_takes_what_it_leaves_out_from_the_jobs_stage() {
        let e = FailSpec::default().resolve("FETCH");
        assert_eq!(
            (e.code.as_str(), e.stage.as_str()),
            ("FETCH_FAILED", "FETCH")
        );
        assert_eq!(e.details["reason"], "Could not download the input file");
        let e = FailSpec::default().resolve("NORMALIZE");
        assert_eq!(
            (e.code.as_str(), e.stage.as_str()),
            ("NORMALIZE_FAILED", "NORMALIZE")
        );
        // A known code brings its stage; an unknown one takes the job's.
        let spec = |code: &str| FailSpec {
            code: Some(code.into()),
            ..Default::default()
        };
        assert_eq!(spec("OCR_FAILURE").resolve("FETCH").stage, "OCR");
        let e = spec("MY_ERROR").resolve("FETCH");
        assert_eq!(
            (e.stage.as_str(), e.details["reason"].as_str()),
            ("FETCH", Some("Failed by the admin API"))
        );
        let e = FailSpec {
            code: Some("FETCH_TIMEOUT".into()),
            stage: Some("OCR".into()),
            reason: Some("upstream".into()),
        }
        .resolve("NORMALIZE");
        assert_eq!(
            (e.stage.as_str(), e.details["reason"].as_str()),
            ("OCR", Some("upstream"))
        );
    }

    #[test]
    fn bad_pointer_or_regex_is_refused() {
        let bad: Rule =
            serde_json::from_value(json!({"match": {"input": "x"}, "scenario": {}})).unwrap();
        assert!(CompiledRule::compile(bad).is_err());
        let bad: Rule =
            serde_json::from_value(json!({"match": {"/input": "/(/"}, "scenario": {}})).unwrap();
        assert!(CompiledRule::compile(bad).is_err());
    }
}
