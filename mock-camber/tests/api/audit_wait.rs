//! `GET /_mock/audits/{id}?wait_ms=…`: a long-poll on a report, answered
//! the moment the audit is done (woken by the report's commit), at once
//! when it is done already, and 408 with the report still `running` when
//! its time runs out first.

use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::helpers::*;

/// A receiver that answers 200 to everything, but only once `gate` is
/// open: until then each request of the audit waits (and times out at the
/// mock's delivery timeout), so the audit stays `running`.
fn gated_receiver() -> (String, watch::Sender<bool>) {
    let (open, gate) = watch::channel(false);
    let gate = web::Data::new(gate);
    let server = HttpServer::new(move || {
        App::new().app_data(gate.clone()).default_service(web::to(
            |gate: web::Data<watch::Receiver<bool>>, _body: Bytes| async move {
                let mut gate = (**gate).clone();
                let _ = gate.wait_for(|open| *open).await;
                HttpResponse::Ok().body("ok")
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hook"), open)
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

fn ms_of(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("rfc3339")
        .timestamp_millis()
}

#[actix_rt::test]
async fn a_report_wait_answers_when_the_audit_is_done_at_once_when_done_and_408_at_its_deadline() {
    let app = spawn_app().await;
    let c = &app.client;
    let (url, gate) = gated_receiver();
    let mut body = job_to(&url);
    body["metadata"]["mock"] = json!({"hold": true});
    let job = c.create(body).await;
    let r = c.post(&format!("/_mock/jobs/{job}/audit"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Past its deadline: 408 with the report as it is, still running.
    let t0 = Instant::now();
    let r = c.get(&format!("/_mock/audits/{id}?wait_ms=200")).await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "WAIT_TIMEOUT", "{}", r.text);
    assert_eq!(r.body["audit"]["id"], id.as_str());
    assert_eq!(r.body["audit"]["state"], "running", "{}", r.text);
    assert!(t0.elapsed() >= Duration::from_millis(200));

    // Parked on the running audit: answered when it finishes.
    let long = awc::Client::builder()
        .timeout(Duration::from_secs(90))
        .finish();
    let wait_url = format!("{}/_mock/audits/{id}?wait_ms=60000", c.address);
    let waiter = actix_rt::spawn(async move {
        let mut res = long.get(wait_url).send().await.expect("the wait answers");
        let body: Value = res.json().limit(1 << 20).await.expect("JSON");
        (
            res.status().as_u16(),
            body,
            chrono::Utc::now().timestamp_millis(),
        )
    });
    wait_for("the wait to park", 10, || async {
        (waiting(&app).await == 1).then_some(())
    })
    .await;
    gate.send_replace(true);
    let (status, report, answered_at) = waiter.await.unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(report["cases"].as_array().unwrap().len(), 19, "{report}");
    // Woken by the report's commit, not a polling interval or the 60 s.
    let lag = answered_at - ms_of(&report["finished_at"]);
    assert!(lag < 1000, "answered {lag} ms after the audit finished");
    assert_eq!(waiting(&app).await, 0);

    // Done already: at once.
    let t0 = Instant::now();
    let r = c.get(&format!("/_mock/audits/{id}?wait_ms=60000")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, report);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[actix_rt::test]
async fn a_report_wait_refuses_a_bad_wait_ms_and_an_unknown_audit() {
    let app = spawn_app().await;
    for bad in ["60001", "-1", "soon", "1.5"] {
        let r = app
            .client
            .get(&format!("/_mock/audits/aud_nope?wait_ms={bad}"))
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST", "{}", r.text);
    }
    let r = app.client.get("/_mock/audits/aud_nope?wait_ms=5000").await;
    assert_eq!(r.status, 404, "{}", r.text);
}
