//! `POST /internal/webhooks/camber`: signature, idempotency, state machine, race.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use shared::WebhookBody;
use tokio::sync::{mpsc, Notify};

use crate::helpers::*;

fn success_body(camber_id: &str, job_id: &str) -> Vec<u8> {
    WebhookBody::success(
        camber_id,
        job_id,
        "2026-01-26T10:30:45.123456".into(),
        json!({"structured": {"field_1": "other"}, "quality_score": 0.5}),
    )
    .to_bytes()
}

/// A job held `processing` on the mock, with its Camber id.
async fn held_job(mock: &MockCamber, app: &TestApp) -> (String, String) {
    mock.set_rules(json!([{"match": {"/input/filename": "/hold/"}, "scenario": {"hold": true}}]))
        .await;
    let id = app.create_job("hold.pdf").await;
    let job = app
        .wait_for_status(&id, "processing", Duration::from_secs(5))
        .await;
    (id, job["camber_job_id"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn a_duplicate_webhook_is_acknowledged_as_a_duplicate_and_changes_nothing() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let id = app.create_job("a.pdf").await;
    let before = app
        .wait_for_status(&id, "completed", Duration::from_secs(10))
        .await;
    let camber_id = before["camber_job_id"].as_str().unwrap();

    let (code, body) = app.post_signed_webhook(success_body(camber_id, &id)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"acknowledged": true, "duplicate": true}));
    let failure = WebhookBody::failure(
        camber_id,
        &id,
        "2026-01-26T10:30:45.123456".into(),
        shared::WebhookError {
            code: "OCR_FAILURE".into(),
            stage: "OCR".into(),
            details: json!({}),
        },
    )
    .to_bytes();
    let (code, body) = app.post_signed_webhook(failure).await;
    assert_eq!((code, &body["duplicate"]), (200, &json!(true)));

    let (_, after) = app.get_job(&id).await;
    assert_eq!(after, before);
}

#[actix_web::test]
async fn a_signed_webhook_declared_as_anything_but_json_is_415_and_changes_nothing() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let (id, camber_id) = held_job(&mock, &app).await;
    let body = success_body(&camber_id, &id);
    let sig = shared::signing::sign_hex(SECRET.as_bytes(), &body);
    let post = |content_type: Option<&'static str>| {
        let mut req = app
            .http
            .post(format!("{}/internal/webhooks/camber", app.address))
            .insert_header((shared::headers::WEBHOOK_SECRET, sig.clone()));
        if let Some(ct) = content_type {
            req = req.insert_header(("content-type", ct));
        }
        let body = body.clone();
        async move { reply(req.send_body(body).await).await }
    };
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/json",
    ] {
        let (code, reply) = post(Some(ct)).await;
        assert_eq!(code, 415, "{ct}: {reply}");
        assert_eq!(reply["error"]["code"], "UNSUPPORTED_MEDIA_TYPE", "{reply}");
        let (_, job) = app.get_job(&id).await;
        assert_eq!(job["status"], "processing", "{ct} changed the job: {job}");
    }
    // A JSON media type with parameters, in any case, is JSON.
    let (code, reply) = post(Some("Application/JSON; charset=utf-8")).await;
    assert_eq!(code, 200, "{reply}");
    assert_eq!(reply["duplicate"], false);
    app.wait_for_status(&id, "completed", Duration::from_secs(5))
        .await;
}

#[actix_web::test]
async fn a_webhook_with_a_wrong_or_missing_signature_is_401_and_changes_nothing() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let (id, camber_id) = held_job(&mock, &app).await;
    let (_, before) = app.get_job(&id).await;
    let body = success_body(&camber_id, &id);

    let (code, err) = app.post_webhook(body.clone(), None).await;
    assert_eq!(code, 401);
    assert_eq!(err["error"]["code"], "UNAUTHENTICATED");
    let wrong = shared::signing::sign_hex(b"another-secret", &body);
    let (code, _) = app.post_webhook(body.clone(), Some(wrong)).await;
    assert_eq!(code, 401);
    let (code, _) = app.post_webhook(body.clone(), Some("not-hex".into())).await;
    assert_eq!(code, 401);
    // Signed for other bytes than the ones sent.
    let sig_of_other = shared::signing::sign_hex(SECRET.as_bytes(), b"{}");
    let (code, _) = app.post_webhook(body, Some(sig_of_other)).await;
    assert_eq!(code, 401);

    let (_, after) = app.get_job(&id).await;
    assert_eq!(after, before);
    assert_eq!(after["status"], "processing");
}

#[actix_web::test]
async fn a_webhook_for_an_unknown_job_is_404() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    for job_id in ["00000000-0000-4000-8000-000000000000", "not-ours"] {
        let (code, body) = app.post_signed_webhook(success_body("cmb_x", job_id)).await;
        assert_eq!(code, 404, "{body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
}

#[actix_web::test]
async fn a_correctly_signed_body_that_is_not_a_json_object_is_400() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    for raw in [&b"not json"[..], b"[1,2]", b"\"text\"", b""] {
        let (code, body) = app.post_signed_webhook(raw.to_vec()).await;
        assert_eq!(code, 400, "{raw:?}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_JSON");
    }
}

#[actix_web::test]
async fn a_webhook_naming_another_camber_job_is_409_and_changes_nothing() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let (id, _camber_id) = held_job(&mock, &app).await;
    let (_, before) = app.get_job(&id).await;

    let (code, body) = app
        .post_signed_webhook(success_body("cmb_someone_else", &id))
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "CONFLICT");
    let (_, after) = app.get_job(&id).await;
    assert_eq!(after, before);
}

#[actix_web::test]
async fn a_webhook_with_an_unknown_status_is_422() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let (id, camber_id) = held_job(&mock, &app).await;
    let mut body: Value = serde_json::from_slice(&success_body(&camber_id, &id)).unwrap();
    body["status"] = json!("running");
    let (code, err) = app
        .post_signed_webhook(serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(code, 422, "{err}");
    assert_eq!(err["error"]["code"], "INVALID_REQUEST");
    let (_, job) = app.get_job(&id).await;
    assert_eq!(job["status"], "processing");
}

/// A Camber stand-in whose submit answer waits until the test releases it,
/// so the webhook can arrive first. It reports each submitted job id, and
/// answers `GET /jobs/cmb_race` (how api confirms a Camber id it has not
/// recorded yet) with that job's metadata.
async fn slow_camber(release: Arc<Notify>, seen: mpsc::UnboundedSender<String>) -> String {
    let submitted = Arc::new(std::sync::Mutex::new(String::new()));
    let server = HttpServer::new(move || {
        let release = release.clone();
        let seen = seen.clone();
        let (on_post, on_get) = (submitted.clone(), submitted.clone());
        App::new()
            .route(
                "/jobs",
                web::post().to(move |body: web::Json<Value>| {
                    let release = release.clone();
                    let seen = seen.clone();
                    let submitted = on_post.clone();
                    async move {
                        let id = body["metadata"]["job_id"].as_str().unwrap_or("").to_owned();
                        *submitted.lock().unwrap() = id.clone();
                        let _ = seen.send(id);
                        release.notified().await;
                        HttpResponse::Created().json(json!({
                            "id": "cmb_race", "job_id": "cmb_race", "status": "pending",
                            "app": APP_NAME, "created_at": "2026-01-26T10:30:45.123456Z"
                        }))
                    }
                }),
            )
            .route(
                "/jobs/cmb_race",
                web::get().to(move || {
                    let job_id = on_get.lock().unwrap().clone();
                    async move {
                        HttpResponse::Ok().json(json!({
                            "id": "cmb_race", "job_id": "cmb_race", "status": "completed",
                            "metadata": {"job_id": job_id}
                        }))
                    }
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

#[actix_web::test]
async fn a_webhook_that_arrives_before_the_submit_answer_completes_the_pending_job() {
    let release = Arc::new(Notify::new());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let camber = slow_camber(release.clone(), seen_tx).await;
    let app = Rc::new(spawn_app(&camber).await);

    let creating = {
        let app = app.clone();
        actix_rt::spawn(async move { app.post_job(&job_body("race.pdf")).await })
    };
    let id = seen_rx.recv().await.expect("the api submitted");
    let (_, pending) = app.get_job(&id).await;
    assert_eq!(pending["status"], "pending");

    let (code, body) = app.post_signed_webhook(success_body("cmb_race", &id)).await;
    assert_eq!((code, &body["duplicate"]), (200, &json!(false)), "{body}");

    release.notify_one();
    let (code, created) = creating.await.unwrap();
    assert_eq!(code, 201);
    assert_eq!(
        created["status"], "completed",
        "the late answer must not reopen the job"
    );

    let (_, job) = app.get_job(&id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["camber_job_id"], "cmb_race");
    assert_eq!(event_path(&job), ["pending", "completed"]);
    assert_eq!(event_sources(&job), ["submit", "webhook"]);
}

#[actix_web::test]
async fn refused_signatures_show_in_metrics_and_readyz_until_one_verifies() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let body = success_body("cmb_x", "00000000-0000-4000-8000-000000000000");
    let wrong = shared::signing::sign_hex(b"another-secret", &body);

    let (code, ready) = app.get("/readyz").await;
    assert_eq!((code, ready.get("warnings")), (200, None), "{ready}");
    for _ in 0..3 {
        let (code, _) = app.post_webhook(body.clone(), Some(wrong.clone())).await;
        assert_eq!(code, 401);
    }
    let (code, ready) = app.get("/readyz").await;
    assert_eq!((code, &ready["status"]), (200, &json!("ready")));
    let warning = ready["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("last 3 Camber webhooks were all refused")
            && warning.contains("WEBHOOK_SECRET"),
        "{ready}"
    );
    assert!(!warning.contains(SECRET), "the secret never appears");
    let (_, metrics) = app.get_raw("/metrics").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("api_webhooks_refused_in_a_row 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("api_webhooks_total{outcome=\"unauthorized\"} 3\n"),
        "{metrics}"
    );

    // A webhook that verifies (here for an unknown job: 404) ends the run.
    let (code, _) = app.post_signed_webhook(body).await;
    assert_eq!(code, 404);
    let (_, ready) = app.get("/readyz").await;
    assert_eq!(ready.get("warnings"), None, "{ready}");
}

/// Secret rotation: with two secrets configured, a webhook signed with
/// either passes the signature check (here it then names an unknown job:
/// 404, not 401); one signed with neither is refused.
#[actix_web::test]
async fn during_a_rotation_a_webhook_signed_with_any_configured_secret_is_accepted() {
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{}", free_port()),
        extra: vec!["--webhook-secret".into(), "the-older-secret".into()],
        ..AppOptions::default()
    })
    .await;
    let body = success_body("cmb_x", "00000000-0000-4000-8000-000000000000");
    for (secret, want) in [
        (SECRET, 404),
        ("the-older-secret", 404),
        ("neither-of-them", 401),
    ] {
        let sig = shared::signing::sign_hex(secret.as_bytes(), &body);
        let (code, reply) = app.post_webhook(body.clone(), Some(sig)).await;
        assert_eq!(code, want, "signed with {secret}: {reply}");
    }
}

/// Webhooks are small; their body is read before the signature can be
/// checked, so an unsigned sender gets 413 past 1 MiB instead of making api
/// hold up to 16 MiB per request.
#[actix_web::test]
async fn a_webhook_body_over_1_mib_is_413_before_any_signature_check() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let big = vec![b' '; 2 * 1024 * 1024];
    let (code, body) = app.post_webhook(big, Some("00".repeat(32))).await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    let (code, _) = app.get("/readyz").await;
    assert_eq!(code, 200, "still serving");
}

/// Camber as api sees it while its submit answer is slow: `POST /jobs` is
/// held until `release`, and `GET /jobs/{id}` is passed to the real mock
/// with api's own key (so the mock's tenant scoping decides).
async fn held_submits_in_front_of(mock_uri: String, release: Arc<Notify>) -> String {
    let server = HttpServer::new(move || {
        let release = release.clone();
        let mock = mock_uri.clone();
        App::new()
            .route(
                "/jobs",
                web::post().to(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        HttpResponse::ServiceUnavailable().finish()
                    }
                }),
            )
            .route(
                "/jobs/{id}",
                web::get().to(move |req: actix_web::HttpRequest, id: web::Path<String>| {
                    let url = format!("{mock}/jobs/{id}");
                    async move {
                        let auth = req.headers().get("authorization").cloned();
                        let mut get = client().get(url);
                        if let Some(auth) = auth {
                            get = get.insert_header(("Authorization", auth));
                        }
                        let mut res = get.send().await.unwrap();
                        let body = res.body().await.unwrap();
                        HttpResponse::build(res.status())
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

/// Tenants of a shared Camber (or mock) may sign with the same secret.
/// While our job has no Camber id yet, another tenant's job that names our
/// job id and our webhook URL must not finish it: api confirms the Camber
/// id under its own key first, and another tenant's job is a 404 there.
#[actix_web::test]
async fn another_tenants_job_cannot_finish_ours_while_it_has_no_camber_id() {
    let mock = start_mock_with(|m| m.api_key("tenant-b")).await;
    let release = Arc::new(Notify::new());
    let camber = held_submits_in_front_of(mock.uri().to_owned(), release.clone()).await;
    let app = spawn_app(&camber).await;
    let id = app.create_job("forged.pdf").await;

    // Tenant B runs a job in our name, called back to our api.
    let mut res = client()
        .post(format!("{}/jobs", mock.uri()))
        .insert_header(("Authorization", "Bearer tenant-b"))
        .send_json(&json!({
            "app": APP_NAME, "input": {},
            "metadata": {"job_id": id},
            "webhook": {"url": format!("{}/internal/webhooks/camber", app.address)}
        }))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let forged: Value = res.json().await.unwrap();
    let forged_id = forged["id"].as_str().unwrap().to_owned();
    let attempts = wait_until(
        Duration::from_secs(10),
        "the forged webhook's attempt",
        || async {
            let d = mock.deliveries(&forged_id).await;
            let attempts = d.first()?["attempts"].as_array()?.clone();
            (!attempts.is_empty()).then_some(attempts)
        },
    )
    .await;
    assert_eq!(attempts[0]["status"], 409, "{attempts:?}");
    let (_, job) = app.get_job(&id).await;
    assert_eq!(job["status"], "pending", "{job}");
    assert_eq!(job["camber_job_id"], Value::Null, "{job}");
    release.notify_waiters();
}
