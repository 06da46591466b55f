//! Durability across `kill -9` (what was acknowledged survives a crash):
//! the real binary on a file `--db` is killed with SIGKILL, so no shutdown
//! code runs, and restarted on the same database. Before each kill the test
//! polls until the state it relies on is visible over the API, so it only
//! relies on committed work. Ids, idempotency keys and retry budgets across
//! a restart are in `restart_memory`.

use std::path::Path;

use serde_json::{json, Value};

use crate::helpers::{job_to, wait_for, Client, MockProcess, Received, Receiver, SECRET};

pub(crate) const KEY: &str = "key-a";

pub(crate) fn start_on(db: &Path) -> MockProcess {
    MockProcess::start(&[
        "--port",
        "0",
        "--db",
        db.to_str().expect("utf-8 temp path"),
        "--webhook-secret",
        SECRET,
        "--retry-schedule",
        "50ms,100ms,200ms,400ms,800ms,1s,2s,5s",
    ])
}

/// A job that stays `running` in FETCH until an admin call moves it.
fn held(url: &str, caller_id: &str) -> Value {
    json!({
        "app": "rythmiq-worker",
        "input": {"filename": format!("{caller_id}.pdf")},
        "metadata": {"job_id": caller_id, "mock": {"hold": true}},
        "webhook": {"url": url}
    })
}

/// Webhooks received so far, without waiting.
fn drain(receiver: &mut Receiver) -> Vec<Received> {
    std::iter::from_fn(|| receiver.try_next()).collect()
}

async fn admin(client: &Client, id: &str, action: &str, body: Value) -> Value {
    let r = client
        .post(&format!("/_mock/jobs/{id}/{action}"), body)
        .await;
    assert_eq!(r.status, 200, "{action} {id}: {}", r.text);
    r.body
}

#[actix_web::test]
async fn held_jobs_are_still_running_after_a_kill_9_and_finish_when_released() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let mut receiver = Receiver::start().await;
    let mut mock = start_on(&db);
    let client = mock.client(KEY);
    let advanced = client.create(held(&receiver.url, "advance-me")).await;
    let completed = client.create(held(&receiver.url, "complete-me")).await;
    let failed = client.create(held(&receiver.url, "fail-me")).await;
    let cancelled = client.create(held(&receiver.url, "cancel-me")).await;
    let mut started_at = Vec::new();
    for id in [&advanced, &completed, &failed, &cancelled] {
        let job = client.wait_status(id, "running").await;
        started_at.push(job["started_at"].clone());
    }
    // One held job is moved on to OCR before the kill (the admin call
    // answers once the move is committed).
    let job = admin(&client, &advanced, "advance", json!({})).await;
    assert_eq!(job["stage"], "OCR", "{job}");

    mock.kill9();
    let mock = start_on(&db);
    let client = mock.client(KEY);

    let all = [&advanced, &completed, &failed, &cancelled];
    for (id, started) in all.into_iter().zip(&started_at) {
        let job = client.job(id).await;
        assert_eq!(
            job["status"], "running",
            "held job {id} after restart: {job}"
        );
        let stage = if id == &advanced { "OCR" } else { "FETCH" };
        assert_eq!(job["stage"], stage, "held job {id} after restart: {job}");
        assert_eq!(
            &job["started_at"], started,
            "{id} was restarted from scratch"
        );
    }
    assert!(
        drain(&mut receiver).is_empty(),
        "a held job sent a webhook before it was released"
    );

    release_each(&client, all).await;
    expect_each_webhook(&mut receiver, all).await;
    for id in all {
        client.wait_delivery(id, "delivered").await;
    }
}

/// Releases the four held jobs of the test above, each its own way.
async fn release_each(client: &Client, [advanced, completed, failed, cancelled]: [&String; 4]) {
    // One job walks through its remaining stages one advance at a time...
    let job = admin(client, advanced, "advance", json!({})).await;
    assert_eq!(job["status"], "running");
    assert_eq!(job["stage"], "NORMALIZE");
    let job = admin(client, advanced, "advance", json!({})).await;
    assert_eq!(job["status"], "completed", "{job}");
    // ...one is completed and one failed outright.
    let job = admin(client, completed, "complete", json!({})).await;
    assert_eq!(job["status"], "completed", "{job}");
    let job = admin(
        client,
        failed,
        "fail",
        json!({"code": "OCR_FAILURE", "stage": "OCR", "reason": "No text detected in image"}),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "OCR_FAILURE", "{job}");
    // The client's own cancel still reaches a job resumed from the store.
    let r = client
        .post(&format!("/jobs/{cancelled}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "cancel: {}", r.text);
    assert_eq!(r.body["status"], "cancelled", "{}", r.text);
}

/// The four webhooks of the released jobs, one per job, with its outcome.
async fn expect_each_webhook(
    receiver: &mut Receiver,
    [advanced, completed, failed, cancelled]: [&String; 4],
) {
    let mut by_job = std::collections::HashMap::new();
    for _ in 0..4 {
        let hook = receiver.next().await;
        let body = hook.json();
        let id = body["camber_job_id"].as_str().unwrap().to_owned();
        by_job.insert(id, (body, hook.header("x-camber-event").to_owned()));
    }
    let (body, event) = &by_job[advanced];
    assert_eq!(
        (body["status"].as_str(), event.as_str()),
        (Some("success"), "job.completed")
    );
    assert_eq!(body["job_id"], "advance-me");
    let (body, event) = &by_job[completed];
    assert_eq!(
        (body["status"].as_str(), event.as_str()),
        (Some("success"), "job.completed")
    );
    assert_eq!(body["job_id"], "complete-me");
    let (body, event) = &by_job[failed];
    assert_eq!(
        (body["status"].as_str(), event.as_str()),
        (Some("failed"), "job.failed")
    );
    assert_eq!(body["result"]["error"]["code"], "OCR_FAILURE");
    let (body, event) = &by_job[cancelled];
    assert_eq!(
        (body["status"].as_str(), event.as_str()),
        (Some("failed"), "job.failed")
    );
    assert_eq!(body["result"]["error"]["code"], "CANCELLED");
}

#[actix_web::test]
async fn a_webhook_failing_at_the_kill_is_delivered_after_restart_with_the_same_delivery_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let mut receiver = Receiver::start().await;
    receiver.always(503);
    let mut mock = start_on(&db);
    let client = mock.client(KEY);
    let id = client.create(job_to(&receiver.url)).await;

    let first = receiver.next().await;
    assert_eq!(first.header("x-camber-attempt"), "1");
    let delivery_id = first.header("x-camber-delivery-id").to_owned();
    assert!(!delivery_id.is_empty());
    // The event and at least one failed attempt are committed.
    let before = wait_for("a failed attempt to be recorded", 20, || async {
        let r = client.get(&format!("/_mock/deliveries?job_id={id}")).await;
        let d = r.body["deliveries"].get(0).cloned()?;
        let failed = d["attempts"].as_array()?.iter().any(|a| a["status"] == 503);
        failed.then_some(d)
    })
    .await;
    assert_eq!(before["id"], delivery_id.as_str());
    assert_eq!(before["state"], "failing", "{before}");
    assert_eq!(client.job(&id).await["status"], "completed");

    mock.kill9();
    let mock = start_on(&db);
    let client = mock.client(KEY);
    receiver.always(200);

    let after = client.wait_delivery(&id, "delivered").await;
    assert_eq!(after["id"], delivery_id.as_str());
    let attempts = after["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{after}");
    assert_eq!(
        attempts[0]["status"], 503,
        "the attempt log lost its past: {after}"
    );
    assert_eq!(attempts.last().unwrap()["status"], 200, "{after}");
    assert_eq!(client.job(&id).await["status"], "completed");

    // The receiver saw one event, re-sent: the same id and bytes every time,
    // attempt numbers never going back (the one in flight at the kill may
    // be sent again under its own number).
    let mut seen = vec![first];
    seen.extend(drain(&mut receiver));
    let mut last_n = 0;
    for hook in &seen {
        assert_eq!(hook.header("x-camber-delivery-id"), delivery_id);
        assert_eq!(hook.header("webhook-id"), delivery_id);
        assert_eq!(
            hook.body, seen[0].body,
            "the event changed between attempts"
        );
        let n: usize = hook.header("x-camber-attempt").parse().unwrap();
        assert!(n >= last_n, "attempt {n} after attempt {last_n}");
        last_n = n;
    }
    assert_eq!(last_n, attempts.len(), "{after}");
}

#[actix_web::test]
async fn a_delayed_webhook_not_yet_sent_at_the_kill_is_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let mut receiver = Receiver::start().await;
    let mut mock = start_on(&db);
    let client = mock.client(KEY);
    let mut body = job_to(&receiver.url);
    body["metadata"]["mock"] = json!({"webhook": {"mode": "delay", "delay_ms": 1500}});
    let id = client.create(body).await;
    client.wait_status(&id, "completed").await;
    // The event is stored, due later, with no attempt yet.
    let before = client.wait_delivery(&id, "pending").await;
    assert_eq!(before["attempts"], json!([]), "{before}");

    mock.kill9();
    let mock = start_on(&db);
    let client = mock.client(KEY);

    let hook = receiver.next().await;
    assert_eq!(hook.json()["camber_job_id"], id.as_str());
    assert_eq!(
        hook.header("x-camber-delivery-id"),
        before["id"].as_str().unwrap()
    );
    assert_eq!(hook.header("x-camber-attempt"), "1");
    client.wait_delivery(&id, "delivered").await;
}

#[actix_web::test]
async fn a_job_killed_mid_pipeline_resumes_from_its_stage_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let mut receiver = Receiver::start().await;
    let mut mock = start_on(&db);
    let client = mock.client(KEY);
    let mut body = job_to(&receiver.url);
    body["metadata"]["mock"] = json!({"stage_ms": 300});
    let id = client.create(body).await;
    let before = wait_for("the job to leave FETCH", 20, || async {
        let j = client.job(&id).await;
        (j["stage"] == "OCR" || j["stage"] == "NORMALIZE").then_some(j)
    })
    .await;

    mock.kill9();
    let mock = start_on(&db);
    let client = mock.client(KEY);

    let job = client.wait_status(&id, "completed").await;
    assert_eq!(job["started_at"], before["started_at"]);
    let hook = receiver.next().await;
    assert_eq!(hook.json()["camber_job_id"], id.as_str());
    assert_eq!(hook.json()["status"], "success");
    let logs = client.get(&format!("/jobs/{id}/logs")).await;
    assert_eq!(logs.status, 200);
    assert_eq!(
        logs.text.matches("FETCH started").count(),
        1,
        "the job ran FETCH again after the restart:\n{}",
        logs.text
    );
    assert!(logs.text.contains("NORMALIZE finished"), "{}", logs.text);
}

/// The schema as the first release wrote it (before deliveries stored
/// their failure count): a database a staging volume may still hold.
const FIRST_SCHEMA: &str = "
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL,
    tenant_mask TEXT NOT NULL, app TEXT NOT NULL, status TEXT NOT NULL, stage TEXT,
    metadata TEXT NOT NULL, input TEXT NOT NULL, plan TEXT NOT NULL, webhook_url TEXT,
    webhook_headers TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, result TEXT, error TEXT, log TEXT NOT NULL DEFAULT '');
CREATE INDEX jobs_by_tenant ON jobs (tenant, seq);
CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('pending', 'running');
CREATE TABLE idempotency (tenant TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,
    response TEXT NOT NULL, created_unix INTEGER NOT NULL, PRIMARY KEY (tenant, key));
CREATE TABLE deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL,
    event TEXT NOT NULL, url TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, sends_remaining INTEGER NOT NULL,
    bad_signature INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX deliveries_by_job ON deliveries (job_id);
CREATE INDEX deliveries_pending ON deliveries (state) WHERE state = 'pending';
CREATE TABLE attempts (delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at TEXT NOT NULL,
    status INTEGER, latency_ms INTEGER NOT NULL, error TEXT, response_excerpt TEXT,
    PRIMARY KEY (delivery_id, n));
";

#[actix_web::test]
async fn a_database_from_the_first_schema_opens_and_its_pending_webhook_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let mut receiver = Receiver::start().await;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(FIRST_SCHEMA).unwrap();
        // Finished just now: a job that ended past the retention window
        // (7 days) would be swept with its delivery as soon as the delivery
        // is delivered, racing the wait below.
        conn.execute(
            "INSERT INTO jobs (seq, id, tenant, tenant_mask, app, status, metadata, input, plan, \
             webhook_url, webhook_headers, created_at, updated_at, finished_at, log) \
             VALUES (1, 'cmb_old', 't', 'k…', 'rythmiq-worker', 'completed', '{}', '{}', '{}', \
             ?1, '{}', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), \
             strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), '')",
            [&receiver.url],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO deliveries (id, job_id, event, url, headers, body, state, attempts, \
             sends_remaining, bad_signature, next_attempt_ms, created_at) \
             VALUES ('dlv_old', 'cmb_old', 'job.completed', ?1, '{}', X'7B7D', 'pending', 1, 1, 0, 0, \
             '2026-01-01T00:00:00Z')",
            [&receiver.url],
        )
        .unwrap();
    }

    let mock = start_on(&db);
    let client = mock.client(KEY);

    let hook = receiver.next().await;
    assert_eq!(hook.header("x-camber-delivery-id"), "dlv_old");
    assert_eq!(hook.header("x-camber-attempt"), "2");
    client.wait_delivery("cmb_old", "delivered").await;
    // And the daemon takes new work on the old database.
    client.create(job_to(&receiver.url)).await;
}

/// Scenario audits still waiting for their job's delivery, as the file
/// holds them.
fn waiting_audits(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM scenario_audits", [], |r| r.get(0))
        .unwrap()
}

#[actix_web::test]
async fn a_scenario_audit_waiting_for_its_delivery_at_a_kill_9_starts_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let receiver = Receiver::start().await;
    let mut mock = start_on(&db);
    let client = mock.client(KEY);
    let mut body = held(&receiver.url, "audit-me");
    body["metadata"]["mock"]["webhook"] = json!({"audit": true});
    let id = client.create(body).await;
    client.wait_status(&id, "running").await;
    // Stored with the job (the 201 followed its commit).
    assert_eq!(waiting_audits(&db), 1);

    mock.kill9();
    let mock = start_on(&db);
    let client = mock.client(KEY);
    let r = client.get(&format!("/_mock/audits?job_id={id}")).await;
    assert_eq!(r.body["audits"], json!([]), "not delivered yet: {}", r.text);
    admin(&client, &id, "complete", json!({})).await;
    client.wait_delivery(&id, "delivered").await;
    let report = wait_for("the scenario's audit to be done", 60, || async {
        let r = client.get(&format!("/_mock/audits?job_id={id}")).await;
        let first = r.body["audits"].get(0).cloned()?;
        (first["state"] == "done").then_some(first)
    })
    .await;
    assert_eq!(report["job_id"], id.as_str());
    assert_eq!(report["cases"].as_array().unwrap().len(), 19, "{report}");
    // Started once: its stored wait went with the audit's first write.
    let listed = client.get(&format!("/_mock/audits?job_id={id}")).await;
    assert_eq!(listed.body["audits"].as_array().unwrap().len(), 1);
    assert_eq!(waiting_audits(&db), 0);
}
