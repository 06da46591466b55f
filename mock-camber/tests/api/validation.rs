//! Bad input to submit gets a clear error and creates nothing.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn each_bad_submit_gets_its_status_and_code_and_nothing_is_created() {
    let app = spawn_app_with(|s| s.max_body_bytes = 2048).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("malformed JSON", b"{\"app\": ".to_vec(), 400, "INVALID_JSON", "JSON"),
        ("not an object", b"[1,2]".to_vec(), 422, "INVALID_REQUEST", "object"),
        ("missing app", br#"{"input": {}}"#.to_vec(), 422, "INVALID_REQUEST", "`app`"),
        ("empty app", br#"{"app": " ", "input": {}}"#.to_vec(), 422, "INVALID_REQUEST", "`app`"),
        ("app not a string", br#"{"app": 7, "input": {}}"#.to_vec(), 422, "INVALID_REQUEST", "`app`"),
        ("missing input", br#"{"app": "x"}"#.to_vec(), 422, "INVALID_REQUEST", "`input`"),
        ("input not an object", br#"{"app": "x", "input": "file.pdf"}"#.to_vec(), 422, "INVALID_REQUEST", "`input`"),
        ("metadata not an object", br#"{"app": "x", "input": {}, "metadata": []}"#.to_vec(), 422, "INVALID_REQUEST", "`metadata`"),
        ("bad scenario", br#"{"app": "x", "input": {}, "metadata": {"mock": {"outcome": "maybe"}}}"#.to_vec(), 422, "INVALID_REQUEST", "metadata.mock"),
        ("scenario webhook an array", br#"{"app": "x", "input": {}, "metadata": {"mock": {"webhook": [true]}}}"#.to_vec(), 422, "INVALID_REQUEST", "metadata.mock"),
        ("scenario an array", br#"{"app": "x", "input": {}, "metadata": {"mock": ["success"]}}"#.to_vec(), 422, "INVALID_REQUEST", "metadata.mock"),
        ("absurd stage_ms", br#"{"app": "x", "input": {}, "metadata": {"mock": {"stage_ms": 1000000000000}}}"#.to_vec(), 422, "INVALID_REQUEST", "stage_ms"),
        ("absurd count", br#"{"app": "x", "input": {}, "metadata": {"mock": {"webhook": {"mode": "duplicate", "count": 1000000000}}}}"#.to_vec(), 422, "INVALID_REQUEST", "count"),
        ("delay_ms 2^63-1", br#"{"app": "x", "input": {}, "metadata": {"mock": {"webhook": {"mode": "delay", "delay_ms": 9223372036854775807}}}}"#.to_vec(), 422, "INVALID_REQUEST", "delay_ms"),
        ("delay_ms 2^64-1", br#"{"app": "x", "input": {}, "metadata": {"mock": {"webhook": {"mode": "delay", "delay_ms": 18446744073709551615}}}}"#.to_vec(), 422, "INVALID_REQUEST", "delay_ms"),
        ("scenario result not an object", br#"{"app": "x", "input": {}, "metadata": {"mock": {"result": 0}}}"#.to_vec(), 422, "INVALID_REQUEST", "metadata.mock"),
        ("webhook not an object", br#"{"app": "x", "input": {}, "webhook": "http://a"}"#.to_vec(), 422, "INVALID_REQUEST", "`webhook`"),
        ("ftp webhook url", br#"{"app": "x", "input": {}, "webhook": {"url": "ftp://host/x"}}"#.to_vec(), 422, "INVALID_REQUEST", "webhook.url"),
        ("relative webhook url", br#"{"app": "x", "input": {}, "webhook": {"url": "/hook"}}"#.to_vec(), 422, "INVALID_REQUEST", "webhook.url"),
        ("webhook header not a string", br#"{"app": "x", "input": {}, "webhook": {"url": "http://a/h", "headers": {"X-A": 1}}}"#.to_vec(), 422, "INVALID_REQUEST", "webhook.headers.X-A"),
        ("oversized body", format!(r#"{{"app": "x", "input": {{"pad": "{}"}}}}"#, "x".repeat(4096)).into_bytes(), 413, "PAYLOAD_TOO_LARGE", "2048"),
    ];
    for (what, body, status, code, mentions) in &cases {
        let r = app
            .client
            .send("POST", "/jobs", &[], Some(body.clone()))
            .await;
        assert_eq!(r.status, *status, "{what}: {}", r.text);
        assert_eq!(r.body["error"]["code"], *code, "{what}: {}", r.text);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(mentions),
            "{what}: message {msg:?} should name {mentions}"
        );
    }
    // The journal saw every request, each answered with an error…
    let journal = app.client.journal().await;
    let statuses: Vec<u64> = journal
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.len(), cases.len());
    assert!(statuses.iter().all(|s| *s >= 400));
    // …and no job exists, for the tenant or for the admin.
    assert_eq!(app.client.get("/jobs").await.body["jobs"], json!([]));
    assert_eq!(app.client.get("/_mock/jobs").await.body["jobs"], json!([]));
}

#[actix_web::test]
async fn a_bad_scenario_header_is_422_and_a_bad_idempotency_key_too() {
    let app = spawn_app().await;
    let body = json!({"app": "x", "input": {}});
    let r = app
        .client
        .submit_with(body.clone(), &[("X-Mock-Scenario", "{not json")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("X-Mock-Scenario"));
    let long = "k".repeat(300);
    let r = app
        .client
        .submit_with(body, &[("Idempotency-Key", long.as_str())])
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(app.client.get("/jobs").await.body["jobs"], json!([]));
    // An empty X-Mock-Scenario (some clients send one) is no scenario.
    let r = app
        .client
        .submit_with(json!({"app": "x", "input": {}}), &[("X-Mock-Scenario", "")])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}
