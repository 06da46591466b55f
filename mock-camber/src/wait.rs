//! Long-poll waits (`wait_ms` + `min_count` on the admin lists, `wait_for`
//! on a tenant's job): a request parks until what it asks for is there or
//! its time is up. Woken by the change itself, and only by a change that
//! can satisfy it: each parked wait registers what it waits for
//! ([`Interest`]), indexed by job id and by list filter; each committed
//! store batch hands over what it changed ([`crate::store::Note`]) and
//! each journal entry itself, and only the waits whose index key (and
//! cheap check) that change matches re-check. A parked request holds no
//! thread, costs no CPU and no store read while nothing it wants changes.
//! actix does not drop a handler whose client disconnects (actix-web
//! #1313, #3462), so a wait also watches its own connection: each
//! connection keeps a duplicate of its socket ([`on_connect`]), and a
//! parked wait ends when a peek on it sees EOF.

use std::any::Any;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use parking_lot::Mutex;
use serde::Serialize;
use shared::error::codes;
use shared::{DeliveryState, ErrorBody, JobStatus, WebhookEvent};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::journal;
use crate::store::Note;

/// The longest wait a request may ask for.
pub const MAX_WAIT_MS: u64 = 60_000;

/// What a parked wait waits for: the changes that wake it.
#[derive(Clone)]
pub enum Interest {
    /// One job reaching one of `statuses`.
    Job {
        id: String,
        statuses: Vec<JobStatus>,
    },
    /// An admin job list: a job of one of `tenants` (`None`: any), of
    /// `app` and in `status` (each when given) created or changed.
    Jobs {
        tenants: Option<Vec<String>>,
        app: Option<String>,
        status: Option<JobStatus>,
    },
    /// An admin delivery list, by the same rule.
    Deliveries {
        job_id: Option<String>,
        state: Option<DeliveryState>,
        event: Option<WebhookEvent>,
    },
    /// The request journal: an entry `filter` matches recorded.
    Requests(Arc<journal::Filter>),
    /// Any change at all (a wait that cannot say).
    Anything,
}

/// Where a parked wait is indexed: the change's own fields name the few
/// keys to look up, so a change costs lookups, not a pass over the waits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Job(String),
    Jobs(Option<String>, Option<String>, Option<JobStatus>),
    Deliveries(Option<String>, Option<DeliveryState>, Option<WebhookEvent>),
    /// Method (upper case) and exact path without its query, when given;
    /// status and a regex path are checked on the entry itself.
    Requests(Option<String>, Option<String>),
    Anything,
}

/// The check a change must also pass to wake a wait of its key.
enum Check {
    Always,
    Statuses(Vec<JobStatus>),
    Request(Arc<journal::Filter>),
}

struct Parked {
    notify: Notify,
    check: Check,
}

#[derive(Default)]
struct Registry {
    next: u64,
    by_key: HashMap<Key, HashMap<u64, Arc<Parked>>>,
    /// Waits on the journal: none means a recorded request looks nothing up.
    requests: usize,
}

impl Registry {
    fn wake_key(&self, key: &Key, hit: impl Fn(&Check) -> bool, wakes: &AtomicU64) {
        if let Some(bucket) = self.by_key.get(key) {
            for p in bucket.values().filter(|p| hit(&p.check)) {
                p.notify.notify_one();
                wakes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn wake_all(&self, wakes: &AtomicU64) {
        for p in self.by_key.values().flat_map(HashMap::values) {
            p.notify.notify_one();
            wakes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn wake_note(&self, n: &Note, wakes: &AtomicU64) {
        match n {
            Note::Job {
                id,
                tenant,
                app,
                status,
            } => {
                self.wake_key(
                    &Key::Job(id.clone()),
                    |c| match c {
                        Check::Statuses(s) => s.contains(status),
                        _ => true,
                    },
                    wakes,
                );
                for t in [Some(tenant), None] {
                    for a in [Some(app), None] {
                        for s in [Some(*status), None] {
                            let key = Key::Jobs(t.cloned(), a.cloned(), s);
                            self.wake_key(&key, |_| true, wakes);
                        }
                    }
                }
            }
            Note::Delivery {
                job_id,
                state,
                event,
            } => {
                for j in [Some(job_id), None] {
                    for s in [Some(*state), None] {
                        for e in [Some(*event), None] {
                            let key = Key::Deliveries(j.cloned(), s, e);
                            self.wake_key(&key, |_| true, wakes);
                        }
                    }
                }
            }
            Note::Everything => self.wake_all(wakes),
        }
        self.wake_key(&Key::Anything, |_| true, wakes);
    }

    fn wake_request(&self, e: &journal::Entry, wakes: &AtomicU64) {
        let path = e.path.split_once('?').map_or(e.path.as_str(), |(p, _)| p);
        for m in [Some(e.method.to_ascii_uppercase()), None] {
            for p in [Some(path.to_owned()), None] {
                self.wake_key(
                    &Key::Requests(m.clone(), p),
                    |c| match c {
                        Check::Request(f) => f.matches(e),
                        _ => true,
                    },
                    wakes,
                );
            }
        }
        self.wake_key(&Key::Anything, |_| true, wakes);
    }
}

/// "Something changed" for the console (one counter), and the index of
/// parked waits for everything else. Cheap to clone; fed from any thread
/// (the SQLite writer after each commit, the journal on record).
#[derive(Clone)]
pub struct Changes {
    tx: Arc<watch::Sender<u64>>,
    waiting: Arc<AtomicI64>,
    registry: Arc<Mutex<Registry>>,
    /// Waits woken to re-check, since start (`mock_camber_wait_wakeups_total`).
    wakes: Arc<AtomicU64>,
    /// Set when the server stops: the console's event streams end.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

/// A registered wait; leaves the index when dropped.
struct Registration<'a> {
    changes: &'a Changes,
    id: u64,
    keys: Vec<Key>,
    parked: Arc<Parked>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut r = self.changes.registry.lock();
        for k in &self.keys {
            if let Some(bucket) = r.by_key.get_mut(k) {
                bucket.remove(&self.id);
                if bucket.is_empty() {
                    r.by_key.remove(k);
                }
            }
            if matches!(k, Key::Requests(..) | Key::Anything) {
                r.requests -= 1;
            }
        }
    }
}

impl Changes {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(0).0),
            waiting: Arc::new(AtomicI64::new(0)),
            registry: Arc::new(Mutex::new(Registry::default())),
            wakes: Arc::new(AtomicU64::new(0)),
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

    /// Something changed that no wait can tell apart: wakes every wait.
    pub fn bump(&self) {
        self.changed(&[Note::Everything]);
    }

    /// A store batch committed with these changes (the writer's commit
    /// hook, with [`crate::store::take_notes`]): wakes the waits they can
    /// satisfy.
    pub fn changed(&self, notes: &[Note]) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
        if notes.is_empty() {
            return;
        }
        let r = self.registry.lock();
        if r.by_key.is_empty() {
            return;
        }
        for n in notes {
            r.wake_note(n, &self.wakes);
        }
    }

    /// A request was recorded in the journal: wakes the journal waits
    /// whose filter it matches.
    pub fn recorded(&self, e: &journal::Entry) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
        let r = self.registry.lock();
        if r.requests > 0 {
            r.wake_request(e, &self.wakes);
        }
    }

    /// Requests parked right now (the `mock_camber_waiting_requests` gauge).
    pub fn waiting(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Parked waits woken to re-check since start: a change wakes only
    /// the waits it can satisfy.
    pub fn wakeups(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    fn register(&self, interest: &Interest) -> Registration<'_> {
        let (keys, check) = match interest {
            Interest::Job { id, statuses } => (
                vec![Key::Job(id.clone())],
                Check::Statuses(statuses.clone()),
            ),
            Interest::Jobs {
                tenants,
                app,
                status,
            } => {
                let keys = match tenants {
                    None => vec![Key::Jobs(None, app.clone(), *status)],
                    Some(ts) => (ts.iter())
                        .map(|t| Key::Jobs(Some(t.clone()), app.clone(), *status))
                        .collect(),
                };
                (keys, Check::Always)
            }
            Interest::Deliveries {
                job_id,
                state,
                event,
            } => (
                vec![Key::Deliveries(job_id.clone(), *state, *event)],
                Check::Always,
            ),
            Interest::Requests(f) => {
                let path = match &f.path {
                    Some(journal::PathMatch::Exact(p)) if !p.contains('?') => Some(p.clone()),
                    _ => None,
                };
                let method = f.method.as_ref().map(|m| m.to_ascii_uppercase());
                (vec![Key::Requests(method, path)], Check::Request(f.clone()))
            }
            Interest::Anything => (vec![Key::Anything], Check::Always),
        };
        let parked = Arc::new(Parked {
            notify: Notify::new(),
            check,
        });
        let mut r = self.registry.lock();
        r.next += 1;
        let id = r.next;
        for k in &keys {
            r.by_key
                .entry(k.clone())
                .or_default()
                .insert(id, parked.clone());
            if matches!(k, Key::Requests(..) | Key::Anything) {
                r.requests += 1;
            }
        }
        drop(r);
        Registration {
            changes: self,
            id,
            keys,
            parked,
        }
    }

    /// Runs `check` now and again after every change `interest` says can
    /// satisfy it, until it says the wait is satisfied (`Ok((true, v))`)
    /// or `deadline` passes (`Ok((false, v))` with the last `v`). Errors
    /// from `check` end the wait.
    pub async fn until<T, F, Fut>(
        &self,
        interest: Interest,
        deadline: Instant,
        check: F,
    ) -> Result<(bool, T), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T), ApiError>>,
    {
        self.until_or_gone(interest, deadline, std::future::pending(), check)
            .await
    }

    /// [`Self::until`] for a request: also ends (with an error nobody will
    /// read) when `gone` resolves, i.e. the client has hung up.
    pub async fn until_or_gone<T, F, Fut>(
        &self,
        interest: Interest,
        deadline: Instant,
        gone: impl std::future::Future<Output = ()>,
        check: F,
    ) -> Result<(bool, T), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T), ApiError>>,
    {
        tokio::select! {
            r = self.wait_loop(interest, deadline, check) => r,
            () = gone => Err(ApiError::InvalidRequest("the client went away".into())),
        }
    }

    async fn wait_loop<T, F, Fut>(
        &self,
        interest: Interest,
        deadline: Instant,
        mut check: F,
    ) -> Result<(bool, T), ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T), ApiError>>,
    {
        // Registered *before* the first look: a change that lands while
        // `check` runs leaves a permit, and the next round sees it.
        let reg = self.register(&interest);
        let _parked = Parked::count(&self.waiting);
        loop {
            let (done, v) = check().await?;
            if done {
                return Ok((true, v));
            }
            tokio::select! {
                r = tokio::time::timeout_at(deadline, reg.parked.notify.notified()) => {
                    if r.is_err() {
                        return Ok((false, v));
                    }
                }
                () = self.closed() => return Ok((false, v)),
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
struct Counted<'a>(&'a AtomicI64);

impl Parked {
    fn count(n: &AtomicI64) -> Counted<'_> {
        n.fetch_add(1, Ordering::Relaxed);
        Counted(n)
    }
}

impl Drop for Counted<'_> {
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
            c.until(
                Interest::Anything,
                Instant::now() + Duration::from_secs(30),
                || {
                    let n = v.load(Ordering::Relaxed);
                    async move { Ok((n >= 2, n)) }
                },
            )
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
            .until(
                Interest::Anything,
                Instant::now() + Duration::from_millis(20),
                || async { Ok((false, 7)) },
            )
            .await
            .unwrap();
        assert!(!done);
        assert_eq!(n, 7);
    }

    fn job_note(id: &str, tenant: &str, status: JobStatus) -> Note {
        Note::Job {
            id: id.into(),
            tenant: tenant.into(),
            app: "app".into(),
            status,
        }
    }

    /// Parks `interest` with a check that counts its runs; the wait ends
    /// once `release` holds.
    fn park(
        changes: &Changes,
        interest: Interest,
        checks: &Arc<AtomicU64>,
        release: &Arc<std::sync::atomic::AtomicBool>,
    ) -> actix_rt::task::JoinHandle<bool> {
        let (c, checks, release) = (changes.clone(), checks.clone(), release.clone());
        actix_rt::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            c.until(interest, deadline, || {
                checks.fetch_add(1, Ordering::Relaxed);
                let done = release.load(Ordering::Relaxed);
                async move { Ok((done, ())) }
            })
            .await
            .unwrap()
            .0
        })
    }

    async fn parked(changes: &Changes, n: i64) {
        while changes.waiting() < n {
            actix_rt::task::yield_now().await;
        }
    }

    #[actix_rt::test]
    async fn a_change_wakes_only_the_waits_it_can_satisfy() {
        use std::sync::atomic::AtomicBool;
        let changes = Changes::new();
        let checks = Arc::new(AtomicU64::new(0));
        let never = Arc::new(AtomicBool::new(false));
        // 1,000 waits on other jobs, and list waits of another tenant,
        // another app, another status.
        let mut others = Vec::new();
        for i in 0..1000 {
            let interest = Interest::Job {
                id: format!("cmb_other_{i}"),
                statuses: vec![JobStatus::Completed],
            };
            others.push(park(&changes, interest, &checks, &never));
        }
        for (tenant, app, status) in [
            (Some("tenant-b"), None, None),
            (None, Some("other-app"), None),
            (None, None, Some(JobStatus::Failed)),
        ] {
            let interest = Interest::Jobs {
                tenants: tenant.map(|t| vec![t.to_owned()]),
                app: app.map(str::to_owned),
                status,
            };
            others.push(park(&changes, interest, &checks, &never));
        }
        let journal = Arc::new(journal::Filter {
            method: Some("GET".into()),
            ..Default::default()
        });
        others.push(park(&changes, Interest::Requests(journal), &checks, &never));
        parked(&changes, 1004).await;
        // The one that matches: job `cmb_x` completing.
        let done = Arc::new(AtomicBool::new(false));
        let mine = park(
            &changes,
            Interest::Job {
                id: "cmb_x".into(),
                statuses: vec![JobStatus::Completed],
            },
            &checks,
            &done,
        );
        parked(&changes, 1005).await;
        assert_eq!(checks.load(Ordering::Relaxed), 1005, "one first look each");
        assert_eq!(changes.wakeups(), 0);

        // Job `cmb_x` of tenant-a running (not what its wait wants), a new
        // job of tenant-a: nothing wakes.
        changes.changed(&[
            job_note("cmb_x", "tenant-a", JobStatus::Running),
            job_note("cmb_new", "tenant-a", JobStatus::Pending),
        ]);
        assert_eq!(changes.wakeups(), 0);

        // `cmb_x` completes: only its wait wakes and re-checks.
        done.store(true, Ordering::Relaxed);
        changes.changed(&[job_note("cmb_x", "tenant-a", JobStatus::Completed)]);
        assert!(mine.await.unwrap());
        assert_eq!(changes.wakeups(), 1);
        assert_eq!(checks.load(Ordering::Relaxed), 1006);
        assert_eq!(changes.waiting(), 1004);

        // A matching list change wakes the list wait of tenant-b only.
        changes.changed(&[job_note("cmb_b", "tenant-b", JobStatus::Pending)]);
        assert_eq!(changes.wakeups(), 2);

        // Reset (everything) wakes them all; then let them go.
        never.store(true, Ordering::Relaxed);
        changes.bump();
        for w in others {
            assert!(w.await.unwrap());
        }
        assert_eq!(changes.waiting(), 0);
        assert_eq!(changes.registry.lock().by_key.len(), 0, "the index empties");
    }

    #[actix_rt::test]
    async fn journal_waits_wake_on_matching_entries_only() {
        use std::sync::atomic::AtomicBool;
        let changes = Changes::new();
        let checks = Arc::new(AtomicU64::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let filter = Arc::new(journal::Filter {
            method: Some("post".into()),
            path: Some(journal::PathMatch::parse("/jobs").unwrap()),
            status: Some(201),
        });
        let w = park(&changes, Interest::Requests(filter), &checks, &release);
        parked(&changes, 1).await;
        let entry = |m: &str, p: &str, st: u16| journal::Entry {
            seq: 0,
            at: String::new(),
            method: m.into(),
            path: p.into(),
            tenant: None,
            headers: Default::default(),
            body: journal::JournalBody::default(),
            status: st,
        };
        changes.recorded(&entry("GET", "/jobs", 200));
        changes.recorded(&entry("POST", "/jobs", 422));
        changes.recorded(&entry("POST", "/_mock/reset", 200));
        assert_eq!(changes.wakeups(), 0);
        release.store(true, Ordering::Relaxed);
        changes.recorded(&entry("POST", "/jobs?x=1", 201));
        assert!(w.await.unwrap());
        assert_eq!(changes.wakeups(), 1);
    }
}
