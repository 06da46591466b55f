//! What a `kill -9` must not make the daemon forget (the real binary on a
//! file `--db`, as in `restart`): the ids it handed out and the
//! idempotency keys it answered, and how much of a delivery's retry budget
//! was spent.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{job_to, wait_for, MockProcess, Receiver, SECRET};
use crate::restart::{start_on, KEY};

#[actix_web::test]
async fn ids_after_a_restart_are_new_and_idempotency_keys_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let mut mock = start_on(&db);
    let client = mock.client(KEY);
    let body = json!({"app": "rythmiq-worker", "input": {"filename": "a.pdf"}});
    let mut before = HashSet::new();
    for _ in 0..3 {
        before.insert(client.create(body.clone()).await);
    }
    // A 201 is only sent once the job and its key are committed.
    let keyed = client
        .submit_with(body.clone(), &[("Idempotency-Key", "restart-key-1")])
        .await;
    assert_eq!(keyed.status, 201, "{}", keyed.text);
    let keyed_id = keyed.body["id"].as_str().unwrap().to_owned();
    before.insert(keyed_id.clone());

    mock.kill9();
    let mock = start_on(&db);
    let client = mock.client(KEY);

    let replay = client
        .submit_with(body.clone(), &[("Idempotency-Key", "restart-key-1")])
        .await;
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(replay.body["id"], keyed_id.as_str());
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(String::as_str),
        Some("true")
    );
    let reused = client
        .submit_with(
            json!({"app": "other", "input": {}}),
            &[("Idempotency-Key", "restart-key-1")],
        )
        .await;
    assert_eq!(reused.status, 409, "{}", reused.text);

    let listed = client.get("/jobs?limit=500").await;
    let listed: HashSet<String> = listed.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed, before,
        "the jobs from before the kill are not all there"
    );

    for _ in 0..3 {
        let id = client.create(body.clone()).await;
        assert!(!before.contains(&id), "id {id} was handed out again");
        before.insert(id);
    }
}

/// Attempts a `duplicate` delivery makes, with the receiver answering 200
/// to the first send and 503 to everything after, until it is dead; with
/// `kill`, the daemon is killed and restarted once the first 503 is logged.
async fn duplicate_attempts_until_dead(kill: bool) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mock.db");
    let args = [
        "--port",
        "0",
        "--db",
        db.to_str().unwrap(),
        "--webhook-secret",
        SECRET,
        // Long enough to kill within the first wait, short after it.
        "--retry-schedule",
        "2s,50ms",
    ];
    let receiver = Receiver::start().await;
    receiver.script(&[200]);
    receiver.always(503);
    let mut mock = MockProcess::start(&args);
    let mut client = mock.client(KEY);
    let mut body = job_to(&receiver.url);
    body["metadata"]["mock"] = json!({"webhook": {"mode": "duplicate"}});
    let id = client.create(body).await;
    let _restarted;
    if kill {
        wait_for("the first 503 to be logged", 20, || async {
            let r = client.get(&format!("/_mock/deliveries?job_id={id}")).await;
            let d = r.body["deliveries"].get(0)?;
            let statuses: Vec<&Value> = d["attempts"]
                .as_array()?
                .iter()
                .map(|a| &a["status"])
                .collect();
            (statuses == [&json!(200), &json!(503)]).then_some(())
        })
        .await;
        mock.kill9();
        _restarted = MockProcess::start(&args);
        client = _restarted.client(KEY);
    }
    let dead = client.wait_delivery(&id, "dead").await;
    dead["attempts"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_restart_does_not_shorten_the_retry_budget_of_a_duplicate_delivery() {
    let (uninterrupted, restarted) = tokio::join!(
        duplicate_attempts_until_dead(false),
        duplicate_attempts_until_dead(true)
    );
    let statuses = |attempts: &[Value]| -> Vec<Value> {
        attempts.iter().map(|a| a["status"].clone()).collect()
    };
    // One 200, then the first send after it plus one per schedule entry.
    assert_eq!(statuses(&uninterrupted), [200, 503, 503, 503]);
    assert_eq!(statuses(&restarted), statuses(&uninterrupted));
}
