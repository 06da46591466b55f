//! Shared-instance bounds of the webhook outbox: a receiver that hangs
//! holds at most its destination's share of the in-flight slots, so other
//! tenants' webhooks still arrive at once; after a reset answers, no
//! attempt starts.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::json;

use crate::helpers::*;

/// A receiver that accepts every connection and never answers (the
/// connections stay open until the test ends); its URL and how many
/// connections it has accepted.
fn hung_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let held: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.lock().push(stream);
        }
    });
    (format!("http://127.0.0.1:{port}/hook"), accepted)
}

#[actix_web::test]
async fn a_hung_receiver_holds_only_its_destinations_slots_and_other_tenants_webhooks_arrive_at_once(
) {
    // A pool of 8 with 2 per destination; each hung attempt holds its slot
    // for the 2 s timeout. Before per-destination limits, the 40 attempts
    // queued for the hung receiver took every slot and tenant B's webhooks
    // waited behind them (40 / 8 × 2 s ≈ 10 s).
    let app = spawn_app_with(|s| {
        s.webhook_max_in_flight = 8;
        s.webhook_max_per_destination = 2;
        s.delivery_timeout = Duration::from_secs(2);
        s.retry_schedule = shared::retry::Schedule(vec![Duration::from_millis(10)]);
    })
    .await;
    let (hung, accepted) = hung_receiver();
    let a = app.client.with_key("tenant-a");
    for _ in 0..40 {
        a.create(job_to(&hung)).await;
    }
    wait_for("the hung receiver to hold attempts", 10, || async {
        (accepted.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    let b = app.client.with_key("tenant-b");
    let mut healthy = Receiver::start().await;
    for i in 0..5 {
        let started = Instant::now();
        let id = b.create(job_to(&healthy.url)).await;
        let got = tokio::time::timeout(Duration::from_secs(1), healthy.next())
            .await
            .unwrap_or_else(|_| panic!("tenant B's webhook {i} ({id}) not there within 1 s"));
        assert_eq!(got.json()["camber_job_id"], id.as_str());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

/// Records when each request arrives, then answers 200 after `delay`.
fn slow_receiver(delay: Duration) -> (String, Arc<Mutex<Vec<Instant>>>) {
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

#[actix_web::test]
async fn after_a_reset_answers_no_new_webhook_attempt_starts() {
    // More webhooks than the in-flight pool (256), each answered after
    // 2 s: before the fix, the attempts waiting for a slot still went out
    // after the reset (the issue saw 744 of 1,000).
    let app = spawn_app_with(|s| s.delivery_timeout = Duration::from_secs(10)).await;
    let (url, arrivals) = slow_receiver(Duration::from_secs(2));
    for _ in 0..400 {
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
    let on_the_wire = arrivals.lock().len();
    // Watch, polling, for longer than the attempts on the wire take to
    // be answered (2 s), when waiting ones would take their slots.
    let watch = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch {
        let after: Vec<Duration> = (arrivals.lock().iter())
            .filter(|t| **t > reset_at)
            .map(|t| t.duration_since(reset_at))
            .collect();
        // Only a request already written when reset answered may still be
        // read by the receiver, at once; none may start later.
        assert!(
            after.iter().all(|d| *d < Duration::from_millis(250)),
            "{} attempts started after the reset ({on_the_wire} before): {after:?}",
            after.len()
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(arrivals.lock().len() < 400, "every webhook went out anyway");
    let r = app.client.get("/_mock/deliveries?state=pending").await;
    assert_eq!(r.body["deliveries"], json!([]), "{}", r.text);
    // The outbox still works after the reset.
    let before = arrivals.lock().len();
    app.client.create(job_to(&url)).await;
    wait_for("a webhook after the reset", 10, || {
        let n = arrivals.lock().len();
        async move { (n > before).then_some(()) }
    })
    .await;
}
