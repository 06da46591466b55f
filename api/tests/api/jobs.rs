//! A job's life against mock-camber: create → completed / failed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

#[actix_web::test]
async fn a_created_job_completes_with_the_mocks_result_artifacts_and_events() {
    let mock = start_mock().await;
    // Held jobs stay running until the test completes them: the event order
    // pending → processing → completed is then certain.
    mock.set_rules(json!([{"match": {"/input/filename": "/hold/"}, "scenario": {"hold": true}}]))
        .await;
    let app = spawn_app(mock.uri()).await;

    let (status, created) = app.post_job(&job_body("hold-invoice.pdf")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["job_id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "processing");
    assert!(created["upload_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/jobs/{id}/upload?", app.address)));

    let processing = app
        .wait_for_status(&id, "processing", Duration::from_secs(5))
        .await;
    let camber_id = processing["camber_job_id"].as_str().unwrap().to_owned();
    mock.complete(&camber_id).await;

    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(10))
        .await;
    assert_eq!(event_path(&job), ["pending", "processing", "completed"]);
    assert_eq!(event_sources(&job), ["submit", "submit", "webhook"]);
    assert_eq!(job["events"][0]["from"], Value::Null);
    assert!(job["result"].is_object(), "{job}");
    assert_eq!(job["error"], Value::Null);
    assert_eq!(job["camber_job_id"], camber_id.as_str());

    // The result as Camber reported it: the same object the mock shows.
    let (_, remote) = mock_job(&mock, &camber_id).await;
    assert_eq!(job["result"], remote["result"]);

    assert_artifacts_are_served_and_rebuilt(&app, &id, &job).await;
    assert_one_submit_as_sent(&mock, &app, &id).await;
}

/// The completed job's artifacts: listed, on disk, downloadable, and
/// rebuilt from the row when lost.
async fn assert_artifacts_are_served_and_rebuilt(app: &TestApp, id: &str, job: &Value) {
    // Artifacts: listed, on disk, downloadable.
    let names: Vec<_> = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"result.json".to_owned()) && names.contains(&"manifest.json".to_owned())
    );
    let dir = app.artifact_dir().join(id);
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(on_disk["result"], job["result"]);
    assert!(dir.join("manifest.json").exists());
    let (code, bytes) = app
        .get_raw(&format!("/jobs/{id}/artifacts/result.json"))
        .await;
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), on_disk);

    // result.json and manifest.json are not synced (the job's commit is the
    // durable record): what a power loss can leave of them is rebuilt from
    // the row on the next read, the same bytes as before.
    for name in ["result.json", "manifest.json"] {
        let path = dir.join(name);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, vec![0u8; whole.len()]).unwrap();
        let (code, bytes) = app.get_raw(&format!("/jobs/{id}/artifacts/{name}")).await;
        assert_eq!(code, 200, "{name}");
        assert_eq!(bytes, whole, "{name} served from the row");
        assert_eq!(std::fs::read(&path).unwrap(), whole, "{name} rewritten");
        std::fs::remove_file(&path).unwrap();
        let (code, bytes) = app.get_raw(&format!("/jobs/{id}/artifacts/{name}")).await;
        assert_eq!((code, bytes), (200, whole), "{name} after removal");
    }
}

/// The one submit api sent for job `id`, as the mock's journal shows it.
async fn assert_one_submit_as_sent(mock: &MockCamber, app: &TestApp, id: &str) {
    // The mock's journal shows what we sent.
    let submits: Vec<Value> = mock
        .submits()
        .await
        .into_iter()
        .filter(|r| r["body"]["input"]["job_id"] == id)
        .collect();
    assert_eq!(submits.len(), 1, "{submits:?}");
    let body = &submits[0]["body"];
    assert_eq!(body["app"], APP_NAME);
    assert_eq!(body["metadata"]["job_id"], id);
    assert_eq!(
        body["webhook"]["url"],
        format!("{}/internal/webhooks/camber", app.address)
    );
    assert_eq!(body["input"]["filename"], "hold-invoice.pdf");
    assert_eq!(body["input"]["portal_schema_name"], "invoice");
    assert_eq!(body["input"]["mime_type"], "application/pdf");
    assert_eq!(body["input"]["file_size_bytes"], 1000);
    assert_eq!(header(&submits[0], "idempotency-key"), Some(id));
}

async fn mock_job(mock: &MockCamber, camber_id: &str) -> (u16, Value) {
    let mut res = client()
        .get(format!("{}/jobs/{camber_id}", mock.uri()))
        .insert_header(("Authorization", format!("Bearer {API_KEY}")))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json::<Value>().await.unwrap())
}

#[actix_web::test]
async fn a_failure_scenario_ends_failed_with_the_mocks_error_code_and_stage() {
    let mock = start_mock().await;
    mock.set_rules(json!([{
        "match": {"/input/filename": "/fail-ocr/"},
        "scenario": {"outcome": "failure",
                     "error": {"code": "OCR_FAILURE", "stage": "OCR", "reason": "No text detected in image"}}
    }]))
    .await;
    let app = spawn_app(mock.uri()).await;

    let id = app.create_job("scan-fail-ocr.pdf").await;
    let job = app
        .wait_for_status(&id, "failed", Duration::from_secs(10))
        .await;
    assert_eq!(job["error"]["code"], "OCR_FAILURE", "{job}");
    assert_eq!(job["error"]["stage"], "OCR");
    assert_eq!(job["result"], Value::Null);
    assert_eq!(event_path(&job).last().unwrap(), "failed");
    assert_eq!(event_sources(&job).last().unwrap(), "webhook");
    assert!(app.artifact_dir().join(&id).join("manifest.json").exists());
}

#[actix_web::test]
async fn a_job_that_does_not_exist_is_404() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let (code, body) = app.get_job("00000000-0000-4000-8000-000000000000").await;
    assert_eq!(code, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    let (code, _) = app.get_job("not-a-uuid").await;
    assert_eq!(code, 404);
}

#[actix_web::test]
async fn jobs_are_listed_newest_first_in_pages_and_filtered_by_status() {
    // Camber is down and the retry schedule long: every job stays pending.
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{}", free_port()),
        extra: vec!["--submit-retry-schedule".into(), "1h".into()],
        ..AppOptions::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create_job(&format!("f{i}.pdf")).await);
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/jobs?limit=2&cursor={c}"),
            None => "/jobs?limit=2".to_owned(),
        };
        let (code, page) = app.get(&q).await;
        assert_eq!(code, 200, "{page}");
        let jobs = page["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 2);
        seen.extend(
            jobs.iter()
                .map(|j| j["job_id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let (_, pending) = app.get("/jobs?status=pending").await;
    assert_eq!(pending["jobs"].as_array().unwrap().len(), 5);
    let (_, completed) = app.get("/jobs?status=completed").await;
    assert_eq!(completed["jobs"].as_array().unwrap().len(), 0);
    assert_eq!(completed["next"], Value::Null);
    for bad in [
        "/jobs?status=done",
        "/jobs?limit=0",
        "/jobs?limit=501",
        "/jobs?cursor=zz",
        "/jobs?cursor=-5",
    ] {
        let (code, body) = app.get(bad).await;
        assert_eq!(code, 422, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    }
    // An empty cursor is the first page, as on the mock.
    let (code, first) = app.get("/jobs?cursor=&limit=&status=").await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["jobs"].as_array().unwrap().len(), 5);
}

async fn post_keyed(app: &TestApp, key: &str, body: &Value) -> (u16, Value, Option<String>) {
    let mut res = app
        .http
        .post(format!("{}/jobs", app.address))
        .insert_header(("idempotency-key", key))
        .send_json(body)
        .await
        .unwrap();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.body().await.unwrap();
    (
        res.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        replayed,
    )
}

#[actix_web::test]
async fn a_create_retried_with_its_idempotency_key_makes_one_job() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let body = job_body("retried.pdf");

    let (code, first, replayed) = post_keyed(&app, "create-1", &body).await;
    assert_eq!((code, replayed), (201, None), "{first}");
    let (code, again, replayed) = post_keyed(&app, "create-1", &body).await;
    assert_eq!((code, replayed.as_deref()), (200, Some("true")), "{again}");
    assert_eq!(again["job_id"], first["job_id"]);
    assert!(again["upload_url"].as_str().is_some(), "{again}");

    let (_, list) = app.get("/jobs").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(mock.jobs().await.len(), 1, "one Camber job");

    // Another key is another job.
    let (code, other, _) = post_keyed(&app, "create-2", &body).await;
    assert_eq!(code, 201, "{other}");
    assert_ne!(other["job_id"], first["job_id"]);
}

#[actix_web::test]
async fn an_idempotency_key_reused_with_another_body_is_409() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let (code, first, _) = post_keyed(&app, "k", &job_body("a.pdf")).await;
    assert_eq!(code, 201, "{first}");
    let (code, err, _) = post_keyed(&app, "k", &job_body("b.pdf")).await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(err["error"]["code"], "IDEMPOTENCY_KEY_REUSED", "{err}");
    assert!(err["error"]["message"].as_str().is_some(), "{err}");
    let (_, list) = app.get("/jobs").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");

    let long = "x".repeat(256);
    let (code, err, _) = post_keyed(&app, &long, &job_body("c.pdf")).await;
    assert_eq!(code, 422, "{err}");
    assert_eq!(err["error"]["code"], "INVALID_REQUEST", "{err}");
}

#[actix_web::test]
async fn a_create_while_another_process_locks_the_database_is_503_within_seconds() {
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let other = rusqlite::Connection::open(app.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let started = std::time::Instant::now();
    let mut res = app
        .http
        .post(format!("{}/jobs", app.address))
        .send_json(&job_body("locked.pdf"))
        .await
        .unwrap();
    let took = started.elapsed();
    let body: Value = res.json().await.unwrap();
    assert_eq!(res.status().as_u16(), 503, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    assert!(res.headers().contains_key("retry-after"));
    assert!(took < Duration::from_secs(5), "answered after {took:?}");

    other.execute_batch("ROLLBACK").unwrap();
    let (code, created) = app.post_job(&job_body("unlocked.pdf")).await;
    assert_eq!(code, 201, "{created}");
    let (_, list) = app.get("/jobs").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");
}
