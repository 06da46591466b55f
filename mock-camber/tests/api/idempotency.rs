//! `Idempotency-Key` on submit: a repeat replays the first answer, another
//! body is 409, keys are per tenant, concurrent repeats create one job.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn the_same_key_and_body_replays_the_original_response() {
    let app = spawn_app().await;
    let body = json!({"app": "x", "input": {"n": 1}});
    let key = [("Idempotency-Key", "job-123")];
    let first = app.client.submit_with(body.clone(), &key).await;
    assert_eq!(first.status, 201);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    let second = app.client.submit_with(body, &key).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.body, first.body);
    assert_eq!(
        app.client.get("/jobs").await.body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn the_same_key_with_another_body_is_409() {
    let app = spawn_app().await;
    let key = [("Idempotency-Key", "job-123")];
    app.client
        .submit_with(json!({"app": "x", "input": {"n": 1}}), &key)
        .await;
    let r = app
        .client
        .submit_with(json!({"app": "x", "input": {"n": 2}}), &key)
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        app.client.get("/jobs").await.body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn keys_are_per_tenant() {
    let app = spawn_app().await;
    let body = json!({"app": "x", "input": {}});
    let key = [("Idempotency-Key", "shared-key")];
    let a = app
        .client
        .with_key("tenant-a")
        .submit_with(body.clone(), &key)
        .await;
    let b = app
        .client
        .with_key("tenant-b")
        .submit_with(body, &key)
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.body["id"], b.body["id"]);
}

#[actix_web::test]
async fn concurrent_submits_with_one_key_create_one_job() {
    let app = spawn_app().await;
    let body = json!({"app": "x", "input": {}});
    let calls = (0..20).map(|_| {
        let c = app.client.clone();
        let b = body.clone();
        async move { c.submit_with(b, &[("Idempotency-Key", "race")]).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        app.client.get("/jobs").await.body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
