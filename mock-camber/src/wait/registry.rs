//! The index of parked waits: each under the keys its [`Interest`] names,
//! woken by a committed change or a journal entry only when that change's
//! own fields look it up and its check passes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::interest::{Check, Interest, Key};
use crate::journal::entry::Entry;
use crate::store::Note;

pub(super) struct Parked {
    pub(super) notify: Notify,
    check: Check,
}

#[derive(Default)]
pub(super) struct Registry {
    next: u64,
    pub(super) by_key: HashMap<Key, HashMap<u64, Arc<Parked>>>,
    /// Waits on the journal: none means a recorded request looks nothing up.
    pub(super) requests: usize,
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

    pub(super) fn wake_note(&self, n: &Note, wakes: &AtomicU64) {
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
            Note::Audit { id } => self.wake_key(&Key::Audit(id.clone()), |_| true, wakes),
            Note::Everything => self.wake_all(wakes),
        }
        self.wake_key(&Key::Anything, |_| true, wakes);
    }

    pub(super) fn wake_request(&self, e: &Entry, wakes: &AtomicU64) {
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

/// A registered wait; leaves the index when dropped.
pub(super) struct Registration<'a> {
    registry: &'a Mutex<Registry>,
    id: u64,
    keys: Vec<Key>,
    pub(super) parked: Arc<Parked>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut r = self.registry.lock();
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

/// Indexes a wait on `interest` in `registry`, for as long as the
/// returned registration lives.
pub(super) fn register<'a>(registry: &'a Mutex<Registry>, interest: &Interest) -> Registration<'a> {
    let (keys, check) = interest.index();
    let parked = Arc::new(Parked {
        notify: Notify::new(),
        check,
    });
    let mut r = registry.lock();
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
        registry,
        id,
        keys,
        parked,
    }
}

/// Counts a parked request for as long as its future lives.
pub(super) struct Counted<'a>(&'a AtomicI64);

impl Parked {
    pub(super) fn count(n: &AtomicI64) -> Counted<'_> {
        n.fetch_add(1, Ordering::Relaxed);
        Counted(n)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shared::JobStatus;
    use tokio::time::Instant;

    use super::super::Changes;
    use super::*;
    use crate::journal::entry::JournalBody;
    use crate::journal::filter::{Filter, PathMatch};

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
        let journal = Arc::new(Filter {
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
        let filter = Arc::new(Filter {
            method: Some("post".into()),
            path: Some(PathMatch::parse("/jobs").unwrap()),
            status: Some(201),
        });
        let w = park(&changes, Interest::Requests(filter), &checks, &release);
        parked(&changes, 1).await;
        let entry = |m: &str, p: &str, st: u16| Entry {
            seq: 0,
            at: String::new(),
            method: m.into(),
            path: p.into(),
            tenant: None,
            headers: Default::default(),
            body: JournalBody::default(),
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
