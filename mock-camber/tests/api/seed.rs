//! `--seed` (a reproducible simulator): the same seed and the same
//! submissions give the same ids, outcomes and results; another seed gives
//! other ids; a restart on the same database continues the sequence instead
//! of repeating it.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, wait_for, Client, MockProcess, Receiver, TestApp, SECRET};

const JOBS: usize = 12;

/// A daemon in-process with `seed`, half of the plain jobs failing, and its
/// own webhook receiver as the default callback.
async fn seeded(seed: u64) -> (TestApp, Receiver) {
    let receiver = Receiver::start().await;
    let url = receiver.url.clone();
    let app = spawn_app_with(|s| {
        s.seed = Some(seed);
        s.failure_rate = 0.5;
        s.webhook_url = Some(url);
    })
    .await;
    (app, receiver)
}

/// The same submissions, one after the other: plain jobs, jobs with a
/// caller id, and one scenario that fails without naming a code.
fn submissions() -> Vec<Value> {
    (0..JOBS)
        .map(|i| match i % 4 {
            0 | 1 => json!({"app": "rythmiq-worker", "input": {"filename": format!("{i}.pdf")}}),
            2 => json!({
                "app": "rythmiq-worker",
                "input": {"filename": format!("{i}.png")},
                "metadata": {"job_id": format!("caller-{i}")}
            }),
            _ => json!({
                "app": "rythmiq-worker",
                "input": {"filename": format!("{i}.tif")},
                "metadata": {"mock": {"outcome": "failure"}}
            }),
        })
        .collect()
}

async fn finished(client: &Client, id: &str) -> Value {
    wait_for(&format!("job {id} to finish"), 20, || async {
        let j = client.job(id).await;
        matches!(j["status"].as_str(), Some("completed" | "failed")).then_some(j)
    })
    .await
}

/// What a seeded run decided, without the timestamps that differ between
/// runs: per job its id, status, error and result, and per webhook its
/// delivery id and body.
async fn run(seed: u64) -> (Vec<Value>, BTreeMap<String, Value>) {
    let (app, mut receiver) = seeded(seed).await;
    let mut jobs = Vec::new();
    for body in submissions() {
        let id = app.client.create(body).await;
        let j = finished(&app.client, &id).await;
        jobs.push(json!({
            "id": j["id"],
            "status": j["status"],
            "error": j["error"],
            "result": j["result"],
        }));
    }
    let mut hooks = BTreeMap::new();
    for _ in 0..JOBS {
        let hook = receiver.next().await;
        let mut body = hook.json();
        body.as_object_mut().unwrap().remove("timestamp");
        let id = body["camber_job_id"].as_str().unwrap().to_owned();
        let seen = json!({"delivery_id": hook.header("x-camber-delivery-id"), "body": body});
        assert!(hooks.insert(id, seen).is_none(), "two webhooks for one job");
    }
    receiver.stop().await;
    app.handle.stop(false).await;
    (jobs, hooks)
}

#[actix_web::test]
async fn two_daemons_with_the_same_seed_give_the_same_ids_outcomes_and_results() {
    let (jobs_a, hooks_a) = run(42).await;
    let (jobs_b, hooks_b) = run(42).await;

    assert_eq!(jobs_a, jobs_b);
    assert_eq!(hooks_a, hooks_b);
    // The comparison means something: outcomes vary within a run.
    let statuses: HashSet<&str> = jobs_a.iter().filter_map(|j| j["status"].as_str()).collect();
    assert_eq!(
        statuses,
        HashSet::from(["completed", "failed"]),
        "{jobs_a:#?}"
    );
    let codes: HashSet<&str> = jobs_a
        .iter()
        .filter_map(|j| j["error"]["code"].as_str())
        .collect();
    assert!(codes.len() >= 2, "failures all look alike: {codes:?}");
    let scores: HashSet<String> = jobs_a
        .iter()
        .filter(|j| j["status"] == "completed")
        .map(|j| j["result"]["quality_score"].to_string())
        .collect();
    assert!(scores.len() >= 2, "results all look alike: {scores:?}");
}

#[actix_web::test]
async fn a_different_seed_gives_different_ids() {
    let (jobs_a, _) = run(42).await;
    let (jobs_c, _) = run(7).await;
    let ids_a: HashSet<&str> = jobs_a.iter().filter_map(|j| j["id"].as_str()).collect();
    let ids_c: HashSet<&str> = jobs_c.iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids_a.len(), JOBS);
    assert_eq!(ids_c.len(), JOBS);
    assert!(ids_a.is_disjoint(&ids_c), "seeds 42 and 7 share ids");
}

#[actix_web::test]
async fn the_same_seed_injects_submit_errors_into_the_same_submits() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let app = spawn_app_with(|s| {
            s.seed = Some(42);
            s.submit_error_rate = 0.5;
        })
        .await;
        let mut answers = Vec::new();
        for i in 0..JOBS {
            let r = app
                .client
                .submit(json!({"app": "rythmiq-worker", "input": {"n": i}}))
                .await;
            answers.push((r.status, r.body["id"].as_str().map(str::to_owned)));
        }
        app.handle.stop(false).await;
        runs.push(answers);
    }
    assert_eq!(runs[0], runs[1]);
    let statuses: HashSet<u16> = runs[0].iter().map(|(s, _)| *s).collect();
    assert!(statuses.contains(&201), "{:?}", runs[0]);
    assert!(
        statuses.len() >= 2,
        "no submit error was injected: {:?}",
        runs[0]
    );
}

#[actix_web::test]
async fn a_restart_on_the_same_db_continues_the_seed_sequence_instead_of_repeating_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let args = [
        "--port",
        "0",
        "--db",
        db.to_str().unwrap(),
        "--seed",
        "42",
        "--stage-ms",
        "0",
        "--webhook-secret",
        SECRET,
    ];
    let body = json!({"app": "rythmiq-worker", "input": {"filename": "a.pdf"}});

    let mut mock = MockProcess::start(&args);
    let client = mock.client("key-a");
    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(client.create(body.clone()).await);
    }
    mock.kill9();
    let mock = MockProcess::start(&args);
    let client = mock.client("key-a");
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(client.create(body.clone()).await);
    }
    let seen: HashSet<&String> = before.iter().collect();
    assert!(
        after.iter().all(|id| !seen.contains(id)),
        "ids repeated after the restart: before {before:?}, after {after:?}"
    );

    // Continuing means exactly what an uninterrupted run would have given.
    let fresh = spawn_app_with(|s| s.seed = Some(42)).await;
    let mut uninterrupted = Vec::new();
    for _ in 0..6 {
        uninterrupted.push(fresh.client.create(body.clone()).await);
    }
    fresh.handle.stop(false).await;
    assert_eq!([before, after].concat(), uninterrupted);
}

#[actix_web::test]
async fn a_reset_then_a_restart_do_not_start_the_seed_sequence_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let args = [
        "--port",
        "0",
        "--db",
        db.to_str().unwrap(),
        "--seed",
        "42",
        "--webhook-secret",
        SECRET,
    ];
    let body = json!({"app": "rythmiq-worker", "input": {"filename": "a.pdf"}});

    let mut mock = MockProcess::start(&args);
    let client = mock.client("key-a");
    let mut ids = vec![client.create(body.clone()).await];
    // A reset forgets every job, so only the sequence remembers them.
    let r = client.post("/_mock/reset", json!({})).await;
    assert_eq!(r.status, 200, "reset: {}", r.text);
    ids.push(client.create(body.clone()).await);
    client.post("/_mock/reset", json!({})).await;
    mock.kill9();

    let mock = MockProcess::start(&args);
    let client = mock.client("key-a");
    ids.push(client.create(body.clone()).await);

    let fresh = spawn_app_with(|s| s.seed = Some(42)).await;
    let mut uninterrupted = Vec::new();
    for _ in 0..3 {
        uninterrupted.push(fresh.client.create(body.clone()).await);
    }
    fresh.handle.stop(false).await;
    assert_eq!(ids, uninterrupted, "the sequence went back after a reset");
}
