//! The webhook sent when a job ends: body and key order, both signatures,
//! headers, and the webhook scenario modes. Retries, dead letters and
//! redeliver are in `webhook_retries`.

use serde_json::{json, Value};
use shared::signing::{verify_hex, verify_standard};
use shared::wire::compact_json;

use crate::helpers::*;

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_python_isoformat(ts: &str) -> bool {
    // 2026-01-26T10:30:45.123456
    ts.len() == 26
        && ts.as_bytes()[10] == b'T'
        && ts.as_bytes()[19] == b'.'
        && chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
}

#[actix_web::test]
async fn success_webhook_has_the_contract_body_in_key_order_with_python_compatible_bytes() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let id = app.client.create(job_to(&rx.url)).await;

    let hook = rx.next().await;
    let body = hook.json();
    assert_eq!(
        keys(&body),
        ["camber_job_id", "job_id", "status", "timestamp", "result"]
    );
    assert_eq!(body["camber_job_id"], id.as_str());
    assert_eq!(body["job_id"], "job-1");
    assert_eq!(body["status"], "success");
    assert!(
        is_python_isoformat(body["timestamp"].as_str().unwrap()),
        "{}",
        body["timestamp"]
    );
    assert_eq!(keys(&body["result"]), ["status", "job_id", "result"]);
    assert_eq!(body["result"]["status"], "SUCCESS");
    assert_eq!(body["result"]["job_id"], "job-1");
    assert_eq!(
        keys(&body["result"]["result"]),
        [
            "structured",
            "confidence",
            "quality_score",
            "page_count",
            "processing_time_ms"
        ]
    );
    // json.dumps(body, separators=(",", ":")) gives these very bytes.
    assert_eq!(compact_json(&body), hook.body.to_vec());
    assert_eq!(hook.header("content-type"), "application/json");
    assert_eq!(hook.header("content-length"), hook.body.len().to_string());
    assert_eq!(hook.header("x-camber-event"), "job.completed");
    assert_eq!(hook.header("x-camber-attempt"), "1");
    assert!(hook.header("x-camber-delivery-id").starts_with("dlv_"));
    assert_eq!(
        hook.header("webhook-id"),
        hook.header("x-camber-delivery-id")
    );

    let job = app.client.wait_status(&id, "completed").await;
    assert_eq!(job["result"], body["result"]["result"]);
    let job = wait_for("webhook state delivered", 10, || async {
        let j = app.client.job(&id).await;
        (j["webhook"]["state"] == "delivered").then_some(j)
    })
    .await;
    assert_eq!(job["webhook"]["attempts"], 1);
    assert_eq!(job["webhook"]["url"], rx.url.as_str());
}

#[actix_web::test]
async fn both_signature_schemes_verify_over_the_raw_body() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    app.client.create(job_to(&rx.url)).await;
    let hook = rx.next().await;

    assert!(verify_hex(
        SECRET.as_bytes(),
        &hook.body,
        hook.header("x-webhook-secret")
    ));
    let ts: i64 = hook.header("webhook-timestamp").parse().unwrap();
    assert!(verify_standard(
        SECRET,
        hook.header("webhook-id"),
        ts,
        &hook.body,
        hook.header("webhook-signature")
    ));
    assert!(!verify_hex(
        b"another-secret",
        &hook.body,
        hook.header("x-webhook-secret")
    ));
}

/// Secret rotation (Standard Webhooks): the first secret is current and
/// keys X-Webhook-Secret; webhook-signature carries one entry per secret, so
/// a receiver still on the old one verifies during the overlap.
#[actix_web::test]
async fn during_a_rotation_receivers_on_either_secret_verify() {
    const OLD: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let app = spawn_app_with(|s| s.webhook_secrets = vec![SECRET.into(), OLD.into()]).await;
    let mut rx = Receiver::start().await;
    app.client.create(job_to(&rx.url)).await;
    let hook = rx.next().await;

    let sig = hook.header("x-webhook-secret");
    assert!(
        verify_hex(SECRET.as_bytes(), &hook.body, sig),
        "keyed with the current secret"
    );
    assert!(!verify_hex(OLD.as_bytes(), &hook.body, sig));
    let ts: i64 = hook.header("webhook-timestamp").parse().unwrap();
    let std = hook.header("webhook-signature");
    assert_eq!(std.split(' ').count(), 2, "{std}");
    assert!(std.split(' ').all(|e| e.starts_with("v1,")), "{std}");
    for secret in [SECRET, OLD] {
        assert!(
            verify_standard(secret, hook.header("webhook-id"), ts, &hook.body, std),
            "{secret} verifies"
        );
    }
    assert!(!verify_standard(
        "whsec_AAAA",
        hook.header("webhook-id"),
        ts,
        &hook.body,
        std
    ));
}

#[actix_web::test]
async fn failure_webhook_carries_the_error_code_stage_and_reason() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["mock"] = json!({"outcome": "failure", "error": {"code": "OCR_FAILURE", "stage": "OCR", "reason": "No text detected in image"}});
    let id = app.client.create(body).await;

    let hook = rx.next().await;
    let b = hook.json();
    assert_eq!(
        keys(&b),
        ["camber_job_id", "job_id", "status", "timestamp", "result"]
    );
    assert_eq!(b["status"], "failed");
    assert_eq!(keys(&b["result"]), ["status", "job_id", "error"]);
    assert_eq!(b["result"]["status"], "FAILED");
    assert_eq!(
        b["result"]["error"],
        json!({"code": "OCR_FAILURE", "stage": "OCR", "details": {"reason": "No text detected in image"}})
    );
    assert_eq!(keys(&b["result"]["error"]), ["code", "stage", "details"]);
    assert_eq!(hook.header("x-camber-event"), "job.failed");
    let job = app.client.wait_status(&id, "failed").await;
    assert_eq!(job["error"]["code"], "OCR_FAILURE");
    assert_eq!(job["error"]["stage"], "OCR");
    assert!(job.get("result").is_none());
}

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

#[actix_web::test]
async fn caller_headers_are_added_and_win_over_ours() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["webhook"]["headers"] =
        json!({"X-Extra": "v", "X-Webhook-Secret": "shared-static-secret"});
    app.client.create(body).await;
    let hook = rx.next().await;
    assert_eq!(hook.header("x-extra"), "v");
    assert_eq!(hook.header("x-webhook-secret"), "shared-static-secret");
    assert!(hook.header("webhook-signature").starts_with("v1,"));
}

#[actix_web::test]
async fn the_default_webhook_url_serves_jobs_that_name_none() {
    let mut rx = Receiver::start().await;
    let url = rx.url.clone();
    let app = spawn_app_with(|s| s.webhook_url = Some(url)).await;
    let id = app.client.create(json!({"app": "a", "input": {}})).await;
    let hook = rx.next().await;
    // Without metadata.job_id the webhook's job_id is the Camber id.
    assert_eq!(hook.json()["job_id"], id.as_str());
}

#[actix_web::test]
async fn a_job_with_no_webhook_url_anywhere_runs_and_sends_nothing() {
    let app = spawn_app().await;
    let id = app.client.create(json!({"app": "a", "input": {}})).await;
    let job = app.client.wait_status(&id, "completed").await;
    assert!(job["webhook"].is_null());
}

#[actix_web::test]
async fn non_ascii_ids_are_escaped_and_the_signature_covers_the_exact_bytes() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let mut body = job_to(&rx.url);
    body["metadata"]["job_id"] = json!("facture-é-😀");
    app.client.create(body).await;
    let hook = rx.next().await;
    let text = std::str::from_utf8(&hook.body).unwrap();
    assert!(text.is_ascii());
    assert!(
        text.contains(r#""job_id":"facture-\u00e9-\ud83d\ude00""#),
        "{text}"
    );
    assert!(verify_hex(
        SECRET.as_bytes(),
        &hook.body,
        hook.header("x-webhook-secret")
    ));
    assert_eq!(hook.json()["job_id"], "facture-é-😀");
}
