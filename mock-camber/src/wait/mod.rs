//! Long-poll waits (`wait_ms` + `min_count` on the admin lists, `wait_for`
//! on a tenant's job): a request parks until what it asks for is there or
//! its time is up. Woken by the change itself, and only by a change that
//! can satisfy it: each parked wait registers what it waits for
//! ([`Interest`]), indexed by job id and by list filter; each committed
//! store batch hands over what it changed ([`crate::store::Note`]) and
//! each journal entry itself, and only the waits whose index key (and
//! cheap check) that change matches re-check. A parked request holds no
//! thread, costs no CPU and no store read while nothing it wants changes.
//! A wait also watches its own connection (`client`). What a wait waits
//! for is in `interest`, the index of parked waits in `registry`, the
//! request parameters and the 408 in `params`; [`Changes`] here.

mod client;
mod interest;
mod params;
mod registry;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::journal::entry::Entry;
use crate::store::Note;
use registry::{Parked, Registration, Registry};

pub use client::{client_gone, on_connect, ConnFd};
pub use interest::Interest;
pub use params::{error_with, parse_wait_ms, timed_out, Wait, MAX_WAIT_MS};

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
    pub fn recorded(&self, e: &Entry) {
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
        registry::register(&self.registry, interest)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
}
