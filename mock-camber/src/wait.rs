//! Long-poll waits (`wait_ms` + `min_count` on the admin lists, `wait_for`
//! on a tenant's job): a request parks until what it asks for is there or
//! its time is up. Woken by the change itself — every committed store
//! batch and every journal entry bumps one `watch` counter — never by a
//! sleep-and-recheck loop. A parked request holds no thread and costs no
//! CPU while nothing changes. actix does not drop a handler whose client
//! disconnects (actix-web #1313, #3462), so a wait also watches its own
//! connection: each connection keeps a duplicate of its socket
//! ([`on_connect`]), and a parked wait ends when a peek on it sees EOF.

use std::any::Any;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use shared::error::codes;
use shared::ErrorBody;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ApiError;

/// The longest wait a request may ask for.
pub const MAX_WAIT_MS: u64 = 60_000;

/// One counter for "something changed"; cheap to clone, bumped from any
/// thread (the SQLite writer after each commit, the journal on record).
#[derive(Clone)]
pub struct Changes {
    tx: Arc<watch::Sender<u64>>,
    waiting: Arc<AtomicI64>,
    /// Set when the server stops: the console's event streams end.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(0).0),
            waiting: Arc::new(AtomicI64::new(0)),
            closing: Arc::new(watch::channel(false).0),
        }
    }

    /// The change counter now.
    pub fn version(&self) -> u64 {
        *self.tx.borrow()
    }

    /// A receiver of the change counter (the console's event stream).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Ends the event streams: the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Self::close`] was called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    pub fn bump(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Requests parked right now (the `mock_camber_waiting_requests` gauge).
    pub fn waiting(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `check` now and again after every change until it says the
    /// wait is satisfied (`Ok((true, v))`) or `deadline` passes (`Ok((false,
    /// v))` with the last `v`). Errors from `check` end the wait.
    pub async fn until<T, F, Fut>(&self, deadline: Instant, check: F) -> Result<(bool, T), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T), ApiError>>,
    {
        self.until_or_gone(deadline, std::future::pending(), check)
            .await
    }

    /// [`Self::until`] for a request: also ends (with an error nobody will
    /// read) when `gone` resolves, i.e. the client has hung up.
    pub async fn until_or_gone<T, F, Fut>(
        &self,
        deadline: Instant,
        gone: impl std::future::Future<Output = ()>,
        check: F,
    ) -> Result<(bool, T), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T), ApiError>>,
    {
        tokio::select! {
            r = self.wait_loop(deadline, check) => r,
            () = gone => Err(ApiError::InvalidRequest("the client went away".into())),
        }
    }

    async fn wait_loop<T, F, Fut>(
        &self,
        deadline: Instant,
        mut check: F,
    ) -> Result<(bool, T), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T), ApiError>>,
    {
        let mut rx = self.tx.subscribe();
        let _parked = Parked::new(&self.waiting);
        loop {
            // Mark what we have seen *before* looking, so a change that
            // lands while `check` runs wakes the next round.
            rx.borrow_and_update();
            let (done, v) = check().await?;
            if done {
                return Ok((true, v));
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out, or the sender is gone (shutting down).
                Ok(Err(_)) | Err(_) => return Ok((false, v)),
            }
        }
    }
}

/// A duplicate of a connection's socket, kept in its connection data.
pub struct ConnFd(OwnedFd);

/// `HttpServer::on_connect` hook: one `dup` per connection (not per
/// request), so a wait can tell when its client has gone.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
            ext.insert(ConnFd(fd));
        }
    }
}

/// Resolves when the request's client has closed its connection (a peek
/// sees EOF or an error). Never resolves when that cannot be known: no
/// socket kept, or the client already sent more bytes (a pipelined request).
pub async fn client_gone(req: &HttpRequest) {
    let stream = req
        .conn_data::<ConnFd>()
        .and_then(|c| c.0.try_clone().ok())
        .map(std::net::TcpStream::from)
        .filter(|s| s.set_nonblocking(true).is_ok())
        .and_then(|s| tokio::net::TcpStream::from_std(s).ok());
    if let Some(stream) = stream {
        let mut byte = [0u8; 1];
        if let Ok(0) | Err(_) = stream.peek(&mut byte).await {
            return;
        }
    }
    std::future::pending::<()>().await
}

/// Counts a parked request for as long as its future lives.
struct Parked<'a>(&'a AtomicI64);

impl<'a> Parked<'a> {
    fn new(n: &'a AtomicI64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A `wait_ms` value: whole milliseconds, 0 to [`MAX_WAIT_MS`].
pub fn parse_wait_ms(ms: &str) -> Result<u64, ApiError> {
    ms.parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_WAIT_MS)
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "`wait_ms` must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}"
            ))
        })
}

/// `wait_ms` and `min_count` of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub ms: u64,
    pub min_count: usize,
}

impl Wait {
    /// `None` without `wait_ms` or `min_count`: answer at once, as before.
    pub fn parse(wait_ms: Option<&str>, min_count: Option<&str>) -> Result<Option<Self>, ApiError> {
        let count = min_count
            .map(|s| {
                s.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "`min_count` must be a whole number of at least 1".into(),
                    )
                })
            })
            .transpose()?;
        // `min_count` alone is a wait of 0 ms: the items if there are that
        // many now, else 408 with what there is.
        let ms = match (wait_ms, count) {
            (None, None) => return Ok(None),
            (None, Some(_)) => "0",
            (Some(ms), _) => ms,
        };
        Ok(Some(Self {
            ms: parse_wait_ms(ms)?,
            min_count: count.unwrap_or(1),
        }))
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.ms)
    }
}

/// `408` with `WAIT_TIMEOUT` and what matched so far under `key`.
pub fn timed_out(message: String, key: &str, so_far: impl Serialize) -> HttpResponse {
    error_with(
        StatusCode::REQUEST_TIMEOUT,
        codes::WAIT_TIMEOUT,
        message,
        key,
        so_far,
    )
}

/// The error body, plus `key` holding what the caller would want to see.
pub fn error_with(
    status: StatusCode,
    code: &str,
    message: String,
    key: &str,
    with: impl Serialize,
) -> HttpResponse {
    let mut body =
        serde_json::to_value(ErrorBody::new(code, message)).expect("error bodies serialise");
    body[key] = serde_json::to_value(with).unwrap_or_default();
    HttpResponse::build(status).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_parameters_parse_and_refuse_bad_values() {
        assert_eq!(Wait::parse(None, None).unwrap(), None);
        assert_eq!(
            Wait::parse(Some("250"), None).unwrap(),
            Some(Wait {
                ms: 250,
                min_count: 1
            })
        );
        assert_eq!(
            Wait::parse(Some("0"), Some("3")).unwrap(),
            Some(Wait {
                ms: 0,
                min_count: 3
            })
        );
        for (w, m) in [
            (Some("60001"), None),
            (Some("-1"), None),
            (Some("1.5"), None),
            (Some("soon"), None),
            (Some("10"), Some("0")),
            (None, Some("0")),
        ] {
            assert!(Wait::parse(w, m).is_err(), "{w:?} {m:?}");
        }
        // `min_count` alone is a wait of 0 ms.
        assert_eq!(
            Wait::parse(None, Some("2")).unwrap(),
            Some(Wait {
                ms: 0,
                min_count: 2
            })
        );
    }

    #[actix_rt::test]
    async fn a_wait_wakes_on_the_change_and_times_out_without_one() {
        let changes = Changes::new();
        let value = Arc::new(AtomicI64::new(0));
        let (v, c) = (value.clone(), changes.clone());
        let waiter = actix_rt::spawn(async move {
            c.until(Instant::now() + Duration::from_secs(30), || {
                let n = v.load(Ordering::Relaxed);
                async move { Ok((n >= 2, n)) }
            })
            .await
        });
        // Let it park, then change things twice.
        while changes.waiting() == 0 {
            actix_rt::task::yield_now().await;
        }
        value.store(1, Ordering::Relaxed);
        changes.bump();
        value.store(2, Ordering::Relaxed);
        changes.bump();
        let (done, n) = waiter.await.unwrap().unwrap();
        assert!(done);
        assert_eq!(n, 2);
        assert_eq!(changes.waiting(), 0, "the parked count is released");

        let (done, n) = changes
            .until(Instant::now() + Duration::from_millis(20), || async {
                Ok((false, 7))
            })
            .await
            .unwrap();
        assert!(!done);
        assert_eq!(n, 7);
    }
}
