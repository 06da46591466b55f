//! Hostile input (issue 12): absurd numbers, deep or broken JSON, a
//! catastrophic regex, bad paging. Each gets a clear 4xx (or, for the
//! regex, a bounded match) and the daemon keeps serving everyone else.

use serde_json::{json, Value};

use crate::helpers::*;

/// The daemon still serves an ordinary tenant, on a new connection (a
/// pooled one may have just reached the server's keep-alive limit).
async fn still_serving(app: &TestApp) {
    let client = app.client.with_key(&app.client.key);
    let id = client.create(json!({"app": "x", "input": {}})).await;
    let job = client.wait_status(&id, "completed").await;
    assert_eq!(job["status"], "completed");
}

#[actix_web::test]
async fn absurd_runtime_config_values_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let before = app.client.get("/_mock/config").await.body;
    for bad in [
        json!({"latency_ms": u64::MAX}),
        json!({"latency_ms": 60_001}),
        json!({"latency_ms": -1}),
        json!({"stage_ms": 1_000_000_000_000u64}),
        json!({"stage_ms": 0, "latency_ms": u64::MAX}),
        json!({"failure_rate": 1e308}),
        json!({"rules": [{"match": {"/app": "x"}, "scenario": {"stage_ms": 1_000_000_000_000u64}}]}),
        json!({"rules": [{"match": {"/app": "x"}, "scenario": {"webhook": {"count": 1_000_000_000}}}]}),
        json!({"rules": [[{"/app": "x"}, {}]]}),
        json!({"rules": [{"match": {"/app": "x"}, "scenario": []}]}),
    ] {
        let r = app.client.put("/_mock/config", bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST", "{bad}");
    }
    assert_eq!(app.client.get("/_mock/config").await.body, before);
    still_serving(&app).await;
}

#[actix_web::test]
async fn deep_broken_and_huge_json_are_400_and_the_daemon_keeps_serving() {
    let app = spawn_app().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!(
        r#"{{"app": "x", "input": {}1{}}}"#,
        r#"{"a":"#.repeat(100_000),
        "}".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("100,000-deep array", deep.into_bytes()),
        ("100,000-deep object", deep_obj.into_bytes()),
        (
            "invalid UTF-8",
            b"{\"app\": \"\xff\xfe\", \"input\": {}}".to_vec(),
        ),
        (
            "lone surrogate",
            br#"{"app": "\ud800", "input": {}}"#.to_vec(),
        ),
        ("NaN", br#"{"app": "x", "input": {"n": NaN}}"#.to_vec()),
        (
            "trailing garbage",
            br#"{"app": "x", "input": {}} {}"#.to_vec(),
        ),
    ];
    for (what, body) in cases {
        let r = app.client.send("POST", "/jobs", &[], Some(body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_JSON", "{what}");
        let r = app
            .client
            .send("PUT", "/_mock/config", &[], Some(b"[[[[".repeat(50_000)))
            .await;
        assert_eq!(r.status, 400, "config, {what}: {}", r.text);
    }
    assert_eq!(app.client.get("/jobs").await.body["jobs"], json!([]));
    still_serving(&app).await;
}

#[actix_web::test]
async fn a_catastrophic_regex_in_a_rule_matches_in_linear_time() {
    let app = spawn_app().await;
    // Exponential for a backtracking engine on "aaaa…!"; Rust's regex is not.
    let rule = json!({"rules": [{"match": {"/input/name": "/^(a+)+$/"},
                                 "scenario": {"outcome": "failure"}}]});
    let r = app.client.put("/_mock/config", rule).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let evil = format!("{}!", "a".repeat(50_000));
    let id = app
        .client
        .create(json!({"app": "x", "input": {"name": evil}}))
        .await;
    // No match (the "!"), so the job completes as usual.
    let job = app.client.wait_status(&id, "completed").await;
    assert_eq!(job["status"], "completed");
    let id = app
        .client
        .create(json!({"app": "x", "input": {"name": "a".repeat(50_000)}}))
        .await;
    assert_eq!(
        app.client.wait_status(&id, "failed").await["status"],
        "failed"
    );
}

#[actix_web::test]
async fn bad_paging_is_422_on_every_list() {
    let app = spawn_app().await;
    for list in [
        "/jobs",
        "/_mock/jobs",
        "/_mock/deliveries",
        "/_mock/requests",
    ] {
        for q in [
            "limit=0",
            "limit=-1",
            "limit=501",
            "limit=99999999999999999999999",
            "cursor=-5",
            "cursor=abc",
            "cursor=99999999999999999999999",
            "cursor=%00",
        ] {
            let r = app.client.get(&format!("{list}?{q}")).await;
            assert_eq!(r.status, 422, "{list}?{q}: {}", r.text);
            let code: &Value = &r.body["error"]["code"];
            assert_eq!(code, "INVALID_REQUEST", "{list}?{q}");
        }
        // Empty values are "not given".
        let r = app.client.get(&format!("{list}?limit=&cursor=")).await;
        assert_eq!(r.status, 200, "{list}: {}", r.text);
    }
}

#[actix_web::test]
async fn slow_loris_connections_are_cut_off_and_do_not_block_anyone() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let app = spawn_app().await;
    let addr = app.client.address.trim_start_matches("http://").to_owned();
    // 200 clients that send half a request head and then nothing, from a
    // thread of their own (blocking sockets stay off the test's runtime).
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let slow: Vec<std::net::TcpStream> = (0..200)
            .map(|_| {
                let mut c = std::net::TcpStream::connect(&addr).unwrap();
                write!(c, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").unwrap();
                c
            })
            .collect();
        opened_tx.send(()).unwrap();
        // Ok: the server closed the connection (after its 408).
        let ended = slow
            .into_iter()
            .filter(|c| {
                let mut c = c.try_clone().unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                c.read_to_end(&mut Vec::new()).is_ok()
            })
            .count();
        ended_tx.send(ended).unwrap();
    });
    opened_rx.await.unwrap();
    let started = Instant::now();
    // Everyone else is served meanwhile.
    still_serving(&app).await;
    // Each slow connection is answered 408 and closed by the server's
    // request-head timeout (actix-web's 5 s default), not held forever.
    let ended = ended_rx.await.unwrap();
    assert_eq!(ended, 200, "slow connections the server closed");
    assert!(started.elapsed() < Duration::from_secs(20));
    still_serving(&app).await;
}

#[actix_web::test]
async fn oversized_heads_are_431_and_the_daemon_keeps_serving() {
    use std::io::{Read, Write};

    let app = spawn_app().await;
    let addr = app.client.address.trim_start_matches("http://").to_owned();
    let status_lines = actix_web::rt::task::spawn_blocking(move || {
        [200_000usize, 2_000_000]
            .into_iter()
            .map(|size| {
                let mut c = std::net::TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Big: ");
                // The server may answer and close before all of it is sent.
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&vec![b'a'; size]);
                let mut answer = [0u8; 64];
                let n = c.read(&mut answer).unwrap_or(0);
                String::from_utf8_lossy(&answer[..n])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for line in &status_lines {
        assert!(line.starts_with("HTTP/1.1 431"), "{status_lines:?}");
    }
    still_serving(&app).await;
}

/// A `whsec_` secret that Standard Webhooks libraries cannot decode (the
/// url-safe alphabet, a stray character) would sign every webhook with a
/// key no receiver derives: the daemon refuses to start, in one line that
/// names the flag and does not repeat the secret. Unpadded base64 is what
/// the libraries accept, so it starts.
#[test]
fn a_whsec_secret_that_is_not_base64_is_refused_at_start_naming_the_flag() {
    use std::process::Command;
    const BIN: &str = env!("CARGO_BIN_EXE_mock-camber");
    for (args, flag) in [
        (
            vec!["--webhook-secret", "whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD"],
            "--webhook-secret",
        ),
        (
            vec!["--webhook-secret", "new-plain,whsec_not*base64"],
            "--webhook-secret",
        ),
        (vec!["--api-key", "tenant=whsec_ab_c"], "--api-key"),
    ] {
        let out = Command::new(BIN)
            .args(["--port", "0", "--db", ":memory:"])
            .args(&args)
            .env("RUST_LOG", "error")
            .env_remove("WEBHOOK_SECRET")
            .env_remove("CAMBER_API_KEYS")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(
            !err.contains("not*base64") && !err.contains("b5sSYspob7oD"),
            "{err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    }
    // Unpadded standard base64 starts (and is stopped at once).
    let mut ok = MockProcess::start(&[
        "--port",
        "0",
        "--db",
        ":memory:",
        "--webhook-secret",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o",
    ]);
    ok.kill9();
}

/// Sends `request` on a new connection to `addr` (`host:port`) and reads
/// until the server closes it (or `wait` passes): the whole answer and how
/// long the close took.
fn raw_exchange(
    addr: &str,
    request: &[u8],
    wait: std::time::Duration,
) -> (String, std::time::Duration) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(wait)).unwrap();
    let started = std::time::Instant::now();
    c.write_all(request).unwrap();
    let mut answer = Vec::new();
    let closed = c.read_to_end(&mut answer).is_ok();
    assert!(
        closed,
        "the server did not close the connection within {wait:?}"
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// A body that stalls (Content-Length 1,000,000, 10 bytes, then nothing)
/// is answered 408 `REQUEST_TIMEOUT` in the JSON shape at the body deadline
/// and its connection closed, instead of being held open forever.
#[actix_web::test]
async fn a_stalled_body_is_408_and_closed_at_the_body_deadline() {
    let app = spawn_app_with(|s| {
        s.body_timeout = std::time::Duration::from_millis(500);
        s.max_body_bytes = 2_000_000;
    })
    .await;
    let addr = app.client.address.trim_start_matches("http://").to_owned();
    let key = app.client.key.clone();
    let (answer, took) = actix_web::rt::task::spawn_blocking(move || {
        let head = format!(
            "POST /jobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"app\": 1"
        );
        raw_exchange(&addr, head.as_bytes(), std::time::Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"REQUEST_TIMEOUT\""), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    still_serving(&app).await;
}

/// A chunked body that breaks off (a chunk size that is not hex) is 400
/// `INVALID_REQUEST`, as on api (it was 422 here).
#[actix_web::test]
async fn a_broken_chunked_body_is_400_invalid_request() {
    let app = spawn_app().await;
    let addr = app.client.address.trim_start_matches("http://").to_owned();
    let key = app.client.key.clone();
    let (answer, _) = actix_web::rt::task::spawn_blocking(move || {
        let req = format!(
            "POST /jobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\n{{\"app\r\nzz\r\n"
        );
        raw_exchange(&addr, req.as_bytes(), std::time::Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"INVALID_REQUEST\""), "{answer}");
    still_serving(&app).await;
}
