//! The Rust example of README.md ("Testing with mock-camber") and of
//! docs/testing-with-rust.md, copied from here: keep them in step.

use mock_camber_testkit::{Error, MockCamber, WaitFor::Completed, WebhookReceiver};
use std::time::Duration;
#[tokio::test]
async fn a_job_completes_and_its_retried_webhook_verifies() -> Result<(), Error> {
    let (mock, hooks) = (MockCamber::start().await, WebhookReceiver::start().await);
    hooks.respond_with([500, 200]); // the first attempt fails, the retry succeeds
    let (camber, ten) = (mock.tenant(), Duration::from_secs(10)); // a fresh tenant (API key)
    let body = serde_json::json!({"app": "ocr", "input": {}, "webhook": {"url": hooks.url()}});
    let job = camber.submit(&body).await?;
    let done = camber.wait_for_job(&job.id, Completed, ten).await?; // a long-poll, no sleep
    let calls = hooks.wait_for(2, ten).await; // woken by each call
    assert!(done.result.is_some() && calls[1].verified() && calls[1].attempt == 2);
    Ok(())
}
