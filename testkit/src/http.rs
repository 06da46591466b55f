//! Requests sent with awc on an actix thread of the kit's own, so that the
//! typed clients work under any async runtime (`#[tokio::test]`,
//! `#[actix_web::test]`): the caller only awaits a oneshot channel.

use std::time::{Duration, Instant};

use actix_rt::ArbiterHandle;
use actix_web::http::Method;
use actix_web::web::Bytes;
use serde::de::DeserializeOwned;

use crate::Error;

/// One request as plain data (it crosses threads).
pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub bearer: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl Request {
    pub fn new(method: Method, url: String) -> Self {
        Self {
            method,
            url,
            bearer: None,
            headers: Vec::new(),
            body: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn json(mut self, body: &impl serde::Serialize) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("a request body serialises"));
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self
    }
}

/// What a request is given when it waits for nothing.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: its status and whole body.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as `T` when the status is `want`, else [`Error::Status`].
    pub fn expect<T: DeserializeOwned>(self, what: &str, want: u16) -> Result<T, Error> {
        if self.status != want {
            return Err(self.unexpected(what));
        }
        self.parse(what)
    }

    pub fn parse<T: DeserializeOwned>(&self, what: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Body {
            what: what.to_owned(),
            reason: e.to_string(),
            body: self.text(),
        })
    }

    pub fn unexpected(&self, what: &str) -> Error {
        Error::Status {
            what: what.to_owned(),
            status: self.status,
            body: self.text(),
        }
    }
}

/// A handle on the actix arbiter that sends the requests.
#[derive(Clone)]
pub(crate) struct Http {
    arbiter: ArbiterHandle,
}

thread_local! {
    /// One client (and connection pool) per kit thread.
    static CLIENT: awc::Client = {
        // awc's rustls connector needs a process-wide crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        awc::Client::builder()
            // Each request sets its own timeout.
            .timeout(Duration::from_secs(3600))
            .finish()
    };
}

impl Http {
    /// Must be called on the arbiter's own thread's system.
    pub fn new(arbiter: ArbiterHandle) -> Self {
        Self { arbiter }
    }

    pub async fn send(&self, req: Request) -> Result<Response, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let what = format!("{} {}", req.method, req.url);
        let queued = self.arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                let _ = tx.send(send_here(req).await);
            });
        });
        if !queued {
            return Err(Error::Stopped);
        }
        rx.await
            .map_err(|_| Error::Stopped)?
            .map_err(|reason| Error::Transport { what, reason })
    }
}

async fn send_here(req: Request) -> Result<Response, String> {
    let client = CLIENT.with(Clone::clone);
    let mut r = client.request(req.method, &req.url).timeout(req.timeout);
    if let Some(token) = &req.bearer {
        r = r.bearer_auth(token);
    }
    for (k, v) in &req.headers {
        r = r.insert_header((k.as_str(), v.as_str()));
    }
    let sent = match req.body {
        Some(body) => r.send_body(body).await,
        None => r.send().await,
    };
    let mut res = sent.map_err(|e| e.to_string())?;
    let body = res
        .body()
        .limit(64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Response {
        status: res.status().as_u16(),
        body,
    })
}

/// The longest one long-poll asks the mock to hold (the mock's own cap).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// A long-poll held until `timeout`: `request(wait_ms)` is sent again on
/// each 408 (each asking for at most [`MAX_WAIT`]), and its 200 is
/// returned. After `timeout`, [`Error::Timeout`] carries what `last` makes
/// of the final 408; any other status is an error.
pub(crate) async fn long_poll(
    http: &Http,
    what: &str,
    timeout: Duration,
    request: impl Fn(u128) -> Request,
    last: impl FnOnce(&Response) -> Option<String>,
) -> Result<Response, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(MAX_WAIT);
        let mut req = request(left.as_millis());
        req.timeout = left + Duration::from_secs(10);
        let res = http.send(req).await?;
        match res.status {
            200 => return Ok(res),
            408 if Instant::now() < deadline => continue,
            408 => {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    after: timeout,
                    last: last(&res),
                })
            }
            _ => return Err(res.unexpected(what)),
        }
    }
}
