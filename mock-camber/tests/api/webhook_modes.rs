//! The webhook scenario modes a job's `metadata.mock.webhook` picks:
//! duplicate, drop, a bad signature, a delayed first attempt.

use serde_json::json;
use shared::signing::{verify_hex, verify_standard};

use crate::helpers::*;

#[actix_web::test]
async fn duplicate_mode_delivers_the_same_event_twice() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["mock"] = json!({"webhook": {"mode": "duplicate"}});
    let id = app.client.create(body).await;

    let a = rx.next().await;
    let b = rx.next().await;
    assert_eq!(a.body, b.body);
    assert_eq!(a.header("webhook-id"), b.header("webhook-id"));
    assert_eq!(b.header("x-camber-attempt"), "2");
    let d = app.client.wait_delivery(&id, "delivered").await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 2);
    assert!(rx.try_next().is_none());
}

#[actix_web::test]
async fn drop_mode_sends_nothing_and_the_job_is_still_pollable_as_finished() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut dropped = job_to(&rx.url);
    dropped["metadata"]["mock"] = json!({"webhook": {"mode": "drop"}});
    let dropped_id = app.client.create(dropped).await;
    let job = app.client.wait_status(&dropped_id, "completed").await;
    assert_eq!(job["webhook"]["state"], "dropped");
    assert_eq!(job["webhook"]["attempts"], 0);
    let ds = app
        .client
        .get(&format!("/_mock/deliveries?job_id={dropped_id}"))
        .await;
    assert_eq!(ds.body["deliveries"], json!([]));

    // A later job's webhook is the first thing the receiver sees.
    let later = app.client.create(job_to(&rx.url)).await;
    assert_eq!(rx.next().await.json()["camber_job_id"], later.as_str());
}

#[actix_web::test]
async fn bad_signature_mode_sends_signatures_that_do_not_verify() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["mock"] = json!({"webhook": {"bad_signature": true}});
    app.client.create(body).await;
    let hook = rx.next().await;
    assert!(!verify_hex(
        SECRET.as_bytes(),
        &hook.body,
        hook.header("x-webhook-secret")
    ));
    let ts: i64 = hook.header("webhook-timestamp").parse().unwrap();
    assert!(!verify_standard(
        SECRET,
        hook.header("webhook-id"),
        ts,
        &hook.body,
        hook.header("webhook-signature")
    ));
}

#[actix_web::test]
async fn delay_mode_holds_the_first_attempt_back() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["mock"] = json!({"webhook": {"mode": "delay", "delay_ms": 300}});
    let id = app.client.create(body).await;
    rx.next().await;
    let job = app.client.job(&id).await;
    let d = app.client.wait_delivery(&id, "delivered").await;
    let finished =
        chrono::DateTime::parse_from_rfc3339(job["finished_at"].as_str().unwrap()).unwrap();
    let sent =
        chrono::DateTime::parse_from_rfc3339(d["attempts"][0]["at"].as_str().unwrap()).unwrap();
    assert!(
        sent - finished >= chrono::Duration::milliseconds(290),
        "sent {sent}, finished {finished}"
    );
}
