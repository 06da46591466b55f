//! The admin API's runtime config under `/_mock/config`: a put changes only
//! the named fields and validates first; scenario rules match submit
//! bodies, are refused with 422 when they cannot work, and load from a
//! `--scenarios` file at start.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn config_put_changes_only_the_named_fields_and_validates_first() {
    let app = spawn_app().await;
    let before = app.client.get("/_mock/config").await.body;
    assert_eq!(before["stage_ms"], 0);
    assert_eq!(before["rules"], json!([]));
    let r = app
        .client
        .put(
            "/_mock/config",
            json!({"failure_rate": 0.25, "latency_ms": 5}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["failure_rate"], 0.25);
    assert_eq!(r.body["latency_ms"], 5);
    assert_eq!(r.body["stage_ms"], 0);
    assert_eq!(r.body["submit_error_rate"], 0.0);

    for bad in [
        json!({"failure_rate": 2}),
        json!({"stage_ms": -1}),
        json!({"bogus": 1}),
        json!({"rules": [{"match": {"no-slash": "x"}, "scenario": {}}]}),
        json!({"stage_ms": 9, "rules": [{"match": {}, "scenario": {"outcome": "sometimes"}}]}),
    ] {
        let r = app.client.put("/_mock/config", bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    // Nothing of the refused bodies was applied.
    let after = app.client.get("/_mock/config").await.body;
    assert_eq!(after["stage_ms"], 0);
    assert_eq!(after["failure_rate"], 0.25);
}

#[actix_web::test]
async fn scenario_rules_match_submit_bodies_by_pointer_and_regex_and_run_out() {
    let app = spawn_app().await;
    let rules = json!({"rules": [
        {"match": {"/input/filename": "/fail-ocr/"}, "times": 1,
         "scenario": {"outcome": "failure", "error": {"code": "OCR_FAILURE", "stage": "OCR", "reason": "No text detected in image"}}}
    ]});
    assert_eq!(app.client.put("/_mock/config", rules).await.status, 200);
    let body = |name: &str| json!({"app": "x", "input": {"filename": name}});

    let first = app.client.create(body("scan-fail-ocr.png")).await;
    let job = app.client.wait_status(&first, "failed").await;
    assert_eq!(job["error"]["code"], "OCR_FAILURE");
    let other = app.client.create(body("fine.png")).await;
    app.client.wait_status(&other, "completed").await;
    // times: 1 — the rule is used up.
    let second = app.client.create(body("again-fail-ocr.png")).await;
    app.client.wait_status(&second, "completed").await;
    assert_eq!(
        app.client.get("/_mock/config").await.body["rules"][0]["times"],
        0
    );

    // A per-job scenario beats a rule.
    let rules = json!({"rules": [{"match": {"/app": "x"}, "scenario": {"outcome": "failure"}}]});
    app.client.put("/_mock/config", rules).await;
    let mut b = body("a.png");
    b["metadata"] = json!({"mock": {"outcome": "success"}});
    let id = app.client.create(b).await;
    app.client.wait_status(&id, "completed").await;
}

#[actix_web::test]
async fn rules_that_cannot_work_are_refused_with_422_naming_the_rule() {
    let app = spawn_app().await;
    let good = json!({"match": {"/app": "x"}, "scenario": {"outcome": "failure"}});
    assert_eq!(
        app.client
            .put("/_mock/config", json!({"rules": [good]}))
            .await
            .status,
        200
    );
    for (rules, says) in [
        (
            json!([good, {"match": {"/app": "y"}, "times": 0, "scenario": {}}]),
            "rule 1: `times` is 0",
        ),
        (
            json!([{"match": {}, "scenario": {"outcome": "failure"}}]),
            "rule 0: `match` is empty",
        ),
        (
            json!([good, {"match": {"/app": "y"}, "scenario": {"hold": true, "stage": 1}}]),
            "rule 1: unknown field `stage`",
        ),
    ] {
        let r = app
            .client
            .put("/_mock/config", json!({"rules": rules, "stage_ms": 7}))
            .await;
        assert_eq!(r.status, 422, "{rules}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST", "{}", r.text);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Nothing of the refused bodies was applied.
    let config = app.client.get("/_mock/config").await.body;
    assert_eq!(config["rules"], json!([good]));
    assert_ne!(config["stage_ms"], 7);
}

#[actix_web::test]
async fn rules_load_from_a_scenarios_file_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.json");
    std::fs::write(
        &path,
        json!([{"match": {"/input/filename": "/^slow/"}, "scenario": {"hold": true}}]).to_string(),
    )
    .unwrap();
    let app = spawn_app_with(|s| s.scenarios = Some(path)).await;
    let id = app
        .client
        .create(json!({"app": "x", "input": {"filename": "slow.pdf"}}))
        .await;
    assert_eq!(
        app.client.wait_status(&id, "running").await["stage"],
        "FETCH"
    );
    let r = app
        .client
        .post(&format!("/_mock/jobs/{id}/complete"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
}
