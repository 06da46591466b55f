//! Submit, poll, list, cancel, logs, the simulator and its scenarios, health.

use serde_json::{json, Value};

use crate::helpers::*;

fn plain() -> Value {
    json!({"app": "rythmiq-worker", "input": {"filename": "a.pdf"}, "metadata": {"job_id": "j-1"}})
}

fn held() -> Value {
    json!({"app": "rythmiq-worker", "input": {}, "metadata": {"mock": {"hold": true}}})
}

#[actix_web::test]
async fn submit_answers_201_pending_and_the_job_runs_to_completed() {
    let app = spawn_app().await;
    let r = app.client.submit(plain()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["app"], "rythmiq-worker");
    assert_eq!(r.body["id"], r.body["job_id"]);
    assert!(r.body["id"].as_str().unwrap().starts_with("cmb_"));
    assert!(chrono::DateTime::parse_from_rfc3339(r.body["created_at"].as_str().unwrap()).is_ok());
    assert!(r.headers.contains_key("x-request-id"));

    let id = r.body["id"].as_str().unwrap();
    let job = app.client.wait_status(id, "completed").await;
    assert_eq!(job["metadata"], json!({"job_id": "j-1"}));
    assert!(job["stage"].is_null());
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    assert_eq!(job["result"]["page_count"], 1);
    assert!(job["webhook"].is_null());
}

/// A job whose stages take no time (`--stage-ms 0` here, nothing holding
/// it) runs to its end at submit: its row is written already ended, with
/// its webhook delivery, in the submit's own transaction. One write, one
/// commit, and a poll right after the 201 finds it ended, with every stage
/// in its log. Counted on the writer's own counter (/metrics shows it as
/// `mock_camber_db_writes_total`).
#[actix_web::test]
async fn a_job_whose_stages_take_no_time_ends_at_submit_in_one_write() {
    // No retention sweeper: its writes would count too.
    let app = spawn_app_with(|s| s.retention = std::time::Duration::ZERO).await;
    let mut failing = plain();
    failing["metadata"]["mock"] = json!({"error": {"code": "OCR_FAILURE", "stage": "OCR"}});
    for (body, status, stages) in [
        (
            plain(),
            "completed",
            ["FETCH", "OCR", "NORMALIZE"].as_slice(),
        ),
        (failing, "failed", ["FETCH"].as_slice()),
    ] {
        let (before, _) = app.store.write_stats();
        let id = app.client.create(body).await;
        let (after, _) = app.store.write_stats();
        assert_eq!(after - before, 1, "writes for one job");
        let job = app.client.job(&id).await;
        assert_eq!(job["status"], status, "{job}");
        assert!(job["started_at"].is_string() && job["finished_at"].is_string());
        let logs = app.client.get(&format!("/jobs/{id}/logs")).await;
        assert_eq!(logs.status, 200, "{}", logs.text);
        for stage in stages {
            for what in ["started", "finished"] {
                let line = format!("{stage} {what}");
                assert!(logs.text.contains(&line), "{line} in {}", logs.text);
            }
        }
        assert!(
            logs.text.contains(&format!("job {status}")),
            "{}",
            logs.text
        );
    }
    let metrics = app.client.get("/metrics").await;
    for name in [
        "mock_camber_db_writes_total",
        "mock_camber_db_commits_total",
    ] {
        assert!(
            metrics.text.contains(&format!("\n{name} ")),
            "{}",
            metrics.text
        );
    }
    assert!(
        metrics
            .text
            .contains("mock_camber_jobs_total{status=\"running\"} 2"),
        "every job passed through running: {}",
        metrics.text
    );

    // Its webhook goes out like any other, from the delivery committed with
    // the job.
    let mut rx = Receiver::start().await;
    let id = app.client.create(job_to(&rx.url)).await;
    let got = rx.next().await.json();
    assert_eq!(got["camber_job_id"], id.as_str());
    assert_eq!(got["status"], "success");
    app.client.wait_delivery(&id, "delivered").await;
}

#[actix_web::test]
async fn a_held_job_stays_running_until_advanced_stage_by_stage() {
    let app = spawn_app().await;
    let id = app.client.create(held()).await;
    let job = app.client.wait_status(&id, "running").await;
    assert_eq!(job["stage"], "FETCH");

    for next in ["OCR", "NORMALIZE"] {
        let r = app
            .client
            .post(&format!("/_mock/jobs/{id}/advance"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["stage"], next);
        assert_eq!(r.body["status"], "running");
        assert_eq!(app.client.job(&id).await["stage"], next);
    }
    let r = app
        .client
        .post(&format!("/_mock/jobs/{id}/advance"), json!({}))
        .await;
    assert_eq!(r.body["status"], "completed");
    let again = app
        .client
        .post(&format!("/_mock/jobs/{id}/advance"), json!({}))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "CONFLICT");
}

#[actix_web::test]
async fn timed_stages_take_stage_ms_each() {
    let app = spawn_app_with(|s| s.stage_ms = 40).await;
    let id = app.client.create(plain()).await;
    let job = app.client.wait_status(&id, "completed").await;
    let t = |k: &str| chrono::DateTime::parse_from_rfc3339(job[k].as_str().unwrap()).unwrap();
    assert!(t("finished_at") - t("started_at") >= chrono::Duration::milliseconds(115));
}

#[actix_web::test]
async fn logs_have_a_line_per_stage_start_and_end_and_tail_cuts_them() {
    let app = spawn_app().await;
    let id = app.client.create(plain()).await;
    app.client.wait_status(&id, "completed").await;
    let r = app.client.get(&format!("/jobs/{id}/logs")).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("text/plain"));
    let lines: Vec<&str> = r.text.lines().collect();
    let words: Vec<String> = lines
        .iter()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(
        words,
        [
            "FETCH started",
            "FETCH finished",
            "OCR started",
            "OCR finished",
            "NORMALIZE started",
            "NORMALIZE finished",
            "job completed"
        ]
    );
    let tail = app.client.get(&format!("/jobs/{id}/logs?tail=2")).await;
    assert_eq!(tail.text.lines().count(), 2);
    assert!(tail.text.ends_with("job completed\n"));
    // A tail longer than any log (even past usize) is the whole log.
    let all = app
        .client
        .get(&format!("/jobs/{id}/logs?tail=99999999999999999999999"))
        .await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.text.lines().count(), 7);
    for bad in ["-1", "x", "1.5"] {
        let r = app.client.get(&format!("/jobs/{id}/logs?tail={bad}")).await;
        assert_eq!(r.status, 422, "tail={bad}: {}", r.text);
    }
}

#[actix_web::test]
async fn cancelling_a_running_job_ends_it_and_sends_a_cancelled_failure_webhook() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = held();
    body["webhook"] = json!({"url": rx.url});
    let id = app.client.create(body).await;
    app.client.wait_status(&id, "running").await;

    let r = app
        .client
        .post(&format!("/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["error"]["code"], "CANCELLED");
    let hook = rx.next().await.json();
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["result"]["error"]["code"], "CANCELLED");

    let again = app
        .client
        .post(&format!("/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "CONFLICT");
}

#[actix_web::test]
async fn list_is_newest_first_with_cursor_paging_and_filters() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut b = plain();
        b["app"] = json!(if i % 2 == 0 { "even" } else { "odd" });
        ids.push(app.client.create(b).await);
    }
    let held_id = app.client.create(held()).await;
    app.client.wait_status(&held_id, "running").await;

    let first = app.client.get("/jobs?limit=4").await;
    assert_eq!(first.status, 200);
    let got: Vec<&str> = first.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [held_id.as_str(), &ids[4], &ids[3], &ids[2]]);
    let cursor = first.body["next"].as_str().unwrap();
    let second = app
        .client
        .get(&format!("/jobs?limit=4&cursor={cursor}"))
        .await;
    let got: Vec<&str> = second.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [&ids[1], &ids[0]]);
    assert!(second.body["next"].is_null());

    let odd = app.client.get("/jobs?app=odd").await;
    assert_eq!(odd.body["jobs"].as_array().unwrap().len(), 2);
    let running = app.client.get("/jobs?status=running").await;
    let running: Vec<&str> = running.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(running, [held_id.as_str()]);

    for bad in [
        "/jobs?status=done",
        "/jobs?limit=0",
        "/jobs?limit=501",
        "/jobs?cursor=abc",
        "/jobs?cursor=-5",
    ] {
        let r = app.client.get(bad).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
    }
}

#[actix_web::test]
async fn a_per_job_failure_scenario_fails_at_its_stage() {
    let app = spawn_app().await;
    let mut b = plain();
    b["metadata"]["mock"] = json!({"error": {"code": "FETCH_TIMEOUT"}});
    let id = app.client.create(b).await;
    let job = app.client.wait_status(&id, "failed").await;
    assert_eq!(job["error"]["code"], "FETCH_TIMEOUT");
    assert_eq!(job["error"]["stage"], "FETCH");
    let logs = app.client.get(&format!("/jobs/{id}/logs")).await.text;
    assert!(!logs.contains("OCR started"), "{logs}");
}

#[actix_web::test]
async fn the_scenario_header_works_like_metadata_mock_and_a_result_is_returned_verbatim() {
    let app = spawn_app().await;
    let result = json!({"structured": {"total": "42.00", "vendor": "ACME"}, "quality_score": 0.5});
    let scenario = json!({"outcome": "success", "result": result}).to_string();
    let r = app
        .client
        .submit_with(plain(), &[("X-Mock-Scenario", scenario.as_str())])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let job = app
        .client
        .wait_status(r.body["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(job["result"], result);
    let keys: Vec<&String> = job["result"]["structured"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["total", "vendor"]);
}

#[actix_web::test]
async fn failure_rate_one_fails_every_job_with_a_simulator_error() {
    let app = spawn_app_with(|s| s.failure_rate = 1.0).await;
    let codes = [
        "FETCH_FAILED",
        "FETCH_TIMEOUT",
        "DECODE_FAILED",
        "OCR_FAILURE",
        "OCR_TIMEOUT",
        "NORMALIZE_FAILED",
    ];
    for _ in 0..5 {
        let id = app.client.create(plain()).await;
        let job = app.client.wait_status(&id, "failed").await;
        assert!(
            codes.contains(&job["error"]["code"].as_str().unwrap()),
            "{job}"
        );
    }
}

#[actix_web::test]
async fn injected_submit_errors_answer_503_or_429_with_retry_after_and_create_nothing() {
    let app = spawn_app_with(|s| s.submit_error_rate = 1.0).await;
    for _ in 0..4 {
        let r = app.client.submit(plain()).await;
        assert!(r.status == 503 || r.status == 429, "{}", r.status);
        assert_eq!(r.headers["retry-after"], "1");
        let code = r.body["error"]["code"].as_str().unwrap();
        assert!(code == "SERVICE_UNAVAILABLE" || code == "RATE_LIMITED");
    }
    let list = app.client.get("/jobs").await;
    assert_eq!(list.body["jobs"], json!([]));
}

#[actix_web::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let id = app.client.create(plain()).await;
    app.client.wait_status(&id, "completed").await;
    assert_eq!(app.client.get("/healthz").await.status, 200);
    let ready = app.client.get("/readyz").await;
    assert_eq!(ready.body["status"], "ready");
    // The counters move when the engine hears the commit: poll.
    let m = wait_for("completed job counted", 10, || async {
        let m = app.client.get("/metrics").await;
        m.text
            .contains("mock_camber_jobs_total{status=\"completed\"} 1")
            .then_some(m)
    })
    .await;
    assert_eq!(m.status, 200);
    assert!(m.text.contains("mock_camber_submits_total 1"), "{}", m.text);
    assert!(m
        .text
        .contains("# TYPE mock_camber_webhook_latency_seconds histogram"));
    assert!(m.text.contains("mock_camber_webhook_queue_depth 0"));
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = spawn_app().await;
    let r = app.client.get("/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "NOT_FOUND");
    let r = app.client.send("DELETE", "/jobs", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert_eq!(
        r.headers["allow"], "POST, GET",
        "RFC 9110: a 405 says what is allowed"
    );
    let r = app.client.get("/jobs/cmb_missing").await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn metrics_are_prometheus_text_in_utf_8() {
    let app = spawn_app().await;
    let r = app.client.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
}
