//! The receiver audit ([`Admin::audit`]): start it on a job, wait for its
//! report with the mock's long-poll, read it typed.

use std::time::Duration;

use actix_web::http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::{encode, Admin};
use crate::http::{long_poll, Response};
use crate::Error;

/// How [`Admin::audit`] reads the caller's state of the job, and how long
/// it waits for the report.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// A template such as `http://127.0.0.1:8000/jobs/{job_id}` (`{job_id}`
    /// = the caller's `metadata.job_id`): read before and after the
    /// duplicate and conflicting-outcome cases, so that a duplicate applied
    /// twice or a late outcome applied fails them.
    pub state_url: Option<String>,
    /// The JSON pointer of the status in the `state_url` answer (`/status`).
    pub state_pointer: Option<String>,
    /// How long to wait for the report (2 minutes by default).
    pub timeout: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            state_url: None,
            state_pointer: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Worth knowing, not a failure (e.g. a replay exposure).
    Info,
}

/// One request of a case as the receiver answered it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditObserved {
    /// `None` when there was no answer (then `error` says why).
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// At most 200 bytes of the answer.
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

/// One case of the battery, judged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditCase {
    pub name: String,
    pub expected: String,
    pub observed: Vec<AuditObserved>,
    pub verdict: Verdict,
    /// One line a developer can act on.
    pub reason: String,
}

/// How many cases got each verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AuditSummary {
    pub pass: usize,
    pub fail: usize,
    pub info: usize,
}

/// A receiver audit's report (`GET /_mock/audits/{id}`, docs/receiver-audit.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditReport {
    /// `aud_…`.
    pub id: String,
    /// The Camber job id audited.
    pub job_id: String,
    /// `running` or `done`.
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub cases: Vec<AuditCase>,
    pub summary: AuditSummary,
    /// The names of the failed cases: a CI asserts this is empty.
    pub failed: Vec<String>,
}

impl AuditReport {
    /// The case named `name`.
    pub fn case(&self, name: &str) -> Option<&AuditCase> {
        self.cases.iter().find(|c| c.name == name)
    }
}

/// The page of `GET /_mock/audits`.
#[derive(Deserialize)]
struct Page {
    audits: Vec<AuditReport>,
    next: Option<String>,
}

/// A 408 of the report's wait: the report as it is, under `audit`.
#[derive(Deserialize)]
struct WaitError {
    audit: Option<AuditReport>,
}

impl Admin {
    /// Audits the webhook receiver of job `job_id` (which has a
    /// `webhook.url` and has ended, or is held): starts the audit, then
    /// waits for its report with the mock's long-poll (answered the moment
    /// it is done) up to `opts.timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mock_camber_testkit::{AuditOptions, MockCamber, WebhookReceiver};
    /// use serde_json::json;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mock_camber_testkit::Error> {
    /// let mock = MockCamber::start().await;
    /// // The kit's receiver records everything and answers 200 to all.
    /// let hooks = WebhookReceiver::start().await;
    /// let job = mock.tenant()
    ///     .submit(&json!({"app": "ocr", "input": {}, "webhook": {"url": hooks.url()}}))
    ///     .await?;
    /// hooks.wait_for(1, Duration::from_secs(10)).await;
    /// let report = mock.admin().audit(&job.id, AuditOptions::default()).await?;
    /// assert_eq!(report.state, "done");
    /// assert!(report.failed.contains(&"wrong_secret".to_owned()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn audit(&self, job_id: &str, opts: AuditOptions) -> Result<AuditReport, Error> {
        let id = self.start_audit(job_id, &opts).await?;
        self.wait_audit(&id, opts.timeout).await
    }

    /// `POST /_mock/jobs/{id}/audit`: the new audit's id, without waiting.
    pub async fn start_audit(&self, job_id: &str, opts: &AuditOptions) -> Result<String, Error> {
        let path = format!("/_mock/jobs/{job_id}/audit");
        let body = json!({"state_url": opts.state_url, "state_pointer": opts.state_pointer});
        let started: Value = self
            .http
            .send(self.request(Method::POST, &path).json(&body))
            .await?
            .expect(&format!("POST {path}"), 202)?;
        Ok(started["id"].as_str().unwrap_or_default().to_owned())
    }

    /// The report of audit `id` once it is done (long-polls of at most a
    /// minute each); [`Error::Timeout`] with the report so far after
    /// `timeout`.
    pub async fn wait_audit(&self, id: &str, timeout: Duration) -> Result<AuditReport, Error> {
        let what = format!("audit {id} to be done");
        let request = |wait_ms| {
            let path = format!("/_mock/audits/{id}?wait_ms={wait_ms}");
            self.request(Method::GET, &path)
        };
        let last = |res: &Response| {
            let report = res.parse::<WaitError>(&what).ok().and_then(|e| e.audit);
            report.map(|r| format!("{r:?}"))
        };
        long_poll(&self.http, &what, timeout, request, last)
            .await?
            .parse(&what)
    }

    /// The audit reports of job `job_id` (all pages), newest first.
    pub async fn audits(&self, job_id: &str) -> Result<Vec<AuditReport>, Error> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!(
                "/_mock/audits?limit=500&job_id={}&cursor={cursor}",
                encode(job_id)
            );
            let page: Page = self
                .http
                .send(self.request(Method::GET, &path))
                .await?
                .expect("GET /_mock/audits", 200)?;
            all.extend(page.audits);
            match page.next {
                Some(next) => cursor = encode(&next),
                None => return Ok(all),
            }
        }
    }
}
