//! End-to-end load driver for `scripts/bench.sh`: creates `--jobs` jobs on
//! api with `--concurrency` of them in flight, each one `POST /jobs` then
//! `GET /jobs/{id}` until it is `completed`, and prints throughput and
//! create → completed latency percentiles, as the client saw them and from
//! the job's own timestamps (`created_at` to its last event's `at`).
//!
//! `cargo run --release -p api --example drive -- --api http://127.0.0.1:8000 --jobs 1000 --concurrency 1`
//!
//! Polls back off from `--poll-min-us` to `--poll-max-us` (doubling), so
//! that 64 jobs in flight do not flood api with GETs; at concurrency 1 the
//! two are equal and the client-side figure is exact to that interval.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
struct Args {
    /// api's base URL.
    #[arg(long)]
    api: String,
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    #[arg(long, default_value_t = 200)]
    poll_min_us: u64,
    #[arg(long, default_value_t = 10_000)]
    poll_max_us: u64,
    /// Per-job limit from create to completed.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// A label printed in the summary line.
    #[arg(long, default_value = "e2e")]
    label: String,
}

const BODY: &str = r#"{"portal_schema_name":"invoice","filename":"a.pdf","mime_type":"application/pdf","file_size_bytes":1000}"#;

#[derive(Default)]
struct Tally {
    client_ms: Vec<f64>,
    server_ms: Vec<f64>,
    create_ms: Vec<f64>,
    polls: u64,
}

fn ts(v: &Value) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_micros() as f64 / 1000.0)
}

async fn one(client: &awc::Client, args: &Args, tally: &RefCell<Tally>) -> Result<(), String> {
    let t0 = Instant::now();
    let mut res = client
        .post(format!("{}/jobs", args.api))
        .insert_header(("Content-Type", "application/json"))
        .send_body(BODY)
        .await
        .map_err(|e| format!("POST /jobs: {e}"))?;
    let body = res
        .body()
        .await
        .map_err(|e| format!("POST /jobs body: {e}"))?;
    if res.status().as_u16() != 201 {
        return Err(format!(
            "POST /jobs answered {}: {}",
            res.status(),
            String::from_utf8_lossy(&body)
        ));
    }
    let created = t0.elapsed();
    let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let id = v["job_id"].as_str().ok_or("no job_id")?.to_owned();
    let url = format!("{}/jobs/{id}", args.api);
    let mut wait = Duration::from_micros(args.poll_min_us);
    let max = Duration::from_micros(args.poll_max_us.max(args.poll_min_us));
    let mut polls = 0u64;
    let job = loop {
        actix_rt::time::sleep(wait).await;
        wait = (wait * 2).min(max);
        polls += 1;
        let mut res = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let body = res.body().await.map_err(|e| format!("GET body: {e}"))?;
        let job: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        match job["status"].as_str() {
            Some("completed") => break job,
            Some("failed") => return Err(format!("job {id} failed: {}", job["error"])),
            _ if t0.elapsed() > Duration::from_secs(args.timeout_secs) => {
                return Err(format!("job {id} still {} after the limit", job["status"]))
            }
            _ => {}
        }
    };
    let done = t0.elapsed();
    let server = job["events"]
        .as_array()
        .and_then(|e| e.last())
        .and_then(|e| ts(&e["at"]))
        .zip(ts(&job["created_at"]))
        .map(|(end, start)| end - start);
    let mut t = tally.borrow_mut();
    t.create_ms.push(created.as_secs_f64() * 1000.0);
    t.client_ms.push(done.as_secs_f64() * 1000.0);
    if let Some(ms) = server {
        t.server_ms.push(ms);
    }
    t.polls += polls;
    Ok(())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn line(name: &str, v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let (p50, p99) = (pct(v, 50.0), pct(v, 99.0));
    println!(
        "{name}: p50 {p50:.2} ms  p90 {:.2} ms  p99 {p99:.2} ms  max {:.2} ms  (n={})",
        pct(v, 90.0),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    );
    (p50, p99)
}

#[actix_rt::main]
async fn main() {
    let args = Rc::new(Args::parse());
    let client = Rc::new(
        awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(awc::Connector::new().limit(args.concurrency.max(1) * 2))
            .finish(),
    );
    let tally = Rc::new(RefCell::new(Tally::default()));
    let next = Rc::new(Cell::new(0usize));
    let failed = Rc::new(RefCell::new(Vec::<String>::new()));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (args, client, tally, next, failed) = (
                args.clone(),
                client.clone(),
                tally.clone(),
                next.clone(),
                failed.clone(),
            );
            actix_rt::spawn(async move {
                loop {
                    let i = next.get();
                    if i >= args.jobs {
                        break;
                    }
                    next.set(i + 1);
                    if let Err(e) = one(&client, &args, &tally).await {
                        failed.borrow_mut().push(e);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut t = tally.borrow_mut();
    let ok = t.client_ms.len();
    println!(
        "{} jobs at concurrency {} in {secs:.2} s: {:.0} jobs/s completed, {} failed, {:.1} polls/job",
        args.jobs,
        args.concurrency,
        ok as f64 / secs,
        failed.borrow().len(),
        t.polls as f64 / ok.max(1) as f64
    );
    line("POST /jobs answered 201", &mut t.create_ms);
    let (c50, c99) = line("create -> completed, client side", &mut t.client_ms);
    let (s50, s99) = line(
        "create -> completed, job's own timestamps",
        &mut t.server_ms,
    );
    println!(
        "summary {}: jobs/s {:.0} client_p50_ms {c50:.2} client_p99_ms {c99:.2} server_p50_ms {s50:.2} server_p99_ms {s99:.2} failed {}",
        args.label,
        ok as f64 / secs,
        failed.borrow().len()
    );
    for e in failed.borrow().iter().take(5) {
        eprintln!("failed: {e}");
    }
    if !failed.borrow().is_empty() {
        std::process::exit(1);
    }
}
