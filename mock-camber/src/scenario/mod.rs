//! Scenarios by concern: `spec` is what a user writes (`metadata.mock`,
//! `X-Mock-Scenario`, a rule's scenario), `plan` what a job will do (fixed
//! at submit), `faults` what goes wrong on purpose, as types; `rules` the
//! runtime config and its scenario rules.

mod faults;
mod plan;
mod rules;
mod spec;

pub use faults::*;
pub use plan::*;
pub use rules::*;
pub use spec::*;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::{json, Value};

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
        assert_eq!(plan(Some(&sc), 0, 0.0, &mut rng()).webhook.sends(), 2);
        let sc = Scenario::parse(&json!({"webhook": {"mode": "duplicate", "count": 3}})).unwrap();
        assert_eq!(plan(Some(&sc), 0, 0.0, &mut rng()).webhook.sends(), 3);
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

    #[test]
    fn webhook_knobs_become_faults_and_back() {
        let wh = |v: serde_json::Value| -> WebhookScenario { serde_json::from_value(v).unwrap() };
        let none = WebhookScenario::default().faults();
        assert_eq!(none, WebhookFaults::default());
        assert_eq!((none.sends(), none.delay_ms()), (1, 0));
        let f = wh(serde_json::json!({"mode": "delay"})).faults();
        assert_eq!(f.delay_ms(), 2000);
        let f = wh(serde_json::json!({
            "mode": "duplicate", "bad_signature": true, "content_type": "text/plain"
        }))
        .faults();
        assert_eq!(f.sends(), 2);
        assert_eq!(
            f.at_send().0,
            [
                WebhookFault::BadSignature,
                WebhookFault::ContentType("text/plain".into())
            ]
        );
        assert!(wh(serde_json::json!({"mode": "drop"})).faults().dropped());
        assert!(check_content_type("text/plain; charset=utf-8").is_ok());
        assert!(check_content_type("").is_err());
        assert!(check_content_type("a\nb").is_err());
    }
}
