//! Authentication and tenancy (SPEC §2): a key sees only its own jobs.

use serde_json::json;

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
