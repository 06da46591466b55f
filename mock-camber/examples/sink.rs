//! A fast webhook sink for benchmarks: answers 204 to every POST, counts
//! them, shows the count at `GET /count`, and prints it when stopped with
//! SIGINT or SIGTERM. `PUT /answer/503` makes it answer 503 with
//! `Retry-After: 1` instead (to build a backlog of pending deliveries),
//! `PUT /answer/204` turns it back.
//!
//! `cargo run --release --example sink -- --port 9100` (port 0 picks a free
//! one; the bound address is printed as `listening on http://HOST:PORT`).

use std::io::Write;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Webhook sink: 204 to every POST, GET /count says how many")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// HTTP worker threads. One is plenty for loopback benchmarks and
    /// leaves the other cores to the server under test.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

struct Sink {
    received: AtomicU64,
    answer: AtomicU16,
}

/// Every request but the control routes is a webhook: read the body (so
/// the connection can be kept alive), count it, answer.
async fn hook(_body: web::Bytes, sink: web::Data<Sink>) -> HttpResponse {
    sink.received.fetch_add(1, Ordering::Relaxed);
    let status =
        StatusCode::from_u16(sink.answer.load(Ordering::Relaxed)).unwrap_or(StatusCode::NO_CONTENT);
    let mut res = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        res.insert_header(("Retry-After", "1"));
    }
    res.finish()
}

async fn count(sink: web::Data<Sink>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(format!("{}\n", sink.received.load(Ordering::Relaxed)))
}

async fn answer(status: web::Path<u16>, sink: web::Data<Sink>) -> HttpResponse {
    match StatusCode::from_u16(*status) {
        Ok(s) => {
            sink.answer.store(s.as_u16(), Ordering::Relaxed);
            HttpResponse::NoContent().finish()
        }
        Err(_) => HttpResponse::BadRequest().body("not an HTTP status\n"),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let sink = web::Data::new(Sink {
        received: AtomicU64::new(0),
        answer: AtomicU16::new(204),
    });
    let data = sink.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // Webhook bodies are small, but do not refuse a large one.
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/count", web::get().to(count))
            .route("/answer/{status}", web::put().to(answer))
            .default_service(web::to(hook))
    })
    .workers(args.workers)
    .backlog(4096)
    .bind((args.host.as_str(), args.port))?;
    let addr = server.addrs()[0];
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    // actix-web stops on SIGINT/SIGTERM by itself; then print the total.
    server.run().await?;
    println!(
        "sink received {} webhooks",
        sink.received.load(Ordering::Relaxed)
    );
    Ok(())
}
