//! The ceiling for the benchmarks: the least an actix-web server can do for
//! a `POST` — read the body, answer 201 with a fixed JSON of the size of a
//! submit answer. No state, no store, no engine. `scripts/bench.sh` loads it
//! with the same wrk command and the same worker count as mock-camber, so
//! each throughput there is also a fraction of what this machine can serve.
//!
//! `cargo run --release --example ceiling -- --port 0 --workers 2`

use std::io::Write;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Fixed-JSON actix-web server: the throughput ceiling of the benchmarks")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 9200)]
    port: u16,
    /// HTTP worker threads (mock-camber's default is one per CPU).
    #[arg(long)]
    workers: Option<usize>,
}

/// About the bytes of mock-camber's `201` to `POST /jobs`.
const ANSWER: &str = r#"{"id":"cmb_000000000001a1b2c3d4e5f6","job_id":"cmb_000000000001a1b2c3d4e5f6","status":"pending","app":"bench","created_at":"2026-01-26T10:30:45.123456Z"}"#;

async fn answer(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/json")
        .body(ANSWER)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let server = HttpServer::new(|| App::new().default_service(web::to(answer)))
        .workers(workers)
        .backlog(4096)
        .bind((args.host.as_str(), args.port))?;
    println!("listening on http://{}", server.addrs()[0]);
    std::io::stdout().flush()?;
    server.run().await
}
