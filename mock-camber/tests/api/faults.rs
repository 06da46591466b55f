//! Storage faults inside the daemon: a write that fails (as on a full disk)
//! must not strand a job. The fault is real SQLite behaviour on the writer's
//! own connection: a TEMP trigger that fails every terminal update, dropped
//! again when "space returns".

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const FAIL_FINISH: &str = "CREATE TEMP TRIGGER disk_full BEFORE UPDATE OF status ON jobs \
     WHEN NEW.status IN ('completed', 'failed', 'cancelled') \
     BEGIN SELECT RAISE(FAIL, 'database or disk is full (injected)'); END";

#[actix_web::test]
async fn a_job_whose_final_write_fails_finishes_once_the_store_accepts_writes_again() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["mock"] = json!({"hold": true});
    let id = app.client.create(body).await;
    app.client.wait_status(&id, "running").await;

    app.store
        .write(|c| c.execute_batch(FAIL_FINISH))
        .await
        .unwrap();
    // The admin call waits for the end to be recorded: run it meanwhile.
    let client = app.client.clone();
    let path = format!("/_mock/jobs/{id}/complete");
    let complete = actix_rt::spawn(async move { client.send("POST", &path, &[], None).await });

    // While writes fail the job is not complete anywhere, and no webhook
    // has gone out.
    let waited = app
        .client
        .get(&format!("/jobs/{id}?wait_for=completed&wait_ms=300"))
        .await;
    assert_eq!(waited.status, 408, "{}", waited.text);
    assert_eq!(waited.body["job"]["status"], "running");
    assert!(rx.try_next().is_none());

    // Space returns: the retried write commits, the job completes, the
    // admin call answers, and the webhook is sent.
    app.store
        .write(|c| c.execute_batch("DROP TRIGGER temp.disk_full"))
        .await
        .unwrap();
    let done = app.client.wait_status(&id, "completed").await;
    assert_eq!(done["status"], "completed");
    let r = tokio::time::timeout(Duration::from_secs(10), complete)
        .await
        .expect("the admin call answers")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let hook = rx.next().await;
    assert_eq!(hook.json()["camber_job_id"], id.as_str());
    app.client.wait_delivery(&id, "delivered").await;
}

fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Rejected submits with 64 KB bodies used to be kept whole, as parsed JSON
/// (~35× their size): 1,000 of them took the mock to gigabytes. Now each
/// body is kept raw and truncated, and the journal holds at most
/// --journal-bytes.
#[actix_web::test]
async fn the_request_journal_is_bounded_by_bytes_and_keeps_bodies_raw_and_truncated() {
    let app = spawn_app_with(|s| s.journal_bytes = 1024 * 1024).await;
    let big = format!(
        r#"{{"app": 1, "input": {{"blob": "{}"}}}}"#,
        "x".repeat(64 * 1024)
    );
    for _ in 0..300 {
        let r = app
            .client
            .send("POST", "/jobs", &[], Some(big.clone().into_bytes()))
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
    }
    let metrics = app.client.get("/metrics").await.text;
    let held = gauge(&metrics, "mock_camber_journal_bytes");
    assert!(held <= 1024 * 1024, "journal holds {held} bytes");
    assert!(held > 512 * 1024, "it keeps what fits: {held}");

    let page = app.client.get("/_mock/requests?limit=500").await;
    let entries = page.body["requests"].as_array().unwrap();
    assert!(entries.len() < 300, "the oldest went: {}", entries.len());
    let body = &entries[0]["body"];
    assert_eq!(body["truncated"], true, "{body}");
    assert_eq!(body["bytes"], big.len());
    assert!(body["excerpt"]
        .as_str()
        .unwrap()
        .starts_with(r#"{"app": 1"#));

    // Small bodies are still shown as the JSON they are.
    app.client
        .create(json!({"app": "x", "input": {"n": 1}}))
        .await;
    let newest = &app.client.journal().await[0];
    assert_eq!(newest["body"]["input"]["n"], 1, "{newest}");
}

#[actix_web::test]
async fn a_full_database_answers_503_with_retry_after_and_creates_nothing() {
    let app = spawn_app().await;
    // A real SQLITE_FULL: the database may not grow past its current size.
    app.store
        .write(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        })
        .await
        .unwrap();
    let pad = "x".repeat(8_000);
    let mut refused = None;
    let mut created = 0;
    for i in 0..500 {
        let r = app
            .client
            .submit(json!({"app": "x", "input": {"pad": pad, "i": i}}))
            .await;
        match r.status {
            201 => created += 1,
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let r = refused.expect("the database filled up within 500 submits of 8 KB");
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
    // Nothing half-written: only the acknowledged jobs exist.
    let listed = app.client.get("/jobs?limit=500").await.body["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, created);
    // Space returns: submits succeed again.
    app.store
        .write(|c| c.query_row("PRAGMA max_page_count = 1073741823", [], |_| Ok(())))
        .await
        .unwrap();
    app.client.create(json!({"app": "x", "input": {}})).await;
}
