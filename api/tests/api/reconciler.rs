//! The reconciler: a job whose webhook never comes is finished by polling.

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_dropped_webhook_is_recovered_by_the_reconciler() {
    let mock = start_mock().await;
    mock.set_rules(json!([{"match": {"/input/filename": "/drop/"}, "scenario": {"webhook": {"mode": "drop"}}}]))
        .await;
    let app = spawn_app_with(AppOptions {
        camber_uri: mock.uri().to_owned(),
        extra: vec!["--reconcile-after".into(), "200ms".into()],
        ..AppOptions::default()
    })
    .await;

    let id = app.create_job("x-drop.pdf").await;
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(event_path(&job), ["pending", "processing", "completed"]);
    assert_eq!(event_sources(&job).last().unwrap(), "reconcile");
    assert!(job["result"].is_object(), "{job}");
    assert!(app.artifact_dir().join(&id).join("result.json").exists());
    let camber_id = job["camber_job_id"].as_str().unwrap();
    let delivered = mock
        .deliveries(camber_id)
        .await
        .iter()
        .filter(|d| d["state"] == "delivered")
        .count();
    assert_eq!(delivered, 0, "the scenario dropped the webhook");
}

/// A Camber stand-in that takes every job, never calls back, and has
/// forgotten every job when asked about it.
async fn forgetful_camber() -> String {
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/jobs",
                web::post().to(|| async {
                    HttpResponse::Created().json(json!({
                        "id": "cmb_lost", "job_id": "cmb_lost", "status": "pending",
                        "app": APP_NAME, "created_at": "2026-01-26T10:30:45.123456Z"
                    }))
                }),
            )
            .route(
                "/jobs/{id}",
                web::get().to(|| async {
                    HttpResponse::NotFound()
                        .json(json!({"error": {"code": "NOT_FOUND", "message": "no such job"}}))
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
async fn a_job_camber_has_forgotten_is_failed_by_the_reconciler() {
    let camber = forgetful_camber().await;
    let app = spawn_app_with(AppOptions {
        camber_uri: camber,
        extra: vec!["--reconcile-after".into(), "100ms".into()],
        ..AppOptions::default()
    })
    .await;
    let id = app.create_job("lost.pdf").await;
    let job = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;
    assert_eq!(job["error"]["code"], "CAMBER_JOB_LOST", "{job}");
    // The whole failure, key order included: no stage is known (null).
    assert_eq!(
        serde_json::to_string(&job["error"]).unwrap(),
        r#"{"code":"CAMBER_JOB_LOST","stage":null,"details":{"reason":"Camber answered 404 for the job"}}"#
    );
    assert_eq!(event_path(&job), ["pending", "processing", "failed"]);
    assert_eq!(event_sources(&job), ["submit", "submit", "reconcile"]);
}
