//! Receivers that misbehave, served from raw sockets: a redirect is a failed
//! attempt and is never followed, an answer that never ends is read only up
//! to a bounded excerpt, a connection closed without an answer and a 410 are
//! failed attempts retried on the schedule until the delivery is dead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// A loopback "receiver" that hands every connection to `serve` (one
/// thread per connection); its URL.
fn raw_receiver(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    format!("http://127.0.0.1:{port}/hook")
}

/// Reads the request head (and whatever body came with it).
fn read_request(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 65536];
    let _ = s.read(&mut buf);
}

fn statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect()
}

#[actix_web::test]
async fn a_redirect_is_a_failed_attempt_and_is_never_followed() {
    let app = spawn_app().await;
    fn redirect(mut s: TcpStream) {
        read_request(&mut s);
        // Followed, this would end in a refused connection (no status).
        let _ = s.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n",
        );
    }
    let id = app.client.create(job_to(&raw_receiver(redirect))).await;
    let d = app.client.wait_delivery(&id, "dead").await;
    assert_eq!(statuses(&d), [json!(302), json!(302), json!(302)], "{d}");
}

#[actix_web::test]
async fn an_answer_that_never_ends_is_read_only_up_to_a_bounded_excerpt() {
    let app = spawn_app().await;
    fn endless(mut s: TcpStream) {
        read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 4096, "y".repeat(4096));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if s.write_all(chunk.as_bytes()).is_err() {
                return; // the mock hung up: good
            }
        }
    }
    let id = app.client.create(job_to(&raw_receiver(endless))).await;
    let d = app.client.wait_delivery(&id, "delivered").await;
    let attempt = &d["attempts"][0];
    assert_eq!(attempt["status"], 200, "{d}");
    let excerpt = attempt["response_excerpt"].as_str().unwrap();
    assert!(
        excerpt.len() <= 1024 && excerpt.starts_with("yyyy"),
        "{excerpt:.60}"
    );
    assert!(
        attempt["latency_ms"].as_u64().unwrap() < 2000,
        "not read to the delivery timeout: {attempt}"
    );
}

#[actix_web::test]
async fn a_connection_closed_without_an_answer_and_a_410_are_retried_until_dead() {
    let app = spawn_app().await;
    fn hang_up(mut s: TcpStream) {
        read_request(&mut s);
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    fn gone(mut s: TcpStream) {
        read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone");
    }
    let closed = app.client.create(job_to(&raw_receiver(hang_up))).await;
    let gone = app.client.create(job_to(&raw_receiver(gone))).await;

    let d = app.client.wait_delivery(&closed, "dead").await;
    assert_eq!(statuses(&d), [Value::Null, Value::Null, Value::Null], "{d}");
    assert!(d["attempts"][0]["error"].as_str().unwrap().len() > 3, "{d}");
    let d = app.client.wait_delivery(&gone, "dead").await;
    assert_eq!(statuses(&d), [json!(410), json!(410), json!(410)], "{d}");
    assert_eq!(d["attempts"][0]["response_excerpt"], "gone");
}
