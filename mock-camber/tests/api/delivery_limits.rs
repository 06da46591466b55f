//! Shared-instance bounds of the webhook outbox: a receiver that hangs
//! holds at most its destination's share of the in-flight slots, so other
//! tenants' webhooks still arrive at once.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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
