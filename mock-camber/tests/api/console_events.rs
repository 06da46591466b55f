//! The console's live updates: `GET /_mock/events` (Server-Sent Events)
//! sends stats at once and after each change, and a graceful stop ends
//! open streams instead of waiting for them.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;

/// Reads the event stream until an event satisfies `want`.
async fn next_event<S>(
    res: &mut awc::ClientResponse<S>,
    buf: &mut String,
    want: impl Fn(&Value) -> bool,
) -> Value
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(i) = buf.find("\n\n") {
            let event: String = buf.drain(..i + 2).collect();
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            assert!(event.starts_with("event: stats\n"), "{event}");
            let v: Value = serde_json::from_str(data).unwrap();
            if want(&v) {
                return v;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, res.next())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[actix_web::test]
async fn the_event_stream_sends_stats_at_once_and_again_after_each_change() {
    let app = spawn_app().await;
    let http = awc::Client::default();
    let mut res = http
        .get(format!("{}/_mock/events", app.client.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let first = next_event(&mut res, &mut buf, |_| true).await;
    assert_eq!(first["jobs"]["total"], 0);
    let version = first["version"].as_u64().unwrap();
    let id = app
        .client
        .create(json!({"app": "a", "input": {}, "metadata": {"mock": {"hold": true}}}))
        .await;
    let after = next_event(&mut res, &mut buf, |v| v["jobs"]["running"] == 1).await;
    assert!(after["version"].as_u64().unwrap() > version);
    assert_eq!(after["jobs"]["total"], 1);
    app.client
        .post(&format!("/_mock/jobs/{id}/complete"), json!({}))
        .await;
    next_event(&mut res, &mut buf, |v| v["jobs"]["completed"] == 1).await;
}

#[actix_web::test]
async fn sigterm_ends_open_event_streams_so_the_daemon_stops_at_once() {
    let mut mock = MockProcess::start(&["--port", "0", "--db", ":memory:"]);
    let http = awc::Client::default();
    let mut res = http
        .get(format!("{}/_mock/events", mock.address))
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    next_event(&mut res, &mut buf, |_| true).await;
    let sent = Command::new("kill")
        .args(["-TERM", &mock.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The stream ends (rather than holding the stop for its 5 s timeout).
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(Ok(_)) = res.next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream was still open after SIGTERM"
    );
    let status = mock.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}
