//! The bounded outbox: with room for only two pending deliveries in memory,
//! the rest wait in SQLite and are paged in by due time; nothing is lost,
//! nothing is sent twice, retries keep their place in the schedule, and a
//! restart resumes a parked backlog.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use shared::retry::Schedule;

use crate::helpers::*;

fn queue_depth(metrics: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("mock_camber_webhook_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .expect("queue depth in /metrics")
}

#[actix_web::test]
async fn with_room_for_two_every_webhook_is_delivered_once() {
    let app = spawn_app_with(|s| s.max_loaded_deliveries = 2).await;
    let mut rx = Receiver::start().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(app.client.create(job_to(&rx.url)).await);
    }
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let hook = rx.next().await;
        assert!(
            seen.insert(hook.header("x-camber-delivery-id").to_owned()),
            "sent twice: {}",
            hook.header("x-camber-delivery-id")
        );
    }
    for id in &ids {
        let d = app.client.wait_delivery(id, "delivered").await;
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
    }
    assert_eq!(queue_depth(&app.client.get("/metrics").await.text), 0);
    assert!(rx.try_next().is_none(), "no extra webhook");
}

#[actix_web::test]
async fn parked_retries_keep_their_schedule_until_dead() {
    let app = spawn_app_with(|s| {
        s.max_loaded_deliveries = 2;
        s.retry_schedule = Schedule(vec![Duration::from_millis(20), Duration::from_millis(40)]);
    })
    .await;
    let rx = Receiver::start().await;
    rx.always(503);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(app.client.create(job_to(&rx.url)).await);
    }
    for id in &ids {
        let d = app.client.wait_delivery(id, "dead").await;
        let statuses: Vec<_> = d["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].clone())
            .collect();
        assert_eq!(statuses, [json!(503), json!(503), json!(503)], "{d}");
    }
    assert_eq!(queue_depth(&app.client.get("/metrics").await.text), 0);
}

#[actix_web::test]
async fn a_restart_pages_a_parked_backlog_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let args = [
        "--port",
        "0",
        "--db",
        db.to_str().unwrap(),
        "--stage-ms",
        "0",
        "--api-key",
        "k",
        "--retry-schedule",
        "300ms",
        "--max-loaded-deliveries",
        "2",
    ];
    // The receiver refuses every first attempt: six webhooks stay pending.
    let mut rx = Receiver::start().await;
    rx.always(503);
    let mut mock = MockProcess::start(&args);
    let client = mock.client("k");
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(client.create(job_to(&rx.url)).await);
    }
    let mut pending = HashSet::new();
    while pending.len() < 6 {
        pending.insert(rx.next().await.header("x-camber-delivery-id").to_owned());
    }
    mock.kill9();

    // Restarted with room for two, the receiver now answering 200: the
    // backlog is paged in and every pending webhook is delivered.
    rx.always(200);
    let mock = MockProcess::start(&args);
    let client = mock.client("k");
    let mut delivered = HashSet::new();
    while delivered.len() < 6 {
        let hook = rx.next().await;
        delivered.insert(hook.header("x-camber-delivery-id").to_owned());
    }
    assert_eq!(delivered, pending);
    for id in &ids {
        client.wait_delivery(id, "delivered").await;
    }
    assert_eq!(queue_depth(&client.get("/metrics").await.text), 0);
}
