//! The reconciler: a job whose webhook never comes is finished by polling.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_dropped_webhook_is_recovered_by_the_reconciler() {
    let mock = MockCamber::start();
    mock.set_rules(json!([{"match": {"/input/filename": "/drop/"}, "scenario": {"webhook": {"mode": "drop"}}}]))
        .await;
    let app = spawn_app_with(AppOptions {
        camber_uri: mock.uri.clone(),
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
