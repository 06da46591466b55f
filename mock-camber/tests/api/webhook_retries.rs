//! When a webhook is not taken: retries as further attempts of the same
//! event, `Retry-After`, dead letters after the schedule, refused and
//! silent receivers, and a manual redeliver.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_receiver_answering_500_then_200_gets_the_event_again_as_attempt_2() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    rx.script(&[500]);
    let id = app.client.create(job_to(&rx.url)).await;

    let first = rx.next().await;
    let second = rx.next().await;
    assert_eq!(first.header("x-camber-attempt"), "1");
    assert_eq!(second.header("x-camber-attempt"), "2");
    assert_eq!(
        first.header("x-camber-delivery-id"),
        second.header("x-camber-delivery-id")
    );
    assert_eq!(first.body, second.body, "a retry sends the same event");

    let d = app.client.wait_delivery(&id, "delivered").await;
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["response_excerpt"], "receiver said 500");
    assert!(attempts[0]["error"].is_string());
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(d["event"], "job.completed");
}

#[actix_web::test]
async fn a_receiver_that_never_answers_2xx_ends_dead_after_the_schedule() {
    // Schedule 10ms,20ms: three attempts, then dead.
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    rx.always(500);
    let id = app.client.create(job_to(&rx.url)).await;

    let d = app.client.wait_delivery(&id, "dead").await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3);
    for n in 1..=3 {
        assert_eq!(rx.next().await.header("x-camber-attempt"), n.to_string());
    }
    assert!(rx.try_next().is_none(), "no attempt after dead");
    let job = app.client.job(&id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["webhook"]["state"], "dead");
    assert_eq!(job["webhook"]["attempts"], 3);
}

#[actix_web::test]
async fn a_refused_connection_is_retried_and_logged_as_a_transport_error() {
    let app = spawn_app().await;
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = app
        .client
        .create(job_to(&format!("http://127.0.0.1:{port}/hook")))
        .await;
    let d = app.client.wait_delivery(&id, "dead").await;
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts[0]["status"].is_null());
    assert!(attempts[0]["error"].as_str().unwrap().len() > 3);
}

#[actix_web::test]
async fn retry_after_on_503_is_honoured() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    rx.script(&[503]);
    rx.retry_after(1);
    let id = app.client.create(job_to(&rx.url)).await;
    rx.next().await;
    rx.next().await;
    let d = app.client.wait_delivery(&id, "delivered").await;
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(d["attempts"][i]["at"].as_str().unwrap()).unwrap()
    };
    let gap = at(1) - at(0);
    // The schedule says 10 ms; Retry-After says 1 s.
    assert!(gap >= chrono::Duration::milliseconds(950), "gap {gap}");
}

#[actix_web::test]
async fn redeliver_sends_the_same_event_again_as_a_new_attempt() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let id = app.client.create(job_to(&rx.url)).await;
    let first = rx.next().await;
    let d = app.client.wait_delivery(&id, "delivered").await;

    let r = app
        .client
        .post(
            &format!("/_mock/deliveries/{}/redeliver", d["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let again = rx.next().await;
    assert_eq!(again.body, first.body);
    assert_eq!(
        again.header("x-camber-delivery-id"),
        first.header("x-camber-delivery-id")
    );
    assert_eq!(again.header("x-camber-attempt"), "2");
    let d = wait_for("second attempt logged", 10, || async {
        let d = app.client.wait_delivery(&id, "delivered").await;
        (d["attempts"].as_array().unwrap().len() == 2).then_some(d)
    })
    .await;
    assert_eq!(d["state"], "delivered");

    let missing = app
        .client
        .post("/_mock/deliveries/dlv_nope/redeliver", json!({}))
        .await;
    assert_eq!(missing.status, 404);
}

#[actix_web::test]
async fn a_receiver_that_never_answers_times_out_and_is_retried() {
    let app = spawn_app_with(|s| s.delivery_timeout = std::time::Duration::from_millis(100)).await;
    // Connections are queued by the kernel but never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let id = app.client.create(job_to(&url)).await;
    let d = app.client.wait_delivery(&id, "dead").await;
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for a in attempts {
        assert!(a["status"].is_null());
        assert!(a["error"].as_str().unwrap().contains("timed out"), "{a}");
        assert!(a["latency_ms"].as_u64().unwrap() >= 90, "{a}");
    }
    let dead = app.client.get("/_mock/deliveries?state=dead").await;
    assert_eq!(dead.body["deliveries"].as_array().unwrap().len(), 1);
    let pending = app.client.get("/_mock/deliveries?state=pending").await;
    assert_eq!(pending.body["deliveries"], json!([]));
    assert_eq!(
        app.client.get("/_mock/deliveries?state=lost").await.status,
        422
    );
    drop(silent);
}
