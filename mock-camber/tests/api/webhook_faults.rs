//! Webhook faults a scenario asks for, as a receiver sees them (the older
//! ones, drop, duplicate, delay and bad_signature, are in `webhooks.rs`).

use serde_json::json;
use shared::signing::verify_hex;

use crate::helpers::*;

#[actix_web::test]
async fn a_content_type_fault_sends_the_genuine_body_as_text_plain() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["mock"] = json!({"webhook": {"content_type": "text/plain"}});
    let id = app.client.create(body).await;
    let hook = rx.next().await;
    assert_eq!(hook.header("content-type"), "text/plain");
    // The body and its signatures are the genuine ones.
    assert_eq!(hook.json()["camber_job_id"], id.as_str());
    assert!(verify_hex(
        SECRET.as_bytes(),
        &hook.body,
        hook.header("x-webhook-secret")
    ));
    // The console shows the header the attempt carried.
    app.client.wait_delivery(&id, "delivered").await;
    let story = app.client.get(&format!("/_mock/jobs/{id}")).await;
    let headers = &story.body["deliveries"][0]["attempts"][0]["headers"];
    assert!(
        headers
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "content-type" && h[1] == "text/plain"),
        "{headers}"
    );
    // A value that is no header value is refused at submit.
    let mut bad = job_to(&rx.url);
    bad["metadata"]["mock"] = json!({"webhook": {"content_type": "a\nb"}});
    let res = app.client.post("/jobs", bad).await;
    assert_eq!(res.status, 422, "{}", res.body);
}

/// A manual redeliver is one attempt of its own kind, outside the retry
/// schedule: a delivered webhook sent again to a receiver that now fails is
/// dead after that one attempt, with no retry scheduled.
#[actix_web::test]
async fn a_manual_redeliver_that_fails_is_dead_at_once_without_a_retry() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let id = app.client.create(job_to(&rx.url)).await;
    rx.next().await;
    let d = app.client.wait_delivery(&id, "delivered").await;
    rx.always(500);
    let r = app
        .client
        .post(
            &format!("/_mock/deliveries/{}/redeliver", d["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["state"], "pending", "no attempt of it has failed");
    assert_eq!(rx.next().await.header("x-camber-attempt"), "2");
    let dead = app.client.wait_delivery(&id, "dead").await;
    let attempts = dead["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{dead}");
    assert_eq!(attempts[1]["status"], 500);
    assert!(rx.try_next().is_none(), "no retry of a manual attempt");
}
