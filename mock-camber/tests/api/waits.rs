//! Long-poll waits (issue "Tests wait, they never sleep"): satisfied at
//! once, satisfied later (woken by the change itself), timed out with what
//! matched so far, refused parameters, and a waiter whose client goes away.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

fn at_ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("an `at`"))
        .expect("rfc3339")
        .timestamp_millis()
}

async fn waiting(app: &TestApp) -> i64 {
    let text = app.client.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix("mock_camber_waiting_requests "))
        .expect("the waiting gauge")
        .trim()
        .parse()
        .unwrap()
}

#[actix_web::test]
async fn a_request_wait_already_satisfied_answers_at_once() {
    let app = spawn_app().await;
    app.client.create(json!({"app": "a", "input": {}})).await;
    let t0 = Instant::now();
    let r = app
        .client
        .get("/_mock/requests?method=POST&path=/jobs&status=201&wait_ms=10000")
        .await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["requests"].as_array().unwrap().len(), 1);
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
}

#[actix_web::test]
async fn a_request_wait_is_woken_by_the_requests_it_waits_for() {
    let app = spawn_app().await;
    let client = app.client.clone();
    let waiter = actix_rt::spawn(async move {
        let r = client
            .get("/_mock/requests?method=POST&path=/^\\/jobs$/&min_count=2&wait_ms=20000")
            .await;
        (r, chrono::Utc::now().timestamp_millis())
    });
    wait_for("the wait to park", 10, || async {
        (waiting(&app).await == 1).then_some(())
    })
    .await;
    app.client.create(json!({"app": "a", "input": {}})).await;
    // One POST is not enough: still parked.
    assert_eq!(waiting(&app).await, 1);
    app.client.create(json!({"app": "b", "input": {}})).await;
    let (r, answered_at) = waiter.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.body["requests"].as_array().unwrap();
    assert_eq!(got.len(), 2);
    // The answer follows the second POST (newest first) closely, not a
    // polling interval or the 20 s limit later.
    let lag = answered_at - at_ms(&got[0]["at"]);
    assert!(
        lag < 1000,
        "answered {lag} ms after the request it waited for"
    );
    assert_eq!(waiting(&app).await, 0);
}

#[actix_web::test]
async fn a_request_wait_that_times_out_is_408_with_what_matched_so_far() {
    let app = spawn_app().await;
    app.client.create(json!({"app": "a", "input": {}})).await;
    let t0 = Instant::now();
    let r = app
        .client
        .get("/_mock/requests?method=POST&min_count=2&wait_ms=150")
        .await;
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "WAIT_TIMEOUT");
    assert_eq!(r.body["requests"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["requests"][0]["method"], "POST");
}

#[actix_web::test]
async fn one_wait_parameter_alone_has_a_default_for_the_other() {
    let app = spawn_app().await;
    let id = app.client.create(held()).await;
    // The engine starts a held job's first stage just after the 201: wait
    // for it, so that the 0 ms answers below do not race it.
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=running&wait_ms=10000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // `wait_for` alone waits 0 ms: the held job is not completed now.
    let started = Instant::now();
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=completed"))
        .await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "WAIT_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=running"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // `wait_ms` alone waits for the end.
    let r = app.client.get(&format!("/jobs/{id}?wait_ms=50")).await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["job"]["status"], "running");
    let waiter = {
        let client = app.client.clone();
        let path = format!("/jobs/{id}?wait_ms=20000");
        actix_web::rt::spawn(async move { client.get(&path).await })
    };
    let adv = app
        .client
        .post(&format!("/_mock/jobs/{id}/complete"), json!({}))
        .await;
    assert_eq!(adv.status, 200, "{}", adv.text);
    let r = waiter.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    // `min_count` alone on a list waits 0 ms.
    let r = app.client.get("/_mock/jobs?min_count=2").await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["jobs"].as_array().unwrap().len(), 1);
    let r = app.client.get("/_mock/jobs?min_count=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A `min_count` above `limit` raises the page so it can hold them.
    app.client.create(held()).await;
    let r = app
        .client
        .get("/_mock/jobs?limit=1&min_count=2&wait_ms=10000")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["jobs"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn bad_wait_parameters_are_422() {
    let app = spawn_app().await;
    for q in [
        "wait_ms=60001",
        "wait_ms=-1",
        "wait_ms=soon",
        "wait_ms=10&min_count=0",
        "min_count=0",
        "wait_ms=10&min_count=501",
        "path=/(/",
        "status=abc",
    ] {
        let r = app.client.get(&format!("/_mock/requests?{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST", "{q}");
    }
}

#[actix_web::test]
async fn a_waiter_whose_client_goes_away_is_released() {
    let app = spawn_app().await;
    let addr = app.client.address.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /_mock/requests?status=599&wait_ms=60000 HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    wait_for("the wait to park", 10, || async {
        (waiting(&app).await == 1).then_some(())
    })
    .await;
    drop(conn);
    wait_for("the parked wait to be released", 10, || async {
        (waiting(&app).await == 0).then_some(())
    })
    .await;
}

fn held() -> Value {
    json!({"app": "rythmiq-worker", "input": {}, "metadata": {"mock": {"hold": true}}})
}

#[actix_web::test]
async fn a_tenant_waits_for_its_job_to_reach_a_state() {
    let app = spawn_app().await;
    let id = app.client.create(held()).await;
    // Already running: at once.
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=running&wait_ms=10000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "running");

    // Not completed within 100 ms: 408 with the current view under "job".
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=completed&wait_ms=100"))
        .await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "WAIT_TIMEOUT");
    assert_eq!(r.body["job"]["id"], id.as_str());
    assert_eq!(r.body["job"]["status"], "running");

    // Completed later: woken by the completion itself.
    let client = app.client.clone();
    let path = format!("/jobs/{id}?wait_for=terminal&wait_ms=20000");
    let waiter = actix_rt::spawn(async move {
        let r = client.get(&path).await;
        (r, chrono::Utc::now().timestamp_millis())
    });
    wait_for("the wait to park", 10, || async {
        (waiting(&app).await == 1).then_some(())
    })
    .await;
    let done = app
        .client
        .post(&format!("/_mock/jobs/{id}/complete"), json!({}))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let (r, answered_at) = waiter.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    let lag = answered_at - at_ms(&r.body["finished_at"]);
    assert!(lag < 1000, "answered {lag} ms after the job finished");
}

#[actix_web::test]
async fn bad_job_waits_are_422_and_another_tenants_job_is_404() {
    let app = spawn_app().await;
    let id = app.client.create(held()).await;
    for q in [
        "wait_for=done&wait_ms=10",
        "wait_for=completed&wait_ms=70000",
        "wait_ms=70000",
    ] {
        let r = app.client.get(&format!("/jobs/{id}?{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
    }
    let other = app.client.with_key("key-other");
    let r = other
        .get(&format!("/jobs/{id}?wait_for=completed&wait_ms=10"))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[actix_web::test]
async fn admin_job_and_delivery_lists_wait_for_enough_matches() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let client = app.client.clone();
    let jobs = actix_rt::spawn(async move {
        client
            .get("/_mock/jobs?status=completed&min_count=2&wait_ms=20000")
            .await
    });
    let client = app.client.clone();
    let deliveries = actix_rt::spawn(async move {
        client
            .get("/_mock/deliveries?event=job.completed&state=delivered&min_count=2&wait_ms=20000")
            .await
    });
    wait_for("both waits to park", 10, || async {
        (waiting(&app).await == 2).then_some(())
    })
    .await;
    for _ in 0..2 {
        app.client.create(job_to(&rx.url)).await;
    }
    rx.next().await;
    rx.next().await;
    let jobs = jobs.await.unwrap();
    assert_eq!(jobs.status, 200, "{}", jobs.text);
    assert_eq!(jobs.body["jobs"].as_array().unwrap().len(), 2);
    let deliveries = deliveries.await.unwrap();
    assert_eq!(deliveries.status, 200, "{}", deliveries.text);
    let list = deliveries.body["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|d| d["event"] == "job.completed"));

    // The event filter filters, and a wait on nothing times out with [].
    let r = app
        .client
        .get("/_mock/deliveries?event=job.failed&wait_ms=100")
        .await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["deliveries"], json!([]));
    let r = app.client.get("/_mock/deliveries?event=job.done").await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = app.client.get("/_mock/jobs?wait_ms=-5").await;
    assert_eq!(r.status, 422, "{}", r.text);
}

#[actix_web::test]
async fn waiting_for_a_state_a_finished_job_never_reaches_is_409_at_once() {
    let app = spawn_app().await;
    let mut body = held();
    body["metadata"]["mock"] = json!({"outcome": "failure"});
    let id = app.client.create(body).await;
    app.client.wait_status(&id, "failed").await;
    let t0 = Instant::now();
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=completed&wait_ms=20000"))
        .await;
    assert!(t0.elapsed() < Duration::from_secs(5), "did not wait it out");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "CONFLICT");
    assert_eq!(r.body["job"]["status"], "failed");
    let r = app
        .client
        .get(&format!("/jobs/{id}?wait_for=failed&wait_ms=20000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn wakeups(app: &TestApp) -> u64 {
    let text = app.client.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix("mock_camber_wait_wakeups_total "))
        .expect("the wake-ups counter")
        .trim()
        .parse()
        .unwrap()
}

#[actix_web::test]
async fn a_change_wakes_only_the_waits_it_can_satisfy() {
    let app = spawn_app().await;
    let mut held_ids = Vec::new();
    for _ in 0..20 {
        held_ids.push(app.client.create(held()).await);
    }
    let job_waits: Vec<_> = (held_ids.iter())
        .map(|id| {
            let client = app.client.clone();
            let path = format!("/jobs/{id}?wait_for=completed&wait_ms=30000");
            actix_rt::spawn(async move { client.get(&path).await })
        })
        .collect();
    for path in [
        "/_mock/jobs?app=nobody&wait_ms=30000",
        "/_mock/jobs?status=failed&wait_ms=30000",
        "/_mock/deliveries?job_id=cmb_nobody&wait_ms=30000",
        "/_mock/requests?path=/nothing&wait_ms=30000",
    ] {
        let client = app.client.clone();
        actix_rt::spawn(async move { client.get(path).await });
    }
    let parked = held_ids.len() as i64 + 4;
    wait_for("the waits to park", 10, || async {
        (waiting(&app).await == parked).then_some(())
    })
    .await;
    let before = wakeups(&app).await;

    // Submits of other jobs and polls: no parked wait can be satisfied by
    // them, none wakes (before, each commit woke all 24 to re-read).
    for _ in 0..30 {
        app.client.create(json!({"app": "busy", "input": {}})).await;
    }
    app.client.get(&format!("/jobs/{}", held_ids[1])).await;
    assert_eq!(wakeups(&app).await, before);
    assert_eq!(waiting(&app).await, parked);

    // One held job completes: its wait, and only it, wakes and answers.
    let done = app
        .client
        .post(&format!("/_mock/jobs/{}/complete", held_ids[0]), json!({}))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let mut job_waits = job_waits.into_iter();
    let first = job_waits.next().unwrap().await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "completed");
    assert_eq!(wakeups(&app).await, before + 1);
    assert_eq!(waiting(&app).await, parked - 1);

    // Reset wakes every wait; the job waits answer 404 (their jobs are
    // gone), the list waits stay parked (nothing matches yet).
    let r = app.client.post("/_mock/reset", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for w in job_waits {
        assert_eq!(w.await.unwrap().status, 404);
    }
    assert_eq!(waiting(&app).await, 4);
    app.handle.stop(false).await;
}
