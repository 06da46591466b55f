//! The QA console's API (issue 10): the page and its assets, the session
//! check, the job detail, admin cancel and redeliver-dead, the config dry
//! run. List filters, paging and the overview's counts are in
//! `console_lists`, the event stream in `console_events`.

use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const KEY_A: &str = "sk_test_aaaa_1111";
pub(crate) const KEY_B: &str = "sk_test_bbbb_2222";

pub(crate) fn held(app: &str, caller: &str) -> Value {
    json!({"app": app, "input": {"filename": "x.pdf"},
           "metadata": {"job_id": caller, "mock": {"hold": true}}})
}

#[actix_web::test]
async fn the_page_and_its_assets_are_served_under_a_strict_content_security_policy() {
    let app = spawn_app_with(|s| s.admin_token = Some("admin-secret".into())).await;
    let anon = app.client.with_key("");
    let page = anon.get("/_mock/").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<title>mock-camber</title>"));
    let csp = &page.headers["content-security-policy"];
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    for (name, kind) in [
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("views.js", "text/javascript"),
        ("config.js", "text/javascript"),
        ("console.css", "text/css"),
    ] {
        let r = anon.get(&format!("/_mock/assets/{name}")).await;
        assert_eq!(r.status, 200, "{name}");
        assert!(r.headers["content-type"].starts_with(kind), "{name}");
    }
    assert!(
        page.text.contains("/_mock/assets/app.js")
            && page.text.contains("/_mock/assets/console.css")
    );
    let missing = anon.get("/_mock/assets/secrets.txt").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "NOT_FOUND");
}

#[actix_web::test]
async fn the_session_check_says_whether_the_token_is_needed_and_right_without_a_401() {
    let app = spawn_app_with(|s| s.admin_token = Some("admin-secret".into())).await;
    for (key, sent, authorized) in [
        ("", false, false),
        ("wrong", true, false),
        ("admin-secret", true, true),
    ] {
        let r = app.client.with_key(key).get("/_mock/session").await;
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(
            r.body,
            json!({"admin_token_required": true, "token_sent": sent, "authorized": authorized})
        );
    }
    let open = spawn_app().await;
    let r = open.client.with_key("").get("/_mock/session").await;
    assert_eq!(r.body["admin_token_required"], false);
    assert_eq!(r.body["authorized"], true);
}

#[actix_web::test]
async fn the_console_routes_refuse_a_missing_or_wrong_admin_token() {
    let app = spawn_app_with(|s| s.admin_token = Some("admin-secret".into())).await;
    let id = app.client.create(held("a", "j")).await;
    for key in ["", "wrong"] {
        let c = app.client.with_key(key);
        for path in [
            "/_mock/stats",
            "/_mock/events",
            &format!("/_mock/jobs/{id}"),
        ] {
            let r = c.get(path).await;
            assert_eq!(r.status, 401, "{path}");
            assert_eq!(r.body["error"]["code"], "UNAUTHENTICATED");
        }
        for path in [
            format!("/_mock/jobs/{id}/cancel"),
            format!("/_mock/jobs/{id}/redeliver"),
            "/_mock/config/validate".to_owned(),
        ] {
            assert_eq!(c.post(&path, json!({})).await.status, 401, "{path}");
        }
    }
    let admin = app.client.with_key("admin-secret");
    assert_eq!(admin.get("/_mock/stats").await.status, 200);
    assert_eq!(admin.get(&format!("/_mock/jobs/{id}")).await.status, 200);
}

#[actix_web::test]
async fn a_jobs_detail_tells_what_chose_its_plan_its_timeline_log_and_every_attempt() {
    let mut rx = Receiver::start().await;
    let app = spawn_app_with(|s| s.api_keys = vec![KEY_A.into()]).await;
    let c = app.client.with_key(KEY_A);
    let rules = json!({"rules": [{"match": {"/input/filename": "/fail-ocr/"},
        "scenario": {"outcome": "failure", "error": {"code": "OCR_FAILURE"}}}]});
    assert_eq!(app.client.put("/_mock/config", rules).await.status, 200);
    let by_rule = c
        .create(json!({"app": "a", "input": {"filename": "scan-fail-ocr.png"}}))
        .await;
    let by_header = {
        let r = c
            .submit_with(
                json!({"app": "a", "input": {}}),
                &[("X-Mock-Scenario", r#"{"outcome": "success"}"#)],
            )
            .await;
        r.body["id"].as_str().unwrap().to_owned()
    };
    let mut body = job_to(&rx.url);
    body["webhook"]["headers"] = json!({"Authorization": "Bearer caller-secret-token-9876"});
    let by_default = c.create(body).await;
    let hook = rx.next().await;
    assert_eq!(
        hook.header("authorization"),
        "Bearer caller-secret-token-9876"
    );
    c.wait_delivery(&by_default, "delivered").await;
    c.wait_status(&by_rule, "failed").await;

    let detail = |id: String| {
        let c = app.client.clone();
        async move {
            let r = c.get(&format!("/_mock/jobs/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r
        }
    };
    let r = detail(by_rule.clone()).await.body;
    assert_eq!(r["chosen_by"]["source"], "rule");
    assert_eq!(r["chosen_by"]["rule_index"], 0);
    assert_eq!(
        r["chosen_by"]["rule"]["match"],
        json!({"/input/filename": "/fail-ocr/"})
    );
    assert_eq!(r["error"]["code"], "OCR_FAILURE");
    assert_eq!(r["tenant"], "sk_t…1111");
    assert_eq!(r["input"], json!({"filename": "scan-fail-ocr.png"}));
    assert_eq!(r["plan"]["outcome"], "failure");
    let stages: Vec<(&str, &str)> = (r["timeline"].as_array().unwrap().iter())
        .map(|t| (t["stage"].as_str().unwrap(), t["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(stages, vec![("FETCH", "finished"), ("OCR", "failed")]);
    assert!(r["log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().ends_with("job failed")));

    let r = detail(by_header).await.body;
    assert_eq!(r["chosen_by"]["source"], "X-Mock-Scenario");
    assert_eq!(r["chosen_by"]["scenario"], json!({"outcome": "success"}));

    let r = detail(by_default.clone()).await;
    assert_eq!(r.body["chosen_by"]["source"], "defaults");
    assert_eq!(r.body["chosen_by"]["failure_rate"], 0.0);
    assert_eq!(r.body["timeline"].as_array().unwrap().len(), 3);
    expect_the_attempt_shown_masked(&r, &hook);

    let missing = app.client.get("/_mock/jobs/cmb_nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "NOT_FOUND");
}

#[actix_web::test]
async fn a_jobs_detail_lists_its_receiver_audits_newest_first_with_each_case() {
    let rx = Receiver::start().await;
    let app = spawn_app().await;
    let c = &app.client;
    let job = c.create(job_to(&rx.url)).await;
    c.wait_delivery(&job, "delivered").await;
    let r = c.get(&format!("/_mock/jobs/{job}")).await;
    assert_eq!(r.body["audits"], json!([]), "{}", r.text);
    let mut reports = Vec::new();
    for _ in 0..2 {
        let r = c.post(&format!("/_mock/jobs/{job}/audit"), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let report = wait_for("the audit to be done", 60, || async {
            let r = c.get(&format!("/_mock/audits/{id}?wait_ms=5000")).await;
            (r.status == 200).then_some(r.body)
        })
        .await;
        reports.insert(0, report);
    }
    let r = c.get(&format!("/_mock/jobs/{job}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Newest first, each the report `GET /_mock/audits/{id}` answers.
    assert_eq!(r.body["audits"], json!(reports), "{}", r.text);
    let a = &r.body["audits"][0];
    assert_eq!(a["state"], "done");
    // The receiver answers 200 to everything: the signature cases fail.
    let failed = a["failed"].as_array().unwrap();
    assert!(failed.contains(&json!("wrong_secret")), "{a}");
    assert_eq!(a["summary"]["fail"], failed.len());
    let case = (a["cases"].as_array().unwrap().iter())
        .find(|c| c["name"] == "wrong_secret")
        .unwrap();
    assert_eq!(case["verdict"], "fail");
    assert_eq!(case["observed"][0]["status"], 200);
    assert!(
        case["reason"].as_str().unwrap().contains("signature"),
        "{case}"
    );
    // The page draws them (views.js, served as is).
    let js = c.get("/_mock/assets/views.js").await;
    assert_eq!(js.status, 200);
    assert!(js.text.contains("Receiver audits") && js.text.contains("data-audit-failed"));
}

/// The first attempt of a job's detail shows the headers that were sent,
/// with every secret elided or masked.
fn expect_the_attempt_shown_masked(r: &Response, hook: &Received) {
    let attempt = &r.body["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["status"], 200);
    let headers: Vec<(String, String)> =
        serde_json::from_value(attempt["headers"].clone()).unwrap();
    let get = |name: &str| {
        (headers.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    assert_eq!(get("x-webhook-secret"), "(elided)");
    assert_eq!(get("webhook-signature"), "(elided)");
    assert_eq!(get("x-camber-attempt"), "1");
    assert_eq!(
        get("x-camber-delivery-id"),
        hook.header("x-camber-delivery-id")
    );
    assert_eq!(get("webhook-timestamp"), hook.header("webhook-timestamp"));
    assert_eq!(get("authorization"), "Bearer call…9876");
    for secret in [
        SECRET,
        "caller-secret-token-9876",
        hook.header("x-webhook-secret"),
    ] {
        assert!(!r.text.contains(secret), "{secret} is in the detail");
    }
}

#[actix_web::test]
async fn the_admin_cancels_a_running_job_and_redelivers_every_dead_delivery_of_a_job() {
    let mut rx = Receiver::start().await;
    let app = spawn_app().await;
    let hold = app.client.create(held("a", "h")).await;
    app.client.wait_status(&hold, "running").await;
    let r = app
        .client
        .post(&format!("/_mock/jobs/{hold}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["error"]["code"], "CANCELLED");
    let again = app
        .client
        .post(&format!("/_mock/jobs/{hold}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 409);
    let none = app
        .client
        .post("/_mock/jobs/cmb_nope/cancel", json!({}))
        .await;
    assert_eq!(none.status, 404);

    rx.always(500);
    let id = app.client.create(job_to(&rx.url)).await;
    let dead = app.client.wait_delivery(&id, "dead").await;
    let tries = dead["attempts"].as_array().unwrap().len();
    rx.always(200);
    let r = app
        .client
        .post(&format!("/_mock/jobs/{id}/redeliver"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body, json!({"job_id": id, "redelivered": [dead["id"]]}));
    let done = app.client.wait_delivery(&id, "delivered").await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), tries + 1);
    assert_eq!(done["attempts"][tries]["status"], 200);
    let r = app
        .client
        .post(&format!("/_mock/jobs/{id}/redeliver"), json!({}))
        .await;
    assert_eq!(r.body["redelivered"], json!([]), "nothing is dead any more");
    let none = app
        .client
        .post("/_mock/jobs/cmb_nope/redeliver", json!({}))
        .await;
    assert_eq!(none.status, 404);
    while rx.try_next().is_some() {}
}

#[actix_web::test]
async fn the_config_dry_run_says_what_a_put_would_and_changes_nothing() {
    let app = spawn_app().await;
    let check = |body: Value| {
        let c = app.client.clone();
        async move {
            let r = c.post("/_mock/config/validate", body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        }
    };
    assert_eq!(
        check(json!({"failure_rate": 1})).await,
        json!({"valid": true, "error": null})
    );
    let bad = check(json!({"failure_rate": 2})).await;
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["error"]["code"], "INVALID_REQUEST");
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`failure_rate`"));
    let rule = check(json!({"rules": [{"match": {"/a": "/(/"}, "scenario": {}}]})).await;
    assert!(
        rule["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rule 0:"),
        "{rule}"
    );
    assert_eq!(
        app.client.get("/_mock/config").await.body["failure_rate"],
        0.0
    );
}

#[actix_web::test]
async fn a_job_stored_before_plans_recorded_their_origin_says_so_and_still_runs() {
    let app = spawn_app().await;
    let id = app.client.create(held("a", "old")).await;
    app.client.wait_status(&id, "running").await;
    let sql_id = id.clone();
    app.store
        .write(move |c| {
            c.execute(
                "UPDATE jobs SET plan = json_remove(plan, '$.origin') WHERE id = ?1",
                [&sql_id],
            )
            .map(|_| ())
        })
        .await
        .unwrap();
    let r = app.client.get(&format!("/_mock/jobs/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["chosen_by"], Value::Null);
    assert_eq!(r.body["plan"]["hold"], true);
    let done = app
        .client
        .post(&format!("/_mock/jobs/{id}/complete"), json!({}))
        .await;
    assert_eq!(done.body["status"], "completed");
}

#[actix_web::test]
async fn short_keys_are_told_apart_by_a_fingerprint_that_reveals_no_part_of_them() {
    let app = spawn_app_with(|s| s.api_keys = vec!["qa-one".into(), "qa-two".into()]).await;
    let one = app.client.with_key("qa-one");
    let two = app.client.with_key("qa-two");
    let a = one.create(json!({"app": "a", "input": {}})).await;
    two.create(json!({"app": "a", "input": {}})).await;
    let jobs = app.client.get("/_mock/jobs").await;
    let labels: Vec<&str> = (jobs.body["jobs"].as_array().unwrap().iter())
        .map(|j| j["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2, "{}", jobs.text);
    assert_ne!(labels[0], labels[1]);
    for label in &labels {
        assert!(label.starts_with("key#") && label.len() == 12, "{label}");
        assert!(!label.contains("qa"), "{label}");
    }
    let of_one = one.get(&format!("/jobs/{a}")).await;
    assert_eq!(of_one.status, 200);
    // The overview, the journal and the tenant filter use the same label.
    let label_one = labels[1].to_owned();
    let stats = app.client.get("/_mock/stats").await.body;
    let seen: Vec<&str> = (stats["tenants"].as_array().unwrap().iter())
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert!(seen.contains(&label_one.as_str()), "{stats}");
    let filtered = app
        .client
        .get(&format!(
            "/_mock/jobs?tenant={}",
            label_one.replace('#', "%23")
        ))
        .await;
    assert_eq!(
        filtered.body["jobs"][0]["id"],
        a.as_str(),
        "{}",
        filtered.text
    );
    assert_eq!(filtered.body["jobs"].as_array().unwrap().len(), 1);
    let journal = app.client.journal().await;
    assert!(
        journal.iter().any(|e| e["tenant"] == label_one.as_str()),
        "{journal:?}"
    );
    assert!(!jobs.text.contains("qa-one") && !stats.to_string().contains("qa-"));
}
