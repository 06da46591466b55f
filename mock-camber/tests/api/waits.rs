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
async fn bad_wait_parameters_are_422() {
    let app = spawn_app().await;
    for q in [
        "wait_ms=60001",
        "wait_ms=-1",
        "wait_ms=soon",
        "wait_ms=10&min_count=0",
        "min_count=2",
        "wait_ms=10&min_count=5&limit=2",
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
