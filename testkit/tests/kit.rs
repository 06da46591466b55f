//! The test kit used as a test author would: each entry point against the
//! real in-process mock over loopback HTTP.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use mock_camber_testkit::{Error, MockCamber, WaitFor, WebhookReceiver, WEBHOOK_SECRET};
use serde_json::json;
use shared::{JobStatus, WebhookEvent, WebhookState, WebhookStatus};

const WAIT: Duration = Duration::from_secs(10);

fn job_to(url: &str) -> serde_json::Value {
    json!({"app": "ocr", "input": {"filename": "a.pdf"}, "webhook": {"url": url}})
}

#[tokio::test]
async fn a_started_mock_answers_at_once_and_its_port_is_closed_once_dropped() {
    let started = Instant::now();
    let mock = MockCamber::start().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "started in {took:?}");
    let addr = format!("127.0.0.1:{}", mock.port());
    assert_eq!(mock.uri(), format!("http://{addr}"));
    // Answers right away: no readiness wait needed.
    assert!(mock.tenant().list(None).await.unwrap().is_empty());
    let admin = mock.admin();
    assert!(TcpStream::connect(&addr).is_ok());

    drop(mock);
    let refused = TcpStream::connect(&addr).expect_err("the port is closed after drop");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // A client that outlives its mock says so.
    assert!(
        matches!(admin.reset().await, Err(Error::Stopped)),
        "stopped"
    );
}

// README "Testing with mock-camber" / docs/testing-with-rust.md copy this test.
#[tokio::test]
async fn a_tenant_submits_a_job_and_waits_for_it_to_complete() {
    let mock = MockCamber::start().await;
    let camber = mock.tenant();

    let job = camber
        .submit(&json!({"app": "ocr", "input": {"filename": "a.pdf"}}))
        .await
        .unwrap();
    let done = camber
        .wait_for_job(&job.id, WaitFor::Completed, Duration::from_secs(10))
        .await
        .unwrap();

    assert_eq!(done.status, JobStatus::Completed);
    assert!(done.result.is_some());
    let logs = camber.logs(&job.id).await.unwrap();
    assert!(logs.contains("NORMALIZE"), "{logs}");
    let listed = camber.list(Some(JobStatus::Completed)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, job.id);
}

/// The same under actix's own test runtime.
#[actix_web::test]
async fn the_kit_works_under_actix_web_test_too() {
    let mock = MockCamber::start().await;
    let hooks = WebhookReceiver::start().await;
    let camber = mock.tenant();
    let job = camber.submit(&job_to(hooks.url())).await.unwrap();
    let done = camber
        .wait_for_job(&job.id, WaitFor::Terminal, WAIT)
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let got = hooks.wait_for(1, WAIT).await;
    assert_eq!(got[0].body.camber_job_id, job.id);
    assert!(got[0].verified());
}

#[tokio::test]
async fn each_tenant_sees_only_its_own_jobs_and_can_cancel_them() {
    let mock = MockCamber::builder()
        .stage_time(Duration::from_secs(60))
        .start()
        .await;
    let (a, b) = (mock.tenant(), mock.tenant());
    assert_ne!(a.key(), b.key());
    let job = a.submit(&json!({"app": "ocr", "input": {}})).await.unwrap();
    assert!(b.list(None).await.unwrap().is_empty());
    match b.job(&job.id).await {
        Err(Error::Status { status: 404, .. }) => {}
        other => panic!("another tenant's job is a 404: {other:?}"),
    }
    a.wait_for_job(&job.id, WaitFor::Running, WAIT)
        .await
        .unwrap();
    let cancelled = a.cancel(&job.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    // It ended otherwise: waiting for `completed` is a 409 at once.
    match a.wait_for_job(&job.id, WaitFor::Completed, WAIT).await {
        Err(Error::Status { status: 409, .. }) => {}
        other => panic!("a cancelled job never completes: {other:?}"),
    }
    assert_eq!(mock.admin().jobs(&[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_wait_that_runs_out_says_so_with_the_last_view() {
    let mock = MockCamber::builder()
        .rules(json!([{"match": {"/input/filename": "/hold/"}, "scenario": {"hold": true}}]))
        .start()
        .await;
    let camber = mock.tenant();
    let job = camber
        .submit(&json!({"app": "ocr", "input": {"filename": "hold.pdf"}}))
        .await
        .unwrap();
    // Held at its first stage: running, and never completing by itself.
    camber
        .wait_for_job(&job.id, WaitFor::Running, WAIT)
        .await
        .unwrap();
    let started = Instant::now();
    match camber
        .wait_for_job(&job.id, WaitFor::Completed, Duration::from_millis(300))
        .await
    {
        Err(Error::Timeout {
            last: Some(last), ..
        }) => assert!(last.contains("Running"), "{last}"),
        other => panic!("a held job does not complete: {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
}

// README "Testing with mock-camber" / docs/testing-with-rust.md copy this test.
#[tokio::test]
async fn a_webhook_answered_500_is_retried_and_both_attempts_verify() {
    let mock = MockCamber::start().await;
    let hooks = WebhookReceiver::start().await;
    hooks.respond_with([500, 200]);

    let job = mock
        .tenant()
        .submit(&json!({"app": "ocr", "input": {}, "webhook": {"url": hooks.url()}}))
        .await
        .unwrap();
    let calls = hooks.wait_for(2, Duration::from_secs(10)).await;

    assert_eq!((calls[0].attempt, calls[0].answered), (1, 500));
    assert_eq!((calls[1].attempt, calls[1].answered), (2, 200));
    assert!(calls
        .iter()
        .all(|c| c.verified() && c.body.camber_job_id == job.id));
    let delivered = mock
        .admin()
        .wait_deliveries(
            &[("job_id", &job.id), ("state", "delivered")],
            1,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(delivered[0].attempts.len(), 2);
}

#[tokio::test]
async fn the_receiver_repeats_the_last_status_and_the_mock_records_every_attempt() {
    let mock = MockCamber::builder()
        .retry_schedule([Duration::from_millis(5), Duration::from_millis(5)])
        .start()
        .await;
    let hooks = WebhookReceiver::start().await;
    hooks.respond_with([503]);
    let job = mock.tenant().submit(&job_to(hooks.url())).await.unwrap();
    let dead = mock
        .admin()
        .wait_deliveries(&[("job_id", &job.id), ("state", "dead")], 1, WAIT)
        .await
        .unwrap();
    let attempts: Vec<_> = dead[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(attempts, [Some(503); 3]);
    assert_eq!(dead[0].event, WebhookEvent::Completed);
    assert_eq!(dead[0].state, WebhookState::Dead);
    let calls = hooks.wait_for(3, WAIT).await;
    assert!(calls.iter().all(|c| c.answered == 503));

    // Redelivered by hand once the receiver is back.
    hooks.respond_with([200]);
    mock.admin().redeliver(&dead[0].id).await.unwrap();
    let calls = hooks.wait_for(4, WAIT).await;
    assert_eq!((calls[3].attempt, calls[3].answered), (4, 200));
    mock.admin()
        .wait_deliveries(&[("job_id", &job.id), ("state", "delivered")], 1, WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn builder_settings_take_effect() {
    let rules = json!([{"match": {"/input/filename": "/fail/"},
                        "scenario": {"outcome": "failure", "error": {"code": "OCR_FAILURE"}}}]);
    let build = || {
        MockCamber::builder()
            .stage_time(Duration::from_millis(40))
            .seed(42)
            .webhook_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .retry_schedule([])
            .rules(rules.clone())
            .admin_token("admin-secret")
    };
    let mock = build().start().await;
    let config = mock.admin().config().await.unwrap();
    assert_eq!(config["stage_ms"], 40);
    assert_eq!(config["rules"].as_array().unwrap().len(), 1);

    // Stage time: three stages of 40 ms between its start and its end.
    let camber = mock.tenant();
    let hooks = mock.webhook_receiver().await;
    let plain = WebhookReceiver::start().await;
    let job = camber.submit(&job_to(hooks.url())).await.unwrap();
    let done = camber
        .wait_for_job(&job.id, WaitFor::Completed, WAIT)
        .await
        .unwrap();
    let at =
        |t: &Option<String>| chrono::DateTime::parse_from_rfc3339(t.as_deref().unwrap()).unwrap();
    let took = at(&done.finished_at) - at(&done.started_at);
    assert!(took >= chrono::Duration::milliseconds(120), "{took:?}");

    // Secret: verified with the mock's own, not with the default one.
    let got = hooks.wait_for(1, WAIT).await;
    assert!(got[0].verified_hex && got[0].verified_standard);
    let other = camber.submit(&job_to(plain.url())).await.unwrap();
    let got = plain.wait_for(1, WAIT).await;
    assert_eq!(got[0].body.camber_job_id, other.id);
    assert!(
        !got[0].verified_hex && !got[0].verified_standard,
        "signed with {WEBHOOK_SECRET}?"
    );

    // Rules: a matching submit fails as the rule says.
    let failing = camber
        .submit(&json!({"app": "ocr", "input": {"filename": "fail.pdf"}}))
        .await
        .unwrap();
    let failed = camber
        .wait_for_job(&failing.id, WaitFor::Failed, WAIT)
        .await
        .unwrap();
    assert_eq!(failed.error.unwrap().code, "OCR_FAILURE");

    // Retry schedule: none, so one refused attempt makes the delivery dead.
    let refusing = WebhookReceiver::start().await;
    refusing.respond_with([500]);
    let lost = camber.submit(&job_to(refusing.url())).await.unwrap();
    let dead = mock
        .admin()
        .wait_deliveries(&[("job_id", &lost.id), ("state", "dead")], 1, WAIT)
        .await
        .unwrap();
    assert_eq!(dead[0].attempts.len(), 1);

    // Admin token: the kit's admin client sends it; a request without it is 401.
    assert_eq!(status_of(mock.port(), "/_mock/config"), 401);

    // Seed: the same seed and submissions give the same ids.
    let again = build().start().await;
    let first = again.tenant().submit(&job_to(hooks.url())).await.unwrap();
    assert_eq!(first.id, job.id);
}

#[tokio::test]
async fn a_mock_with_api_keys_accepts_only_those() {
    let mock = MockCamber::builder().api_key("k1").start().await;
    assert!(mock
        .tenant_with_key("k1")
        .list(None)
        .await
        .unwrap()
        .is_empty());
    match mock.tenant_with_key("k2").list(None).await {
        Err(Error::Status { status: 401, .. }) => {}
        other => panic!("an unknown key is refused: {other:?}"),
    }
}

/// The status line of a bare `GET path` without credentials.
fn status_of(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

#[tokio::test]
async fn time_control_rules_and_the_journal_through_the_admin_api() {
    let mock = MockCamber::start().await;
    let admin = mock.admin();
    admin
        .set_rules(json!([{"match": {"/input/filename": "/hold/"}, "scenario": {"hold": true}}]))
        .await
        .unwrap();
    let hooks = WebhookReceiver::start().await;
    let camber = mock.tenant();
    let held =
        json!({"app": "ocr", "input": {"filename": "hold.pdf"}, "webhook": {"url": hooks.url()}});
    let one = camber.submit(&held).await.unwrap();
    let two = camber.submit(&held).await.unwrap();
    let three = camber.submit(&held).await.unwrap();
    camber
        .wait_for_job(&one.id, WaitFor::Running, WAIT)
        .await
        .unwrap();

    let stepped = admin.advance(&one.id).await.unwrap();
    assert_eq!(stepped.stage.as_deref(), Some("OCR"));
    let completed = admin
        .complete(&two.id, Some(json!({"total": 12})))
        .await
        .unwrap();
    assert_eq!(completed.result.unwrap()["total"], 12);
    let failed = admin
        .fail(&three.id, json!({"code": "FETCH_FAILED"}))
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);

    let calls = hooks.wait_for(2, WAIT).await;
    let statuses: Vec<_> = calls.iter().map(|c| c.body.status).collect();
    assert!(
        statuses.contains(&WebhookStatus::Success) && statuses.contains(&WebhookStatus::Failed)
    );

    let submits = admin
        .requests(&[("method", "POST"), ("path", "/jobs")])
        .await
        .unwrap();
    assert_eq!(submits.len(), 3);
    assert_eq!(submits[0].body["input"]["filename"], "hold.pdf");
    assert_eq!(submits[0].status, 201);
    let by_regex = admin
        .wait_requests(
            &[
                ("method", "GET"),
                ("path", "/^/jobs/.+[?&]wait_for=running/"),
            ],
            1,
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(by_regex.len(), 1);

    admin.reset().await.unwrap();
    assert!(camber.list(None).await.unwrap().is_empty());
    assert_eq!(
        admin.config().await.unwrap()["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// README.md and docs/testing-with-rust.md show `tests/readme.rs` as it is.
#[test]
fn the_readme_and_the_guide_show_the_example_ci_runs() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let test = std::fs::read_to_string(format!("{root}/testkit/tests/readme.rs")).unwrap();
    let example = &test[test.find("use mock_camber_testkit").unwrap()..];
    for doc in ["README.md", "docs/testing-with-rust.md"] {
        let text = std::fs::read_to_string(format!("{root}/{doc}")).unwrap();
        assert!(
            text.contains(&format!("```rust\n{example}```")),
            "{doc} no longer shows testkit/tests/readme.rs"
        );
    }
}
