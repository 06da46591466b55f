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

    let mock = MockCamber::start_with(MockOptions {
        port,
        ..MockOptions::default()
    });
    assert_eq!(mock.port, port);
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

    let mock = MockCamber::start_with(MockOptions {
        port,
        ..MockOptions::default()
    });
    let app = app
        .restart(AppOptions {
            camber_uri: down,
            ..AppOptions::default()
        })
        .await;
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(event_path(&job).last().unwrap(), "completed");
    assert_eq!(mock.submits().await.len(), 1);
}

#[actix_web::test]
async fn submits_refused_with_5xx_or_429_are_retried_under_one_idempotency_key() {
    let mock = MockCamber::start_with(MockOptions {
        extra: vec!["--submit-error-rate".into(), "1".into()],
        ..MockOptions::default()
    });
    let app = spawn_app_with(AppOptions {
        camber_uri: mock.uri.clone(),
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
