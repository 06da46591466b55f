//! The background submitter: Camber down at submit time, retry budget.

use std::time::Duration;

use crate::helpers::*;

#[actix_web::test]
async fn a_job_created_while_camber_is_down_completes_once_the_mock_starts() {
    let port = free_port();
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{port}"),
        // 30 s of patience at 50 ms steps.
        extra: vec![
            "--submit-retry-schedule".into(),
            vec!["50ms"; 600].join(","),
        ],
        ..AppOptions::default()
    })
    .await;

    let (code, created) = app.post_job(&job_body("late.pdf")).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"], "pending");
    let id = created["job_id"].as_str().unwrap().to_owned();
    let (_, job) = app.get_job(&id).await;
    assert_eq!(job["status"], "pending");
    assert_eq!(job["camber_job_id"], serde_json::Value::Null);

    let mock = start_mock_with(|m| m.port(port)).await;
    assert_eq!(mock.port(), port);
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(30))
        .await;
    assert_eq!(event_path(&job).first().unwrap(), "pending");
    assert_eq!(event_path(&job).last().unwrap(), "completed");

    let submits = mock.submits().await;
    assert_eq!(submits.len(), 1, "one Camber job: {submits:?}");
    assert_eq!(submits[0]["body"]["metadata"]["job_id"], id.as_str());
}

#[actix_web::test]
async fn a_job_fails_with_camber_unavailable_after_the_retry_budget() {
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{}", free_port()),
        extra: vec!["--submit-retry-schedule".into(), "10ms,10ms".into()],
        ..AppOptions::default()
    })
    .await;
    let id = app.create_job("never.pdf").await;
    let job = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;
    assert_eq!(job["error"]["code"], "CAMBER_UNAVAILABLE", "{job}");
    assert_eq!(job["error"]["stage"], "SUBMIT", "{job}");
    assert_eq!(job["error"]["details"]["attempts"], 3, "{job}");
    assert!(job["error"]["details"]["reason"].is_string(), "{job}");
    assert_eq!(event_path(&job), ["pending", "failed"]);
}

#[actix_web::test]
async fn a_pending_job_is_submitted_after_a_restart() {
    let port = free_port();
    let down = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(AppOptions {
        camber_uri: down.clone(),
        // Far in the future: only the restart can make it due.
        extra: vec!["--submit-retry-schedule".into(), "1h".into()],
        ..AppOptions::default()
    })
    .await;
    let id = app.create_job("restart.pdf").await;
    let (_, job) = app.get_job(&id).await;
    assert_eq!(job["status"], "pending");

    let mock = start_mock_with(|m| m.port(port)).await;
    let app = app
        .restart(AppOptions {
            camber_uri: down,
            ..AppOptions::default()
        })
        .await;
    // The new instance submits (with its own callback URL): the old one's
    // loops have stopped before the new one released the job.
    let submit = wait_until(Duration::from_secs(15), "the submit", || async {
        mock.submits().await.into_iter().next()
    })
    .await;
    assert_eq!(
        submit["body"]["webhook"]["url"],
        format!("{}/internal/webhooks/camber", app.address).as_str(),
        "{submit}"
    );
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(event_path(&job).last().unwrap(), "completed");
    assert_eq!(mock.submits().await.len(), 1);
}

#[actix_web::test]
async fn submits_refused_with_5xx_or_429_are_retried_under_one_idempotency_key() {
    let mock = start_mock_with(|m| m.settings(|s| s.submit_error_rate = 1.0)).await;
    let app = spawn_app_with(AppOptions {
        camber_uri: mock.uri().to_owned(),
        extra: vec![
            "--submit-retry-schedule".into(),
            vec!["20ms"; 500].join(","),
        ],
        ..AppOptions::default()
    })
    .await;
    let (code, created) = app.post_job(&job_body("busy.pdf")).await;
    assert_eq!(
        (code, &created["status"]),
        (201, &serde_json::json!("pending"))
    );
    let id = created["job_id"].as_str().unwrap().to_owned();

    // Let a few refused attempts happen, then let Camber accept.
    wait_until(Duration::from_secs(15), "two refused submits", || async {
        (mock.submits().await.len() >= 2).then_some(())
    })
    .await;
    mock.put_config(serde_json::json!({"submit_error_rate": 0.0}))
        .await;
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(30))
        .await;
    assert_eq!(event_path(&job).last().unwrap(), "completed");

    let submits = mock.submits().await;
    assert!(submits.len() >= 3, "{} submits", submits.len());
    assert!(submits
        .iter()
        .all(|r| r["body"]["metadata"]["job_id"] == id.as_str()));
    assert_eq!(mock.jobs().await.len(), 1, "one Camber job");
}

/// Stopping the api stops its background loops before `run_until_stopped`
/// returns: a submit in flight finishes and is recorded, so a new instance
/// on the same database never runs alongside a live submitter of the old
/// one.
#[actix_web::test]
async fn stopping_the_api_waits_for_a_submit_in_flight() {
    let port = free_port();
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{port}"),
        extra: vec!["--submit-retry-schedule".into(), "1h".into()],
        ..AppOptions::default()
    })
    .await;
    let id = app.create_job("in-flight.pdf").await;
    let mock = start_mock_with(|m| {
        m.port(port)
            // The Camber job stays running: no webhook finishes it meanwhile.
            .stage_time(Duration::from_millis(600_000))
    })
    .await;
    // Camber takes 2 s to answer a submit (the job exists at once).
    mock.put_config(serde_json::json!({"latency_ms": 2000}))
        .await;
    let app = app
        .restart(AppOptions {
            camber_uri: mock.uri().to_owned(),
            ..AppOptions::default()
        })
        .await;
    wait_until(Duration::from_secs(15), "the submit in flight", || async {
        (!mock.jobs().await.is_empty()).then_some(())
    })
    .await;
    let dir = app.stop().await;

    let db = rusqlite::Connection::open(dir.path().join("api.db")).unwrap();
    let (status, camber_id): (String, Option<String>) = db
        .query_row(
            "SELECT status, camber_job_id FROM jobs WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // `pending` is the stop that left the submit behind.
    assert_eq!(status, "processing", "the submit finished before the stop");
    assert_eq!(
        camber_id.as_deref(),
        mock.jobs().await[0]["id"].as_str(),
        "its Camber id recorded"
    );
}
