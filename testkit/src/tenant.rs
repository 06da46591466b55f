//! [`Tenant`]: a typed client of the Camber job API under one API key.

use std::time::Duration;

use actix_web::http::Method;
use serde::{Deserialize, Serialize};
use shared::{JobStatus, JobView, SubmitResponse};

use crate::http::{long_poll, Http, Request, Response};
use crate::Error;

/// A client of the job API (`/jobs`) with one API key, on the `shared`
/// wire types. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use mock_camber_testkit::{MockCamber, WaitFor};
/// use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mock_camber_testkit::Error> {
/// let mock = MockCamber::start().await;
/// let camber = mock.tenant();
/// let job = camber.submit(&json!({"app": "ocr", "input": {"filename": "a.pdf"}})).await?;
/// let done = camber.wait_for_job(&job.id, WaitFor::Completed, Duration::from_secs(10)).await?;
/// assert!(done.result.is_some());
/// assert!(camber.logs(&job.id).await?.contains("NORMALIZE"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tenant {
    http: Http,
    uri: String,
    key: String,
}

/// The state [`Tenant::wait_for_job`] waits for (`wait_for=` of
/// `GET /jobs/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    Running,
    Completed,
    Failed,
    /// Completed, failed or cancelled.
    Terminal,
}

impl WaitFor {
    fn as_str(self) -> &'static str {
        match self {
            WaitFor::Running => "running",
            WaitFor::Completed => "completed",
            WaitFor::Failed => "failed",
            WaitFor::Terminal => "terminal",
        }
    }
}

#[derive(Deserialize)]
struct Page {
    jobs: Vec<JobView>,
    next: Option<String>,
}

/// A 408 or 409 body of a wait: the view is under `job`.
#[derive(Deserialize)]
struct WaitError {
    job: Option<Box<JobView>>,
}

impl Tenant {
    pub(crate) fn new(http: Http, uri: String, key: String) -> Self {
        Self { http, uri, key }
    }

    /// This tenant's API key (`Authorization: Bearer <key>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The mock's base URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn request(&self, method: Method, path: &str) -> Request {
        let mut req = Request::new(method, format!("{}{path}", self.uri));
        req.bearer = Some(self.key.clone());
        req
    }

    /// `POST /jobs` with any body that serialises to a submit request
    /// (`shared::SubmitRequest`, or `json!({...})` with `metadata.mock`
    /// scenarios); 201 expected.
    pub async fn submit(&self, body: &impl Serialize) -> Result<SubmitResponse, Error> {
        self.submit_with(body, &[]).await
    }

    /// [`Tenant::submit`] with headers (`Idempotency-Key`,
    /// `X-Mock-Scenario`); 201 expected.
    pub async fn submit_with(
        &self,
        body: &impl Serialize,
        headers: &[(&str, &str)],
    ) -> Result<SubmitResponse, Error> {
        let mut req = self.request(Method::POST, "/jobs").json(body);
        req.headers.extend(
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.http.send(req).await?.expect("POST /jobs", 201)
    }

    /// `GET /jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<JobView, Error> {
        let what = format!("GET /jobs/{id}");
        self.http
            .send(self.request(Method::GET, &format!("/jobs/{id}")))
            .await?
            .expect(&what, 200)
    }

    /// Waits until the job is in `state`, with the mock's long-poll
    /// (`wait_for` + `wait_ms`): answered the moment it gets there, never
    /// by polling. [`Error::Timeout`] (with the last view) when `timeout`
    /// passes first; [`Error::Status`] 409 when the job ended otherwise.
    pub async fn wait_for_job(
        &self,
        id: &str,
        state: WaitFor,
        timeout: Duration,
    ) -> Result<JobView, Error> {
        let what = format!("job {id} to be {}", state.as_str());
        let request = |wait_ms| {
            let path = format!("/jobs/{id}?wait_for={}&wait_ms={wait_ms}", state.as_str());
            self.request(Method::GET, &path)
        };
        let last = |res: &Response| {
            let job = res.parse::<WaitError>(&what).ok().and_then(|e| e.job);
            job.map(|j| format!("{j:?}"))
        };
        long_poll(&self.http, &what, timeout, request, last)
            .await?
            .parse(&what)
    }

    /// Every job of this tenant (all pages), newest first; only those in
    /// `status` when given.
    pub async fn list(&self, status: Option<JobStatus>) -> Result<Vec<JobView>, Error> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!(
                "/jobs?limit=500&status={}&cursor={cursor}",
                status.map_or("", JobStatus::as_str)
            );
            let page: Page = self
                .http
                .send(self.request(Method::GET, &path))
                .await?
                .expect("GET /jobs", 200)?;
            all.extend(page.jobs);
            match page.next {
                Some(next) => cursor = next,
                None => return Ok(all),
            }
        }
    }

    /// `POST /jobs/{id}/cancel`: the cancelled job.
    pub async fn cancel(&self, id: &str) -> Result<JobView, Error> {
        let what = format!("POST /jobs/{id}/cancel");
        self.http
            .send(self.request(Method::POST, &format!("/jobs/{id}/cancel")))
            .await?
            .expect(&what, 200)
    }

    /// `GET /jobs/{id}/logs`: the simulated run's log lines.
    pub async fn logs(&self, id: &str) -> Result<String, Error> {
        let what = format!("GET /jobs/{id}/logs");
        let res = self
            .http
            .send(self.request(Method::GET, &format!("/jobs/{id}/logs")))
            .await?;
        if res.status != 200 {
            return Err(res.unexpected(&what));
        }
        Ok(res.text())
    }
}
