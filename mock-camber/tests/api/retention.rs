//! `--retention`: with a 1 s window, finished jobs go with their deliveries,
//! attempts and idempotency records; held jobs and pending webhooks stay.
//! Observed by polling with a deadline, never by sleeping.

use std::time::Duration;

use serde_json::{json, Value};
use shared::retry::Schedule;

use crate::helpers::*;

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[actix_web::test]
async fn finished_jobs_go_after_the_window_and_held_or_undelivered_ones_stay() {
    let app = spawn_app_with(|s| {
        s.retention = Duration::from_secs(1);
        // The undelivered webhook must stay pending through the test.
        s.retry_schedule = Schedule(vec![Duration::from_secs(600)]);
    })
    .await;
    let mut rx = Receiver::start().await;

    // Older than the job that will be removed: a held (running) job, and
    // one that finished first but whose webhook is still pending. The sweep
    // that removes the later job has seen both past the window.
    let held = app
        .client
        .create(json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}}))
        .await;
    let undelivered = app
        .client
        .create(job_to("http://127.0.0.1:1/nobody-listens"))
        .await;
    app.client.wait_status(&undelivered, "completed").await;

    let key = [("Idempotency-Key", "retention-1")];
    let done = app.client.submit_with(job_to(&rx.url), &key).await;
    assert_eq!(done.status, 201, "{}", done.text);
    let done = done.body["id"].as_str().unwrap().to_owned();
    rx.next().await;
    app.client.wait_delivery(&done, "delivered").await;

    wait_for("the finished job to be removed", 10, || async {
        (app.client.get(&format!("/jobs/{done}")).await.status == 404).then_some(())
    })
    .await;
    let deliveries = app
        .client
        .get(&format!("/_mock/deliveries?job_id={done}"))
        .await;
    assert_eq!(
        deliveries.body["deliveries"],
        json!([]),
        "{}",
        deliveries.text
    );

    // Its idempotency record goes too (by its own age, whole seconds): then
    // the same key makes a new job.
    wait_for("the idempotency record to be removed", 10, || async {
        let metrics = app.client.get("/metrics").await.text;
        (metric(
            &metrics,
            "mock_camber_retention_removed_total{kind=\"idempotency\"}",
        ) >= 1)
            .then_some(())
    })
    .await;
    let again = app.client.submit_with(job_to(&rx.url), &key).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert!(!again.headers.contains_key("idempotent-replayed"));
    assert_ne!(again.body["id"], Value::from(done.as_str()));

    // The held job and the one whose webhook is pending stay.
    assert_eq!(app.client.job(&held).await["status"], "running");
    // Refused, so retrying: `failing`.
    let pending = app.client.wait_delivery(&undelivered, "failing").await;
    assert_eq!(pending["state"], "failing");
    assert_eq!(app.client.job(&undelivered).await["status"], "completed");

    let metrics = app.client.get("/metrics").await.text;
    for kind in ["jobs", "deliveries", "attempts", "idempotency"] {
        let name = format!("mock_camber_retention_removed_total{{kind=\"{kind}\"}}");
        assert!(metric(&metrics, &name) >= 1, "{name}");
    }
}

#[actix_web::test]
async fn a_held_job_keeps_its_idempotency_key_past_the_retention_window() {
    let app = spawn_app_with(|s| s.retention = Duration::from_secs(1)).await;
    let held_body = json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}});
    let key = [("Idempotency-Key", "held-key")];
    let held = app.client.submit_with(held_body.clone(), &key).await;
    assert_eq!(held.status, 201, "{}", held.text);
    let held = held.body["id"].as_str().unwrap().to_owned();

    // A job created after it that finishes at once: once its idempotency
    // record is swept, every sweep since has seen the held job's record
    // past the window too.
    let later_key = [("Idempotency-Key", "finished-key")];
    let later = app
        .client
        .submit_with(json!({"app": "x", "input": {}}), &later_key)
        .await;
    assert_eq!(later.status, 201, "{}", later.text);
    wait_for(
        "the finished job's idempotency record to go",
        15,
        || async {
            let metrics = app.client.get("/metrics").await.text;
            (metric(
                &metrics,
                "mock_camber_retention_removed_total{kind=\"idempotency\"}",
            ) >= 1)
                .then_some(())
        },
    )
    .await;

    let again = app.client.submit_with(held_body, &key).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );
    assert_eq!(again.body["id"], Value::from(held.as_str()));
    assert_eq!(app.client.job(&held).await["status"], "running");
}
