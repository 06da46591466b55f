//! The mock's own latency at concurrency 1, the figure a contract test
//! feels: `POST /jobs` sent → its webhook received, one job at a time, with
//! the receiver in this process (both timestamps from one clock).
//!
//! Start the mock with `--stage-ms 0` (so each job ends at submit) and point
//! `--mock` at it; every job names this process's receiver as its
//! `webhook.url`, so the mock needs no `--webhook-url`:
//!
//! `cargo run --release -p mock-camber --example latency -- --mock http://127.0.0.1:9000 --jobs 2000`
//!
//! Prints one `summary` line: jobs, p50/p90/p99/max of submit → webhook
//! received and of submit → 201, in milliseconds.

use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
struct Args {
    /// The mock's base URL.
    #[arg(long)]
    mock: String,
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// Bearer key for the mock.
    #[arg(long, default_value = "bench-key")]
    key: String,
    /// Jobs sent first and not counted (connections, caches).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    #[arg(long, default_value = "latency")]
    label: String,
}

/// The receiver: each webhook's caller `job_id` and when it arrived.
async fn hook(
    body: web::Bytes,
    tx: web::Data<mpsc::UnboundedSender<(String, Instant)>>,
) -> HttpResponse {
    let at = Instant::now();
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("job_id")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = tx.send((id, at));
    HttpResponse::NoContent().finish()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let tx = web::Data::new(tx);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(tx.clone())
            .default_service(web::to(hook))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))?;
    let hook_url = format!("http://{}/hook", server.addrs()[0]);
    actix_rt::spawn(server.run());

    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let (mut to_webhook, mut to_201) = (Vec::new(), Vec::new());
    for i in 0..args.warmup + args.jobs {
        let job_id = format!("{}-{i}", args.label);
        let body = serde_json::json!({
            "app": "latency",
            "input": {"filename": "a.pdf"},
            "metadata": {"job_id": job_id},
            "webhook": {"url": hook_url},
        });
        let t0 = Instant::now();
        let res = client
            .post(format!("{}/jobs", args.mock))
            .bearer_auth(&args.key)
            .send_json(&body)
            .await
            .map_err(|e| std::io::Error::other(format!("submit: {e}")))?;
        let created = t0.elapsed();
        if res.status().as_u16() != 201 {
            return Err(std::io::Error::other(format!(
                "submit answered {}",
                res.status()
            )));
        }
        let arrived: Instant = loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((id, at))) if id == job_id => break at,
                Ok(Some(_)) => continue, // a duplicate or an older job's retry
                _ => {
                    return Err(std::io::Error::other(format!(
                        "no webhook for {job_id} within 10 s"
                    )))
                }
            }
        };
        if i >= args.warmup {
            to_webhook.push(arrived.duration_since(t0).as_secs_f64() * 1e3);
            to_201.push(created.as_secs_f64() * 1e3);
        }
    }
    to_webhook.sort_by(f64::total_cmp);
    to_201.sort_by(f64::total_cmp);
    let f = |v: &[f64]| {
        format!(
            "p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            pct(v, 1.0)
        )
    };
    println!(
        "summary label {} jobs {} webhook_ms {} created_ms {}",
        args.label,
        args.jobs,
        f(&to_webhook),
        f(&to_201)
    );
    Ok(())
}
