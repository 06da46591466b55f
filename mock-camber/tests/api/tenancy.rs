//! Authentication and tenancy (bearer API keys): a key sees only its own jobs.

use serde_json::json;
use shared::signing::{verify_hex, verify_standard};

use crate::helpers::*;

async fn two_tenants() -> (TestApp, Client, Client) {
    let app = spawn_app_with(|s| s.api_keys = vec!["key-a".into(), "key-b".into()]).await;
    let a = app.client.with_key("key-a");
    let b = app.client.with_key("key-b");
    (app, a, b)
}

#[actix_web::test]
async fn another_tenant_cannot_see_list_or_cancel_a_job() {
    let (_app, a, b) = two_tenants().await;
    let id = a
        .create(json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}}))
        .await;
    let r = b.get(&format!("/jobs/{id}")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "NOT_FOUND");
    assert_eq!(b.get("/jobs").await.body["jobs"], json!([]));
    assert_eq!(
        b.post(&format!("/jobs/{id}/cancel"), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(b.get(&format!("/jobs/{id}/logs")).await.status, 404);
    // Still running for its owner.
    assert_eq!(a.job(&id).await["status"], "running");
    assert_eq!(
        a.get("/jobs").await.body["jobs"].as_array().unwrap().len(),
        1
    );
}

#[actix_web::test]
async fn no_key_or_an_unknown_key_is_401() {
    let (_app, a, _) = two_tenants().await;
    for c in [a.with_key(""), a.with_key("key-c")] {
        let r = c.submit(json!({"app": "x", "input": {}})).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"]["code"], "UNAUTHENTICATED");
        assert_eq!(c.get("/jobs").await.status, 401);
    }
}

#[actix_web::test]
async fn with_no_key_configured_any_token_is_its_own_tenant() {
    let app = spawn_app().await;
    let one = app.client.with_key("anything");
    let two = app.client.with_key("something-else");
    let id = one.create(json!({"app": "x", "input": {}})).await;
    assert_eq!(one.get(&format!("/jobs/{id}")).await.status, 200);
    assert_eq!(two.get(&format!("/jobs/{id}")).await.status, 404);
    assert_eq!(app.client.with_key("").get("/jobs").await.status, 401);
}

/// `--api-key KEY=SECRET`: that tenant's webhooks are signed with its own
/// secret (both schemes), never the global one, so tenants of a shared mock
/// cannot sign for each other; a tenant without one keeps the global secret.
#[actix_web::test]
async fn a_tenant_with_its_own_secret_has_its_webhooks_signed_with_it() {
    let app = spawn_app_with(|s| {
        s.api_keys = vec!["key-a=secret-of-a".into(), "key-b".into()];
    })
    .await;
    let mut rx = Receiver::start().await;

    app.client.with_key("key-a").create(job_to(&rx.url)).await;
    let hook = rx.next().await;
    let sig = hook.header("x-webhook-secret");
    assert!(verify_hex(b"secret-of-a", &hook.body, sig));
    assert!(!verify_hex(SECRET.as_bytes(), &hook.body, sig));
    let ts: i64 = hook.header("webhook-timestamp").parse().unwrap();
    let std = hook.header("webhook-signature");
    assert!(verify_standard(
        "secret-of-a",
        hook.header("webhook-id"),
        ts,
        &hook.body,
        std
    ));
    assert!(!verify_standard(
        SECRET,
        hook.header("webhook-id"),
        ts,
        &hook.body,
        std
    ));

    app.client.with_key("key-b").create(job_to(&rx.url)).await;
    let hook = rx.next().await;
    assert!(verify_hex(
        SECRET.as_bytes(),
        &hook.body,
        hook.header("x-webhook-secret")
    ));

    // The key is the part before `=`: the whole entry is not a key.
    let r = app
        .client
        .with_key("key-a=secret-of-a")
        .submit(json!({"app": "x", "input": {}}))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}
