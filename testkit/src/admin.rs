//! [`Admin`]: a typed client of the mock's admin API (`/_mock/…`).

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::{JobView, WebhookEvent, WebhookState};

use crate::http::{long_poll, Http, Request, Response};
use crate::Error;

/// The admin API: reset, runtime config and scenario rules, time control
/// of held jobs, deliveries, the request journal, redeliver. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use mock_camber_testkit::{MockCamber, WaitFor};
/// use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mock_camber_testkit::Error> {
/// let mock = MockCamber::start().await;
/// let admin = mock.admin();
/// admin.set_rules(json!([{"match": {"/input/filename": "/hold/"}, "scenario": {"hold": true}}])).await?;
/// let camber = mock.tenant();
/// let job = camber.submit(&json!({"app": "ocr", "input": {"filename": "hold.pdf"}})).await?;
/// camber.wait_for_job(&job.id, WaitFor::Running, Duration::from_secs(5)).await?;
/// admin.fail(&job.id, json!({"code": "OCR_FAILURE"})).await?;
/// let failed = camber.job(&job.id).await?;
/// assert_eq!(failed.error.unwrap().code, "OCR_FAILURE");
/// assert_eq!(admin.requests(&[("method", "POST"), ("path", "/jobs")]).await?.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    pub(crate) http: Http,
    uri: String,
    token: Option<String>,
}

/// A webhook delivery as the mock records it (`GET /_mock/deliveries`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MockDelivery {
    pub id: String,
    /// The Camber job id.
    pub job_id: String,
    pub event: WebhookEvent,
    pub url: String,
    pub state: WebhookState,
    pub attempts: Vec<Attempt>,
}

/// One attempt of a [`MockDelivery`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Attempt {
    pub n: u32,
    pub at: String,
    /// HTTP status, `None` on a transport failure.
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// A request the mock received (`GET /_mock/requests`), secrets masked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JournalEntry {
    pub at: String,
    pub method: String,
    pub path: String,
    pub tenant: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// The JSON it sent (text when not JSON, null when empty).
    pub body: Value,
    pub status: u16,
}

fn query(filters: &[(&str, &str)]) -> String {
    filters
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Admin {
    pub(crate) fn new(http: Http, uri: String, token: Option<String>) -> Self {
        Self { http, uri, token }
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> Request {
        let mut req = Request::new(method, format!("{}{path}", self.uri));
        req.bearer = self.token.clone();
        req
    }

    /// `GET` of any admin path and query (`/_mock/stats`, …), as JSON.
    pub async fn get(&self, path_and_query: &str) -> Result<Value, Error> {
        let what = format!("GET {path_and_query}");
        self.http
            .send(self.request(Method::GET, path_and_query))
            .await?
            .expect(&what, 200)
    }

    async fn post(&self, path: &str, body: &Value, want: u16) -> Result<Value, Error> {
        let what = format!("POST {path}");
        self.http
            .send(self.request(Method::POST, path).json(body))
            .await?
            .expect(&what, want)
    }

    /// `POST /_mock/reset`: forgets jobs, deliveries and the journal; the
    /// config stays.
    pub async fn reset(&self) -> Result<(), Error> {
        self.post("/_mock/reset", &json!({}), 200).await.map(drop)
    }

    /// `GET /_mock/config`: stage time, rates, latency, rules.
    pub async fn config(&self) -> Result<Value, Error> {
        self.get("/_mock/config").await
    }

    /// `PUT /_mock/config`: changes the fields named; the whole new config.
    pub async fn set_config(&self, patch: &Value) -> Result<Value, Error> {
        self.http
            .send(self.request(Method::PUT, "/_mock/config").json(patch))
            .await?
            .expect("PUT /_mock/config", 200)
    }

    /// Replaces the scenario rules (see `ScenarioRule` in openapi.yaml).
    pub async fn set_rules(&self, rules: Value) -> Result<Value, Error> {
        self.set_config(&json!({ "rules": rules })).await
    }

    /// Moves a (held) job to its next stage.
    pub async fn advance(&self, job_id: &str) -> Result<JobView, Error> {
        let v = self
            .post(&format!("/_mock/jobs/{job_id}/advance"), &json!({}), 200)
            .await?;
        parse_view(v)
    }

    /// Completes a job now; `result`, when given, is returned verbatim.
    pub async fn complete(&self, job_id: &str, result: Option<Value>) -> Result<JobView, Error> {
        let body = result.map_or_else(|| json!({}), |r| json!({ "result": r }));
        let v = self
            .post(&format!("/_mock/jobs/{job_id}/complete"), &body, 200)
            .await?;
        parse_view(v)
    }

    /// Fails a job now with `{"code", "stage", "reason"}` (each optional).
    pub async fn fail(&self, job_id: &str, error: Value) -> Result<JobView, Error> {
        let v = self
            .post(&format!("/_mock/jobs/{job_id}/fail"), &error, 200)
            .await?;
        parse_view(v)
    }

    /// Jobs of all tenants (all pages), newest first, filtered by
    /// `status`, `app`, `tenant`, `q`.
    pub async fn jobs(&self, filters: &[(&str, &str)]) -> Result<Vec<JobView>, Error> {
        let pages = self.all_pages("/_mock/jobs", filters, "jobs").await?;
        pages.into_iter().map(parse_view).collect()
    }

    /// Deliveries and their attempts (all pages), filtered by `job_id`,
    /// `state`, `event`.
    pub async fn deliveries(&self, filters: &[(&str, &str)]) -> Result<Vec<MockDelivery>, Error> {
        let items = self
            .all_pages("/_mock/deliveries", filters, "deliveries")
            .await?;
        items.into_iter().map(parse).collect()
    }

    /// Waits (long-poll, no polling) until at least `min_count` deliveries
    /// match `filters`, and returns them.
    pub async fn wait_deliveries(
        &self,
        filters: &[(&str, &str)],
        min_count: usize,
        timeout: Duration,
    ) -> Result<Vec<MockDelivery>, Error> {
        let items = self
            .wait_list(
                "/_mock/deliveries",
                filters,
                "deliveries",
                min_count,
                timeout,
            )
            .await?;
        items.into_iter().map(parse).collect()
    }

    /// The request journal (all pages), newest first, filtered by
    /// `method`, `path` (exact or `/regex/`), `status`.
    pub async fn requests(&self, filters: &[(&str, &str)]) -> Result<Vec<JournalEntry>, Error> {
        let items = self
            .all_pages("/_mock/requests", filters, "requests")
            .await?;
        items.into_iter().map(parse).collect()
    }

    /// Waits (long-poll) until at least `min_count` requests match.
    pub async fn wait_requests(
        &self,
        filters: &[(&str, &str)],
        min_count: usize,
        timeout: Duration,
    ) -> Result<Vec<JournalEntry>, Error> {
        let items = self
            .wait_list("/_mock/requests", filters, "requests", min_count, timeout)
            .await?;
        items.into_iter().map(parse).collect()
    }

    /// Sends a delivery's event again (a new attempt, same delivery id).
    pub async fn redeliver(&self, delivery_id: &str) -> Result<(), Error> {
        self.post(
            &format!("/_mock/deliveries/{delivery_id}/redeliver"),
            &json!({}),
            202,
        )
        .await
        .map(drop)
    }

    async fn all_pages(
        &self,
        path: &str,
        filters: &[(&str, &str)],
        key: &str,
    ) -> Result<Vec<Value>, Error> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let q = query(filters);
            let page = self
                .get(&format!("{path}?limit=500&cursor={cursor}&{q}"))
                .await?;
            if let Some(items) = page[key].as_array() {
                all.extend(items.iter().cloned());
            }
            match page["next"].as_str() {
                Some(next) => cursor = encode(next),
                None => return Ok(all),
            }
        }
    }

    async fn wait_list(
        &self,
        path: &str,
        filters: &[(&str, &str)],
        key: &str,
        min_count: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, Error> {
        let what = format!("{min_count} of {path}?{}", query(filters));
        let request = |wait_ms| {
            let q = query(filters);
            let path = format!("{path}?{q}&min_count={min_count}&wait_ms={wait_ms}");
            self.request(Method::GET, &path)
        };
        let last = |res: &Response| Some(res.text());
        let page: Value = long_poll(&self.http, &what, timeout, request, last)
            .await?
            .parse(&what)?;
        Ok(page[key].as_array().cloned().unwrap_or_default())
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, Error> {
    serde_json::from_value(v.clone()).map_err(|e| Error::Body {
        what: "an admin view".to_owned(),
        reason: e.to_string(),
        body: v.to_string(),
    })
}

fn parse_view(v: Value) -> Result<JobView, Error> {
    parse(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(
            super::query(&[("path", "/jobs/[a-z]+/"), ("state", "delivered")]),
            "path=%2Fjobs%2F%5Ba-z%5D%2B%2F&state=delivered"
        );
    }
}
