//! Figures for BENCHMARKS.md: how long `MockCamber::start()` takes, how
//! long until its first answer, how long a drop takes, and what a fresh
//! tenant costs.
//!
//! cargo run --release -p mock-camber-testkit --example start_time [-- STARTS]

use std::time::{Duration, Instant};

use mock_camber_testkit::MockCamber;
use serde_json::json;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() * 9 / 10]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let starts: usize = std::env::args()
        .nth(1)
        .map_or(50, |n| n.parse().expect("STARTS is a number"));
    // Warm-up: the first start pays for lazy statics and the page cache.
    drop(MockCamber::start().await);

    let (mut start, mut first_answer, mut stop) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..starts {
        let t = Instant::now();
        let mock = MockCamber::start().await;
        start.push(t.elapsed());
        mock.tenant().list(None).await.expect("first answer");
        first_answer.push(t.elapsed());
        let t = Instant::now();
        drop(mock);
        stop.push(t.elapsed());
    }
    println!(
        "MockCamber::start() x{starts}: median {:?}, p90 {:?}; first answer after median {:?}; drop median {:?}",
        median(start.clone()),
        p90(start),
        median(first_answer),
        median(stop)
    );

    // A fresh tenant: a new key is a new tenant on its first request. Its
    // cost is that first request (list, then submit) against the same
    // request of a tenant the mock already knows.
    let mock = MockCamber::start().await;
    let known = mock.tenant();
    known.list(None).await.unwrap();
    let body = json!({"app": "ocr", "input": {}});
    let (mut fresh_list, mut known_list, mut fresh_submit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..500 {
        let t = Instant::now();
        let tenant = mock.tenant();
        tenant.list(None).await.unwrap();
        fresh_list.push(t.elapsed());
        let t = Instant::now();
        known.list(None).await.unwrap();
        known_list.push(t.elapsed());
        let t = Instant::now();
        mock.tenant().submit(&body).await.unwrap();
        fresh_submit.push(t.elapsed());
    }
    println!(
        "fresh tenant x500: first request (GET /jobs) median {:?} vs {:?} for a known tenant; first submit median {:?}",
        median(fresh_list),
        median(known_list),
        median(fresh_submit)
    );
}
