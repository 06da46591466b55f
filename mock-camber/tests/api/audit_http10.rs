//! The audit against a receiver that answers HTTP/1.0 and closes each
//! connection after its answer without saying `Connection: close` (as
//! Python's `http.server` does): every case still gets its own answer,
//! none reads as "no answer" on a connection the receiver had closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// Answers every request `HTTP/1.0 200` with a body, then closes.
fn http10_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn));
        }
    });
    url
}

fn answer(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_ok() {
        let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
}

#[actix_rt::test]
async fn every_case_gets_an_answer_from_a_receiver_that_closes_each_connection() {
    let app = spawn_app().await;
    let c = &app.client;
    let job = c.create(job_to(&http10_receiver())).await;
    c.wait_delivery(&job, "delivered").await;
    let r = c
        .post(&format!("/_mock/jobs/{job}/audit"), serde_json::json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let report = wait_for("the audit to be done", 60, || async {
        let r = c.get(&format!("/_mock/audits/{id}?wait_ms=5000")).await;
        (r.status == 200).then_some(r.body)
    })
    .await;
    let unanswered: Vec<(&str, &Value)> = (report["cases"].as_array().unwrap().iter())
        .flat_map(|case| {
            let observed = case["observed"].as_array().unwrap().iter();
            observed
                .filter(|o| o["status"].is_null())
                .map(|o| (case["name"].as_str().unwrap(), &o["error"]))
        })
        .collect();
    // Only the dripped body is still being read at the audit's limit.
    assert_eq!(unanswered.len(), 1, "{unanswered:?}");
    assert_eq!(unanswered[0].0, "slow_sender", "{unanswered:?}");
    // Accepting everything, it fails what it deserves, for its own answers.
    let wrong = (report["cases"].as_array().unwrap().iter())
        .find(|c| c["name"] == "value_changed")
        .unwrap();
    assert_eq!(wrong["observed"][0]["status"], 200, "{wrong}");
}
