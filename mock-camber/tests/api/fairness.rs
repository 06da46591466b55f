//! Webhook delivery on a shared instance: a hanging receiver of one tenant
//! does not delay another tenant's webhooks, and a reset starts no attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::json;

use crate::helpers::{job_to, spawn_app_with, wait_for, Receiver};

/// Accepts TCP connections and never answers: each attempt to it holds
/// its slot until the delivery timeout.
async fn hanging_receiver() -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    actix_rt::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *count.lock() += 1;
            held.push(socket);
        }
    });
    (format!("http://127.0.0.1:{port}/hook"), accepted)
}

#[actix_rt::test]
async fn a_hanging_receiver_of_one_tenant_does_not_delay_another_tenants_webhooks() {
    let app = spawn_app_with(|s| {
        s.webhook_max_in_flight = 8;
        s.webhook_max_per_destination = 2;
        s.delivery_timeout = Duration::from_secs(3);
        s.retry_schedule = shared::retry::Schedule(vec![Duration::from_secs(30)]);
    })
    .await;
    let (a, b) = (
        app.client.with_key("tenant-a"),
        app.client.with_key("tenant-b"),
    );
    let (hang_url, accepted) = hanging_receiver().await;
    // Three times the whole pool, all due at once.
    for _ in 0..24 {
        assert_eq!(a.submit(job_to(&hang_url)).await.status, 201);
    }
    wait_for("the hanging receiver to hold attempts", 10, || {
        let n = *accepted.lock();
        async move { (n >= 2).then_some(()) }
    })
    .await;
    eprintln!("DEBUG accepted {}", *accepted.lock());
    let j = a.get("/_mock/deliveries?limit=3").await;
    eprintln!("DEBUG {}", j.text);
    let mut recorder = Receiver::start().await;
    for i in 0..5 {
        let r = b.submit(job_to(&recorder.url)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let ended = Instant::now();
        let hook = recorder.next().await;
        let late = ended.elapsed();
        assert_eq!(hook.json()["camber_job_id"], r.body["id"], "job {i}");
        assert!(
            late < Duration::from_secs(1),
            "tenant b's webhook {i} arrived {late:?} after its job ended"
        );
    }
    // The hanging destination held at most its own share of the pool.
    assert!(*accepted.lock() <= 2, "{} connections", *accepted.lock());
}

/// Records when each request arrives, then answers 200 after `delay`.
async fn slow_receiver(delay: Duration) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = web::Data::new(arrivals.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(seen.clone()).default_service(web::to(
            move |seen: web::Data<Arc<Mutex<Vec<Instant>>>>| async move {
                seen.lock().push(Instant::now());
                actix_rt::time::sleep(delay).await;
                HttpResponse::Ok().finish()
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hook"), arrivals)
}

#[actix_rt::test]
async fn after_a_reset_answers_no_new_webhook_attempt_starts() {
    let app = spawn_app_with(|s| s.webhook_max_in_flight = 4).await;
    let (url, arrivals) = slow_receiver(Duration::from_millis(300)).await;
    for _ in 0..40 {
        assert_eq!(app.client.submit(job_to(&url)).await.status, 201);
    }
    wait_for("the first attempts", 10, || {
        let n = arrivals.lock().len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    let r = app.client.post("/_mock/reset", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reset_at = Instant::now();
    // Watch for well over the time the queued ones would take to start
    // (four every 300 ms), polling.
    let watch = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch {
        let late = arrivals.lock().iter().filter(|t| **t > reset_at).count();
        // Only requests already on the wire when reset answered may still
        // reach the receiver, at once; none may start later.
        assert!(late <= 4, "{late} webhooks arrived after the reset");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let after: Vec<Duration> = (arrivals.lock().iter())
        .filter(|t| **t > reset_at)
        .map(|t| t.duration_since(reset_at))
        .collect();
    assert!(
        after.iter().all(|d| *d < Duration::from_millis(250)),
        "attempts started after the reset: {after:?}"
    );
    assert!(arrivals.lock().len() < 40, "every webhook went out anyway");
}
