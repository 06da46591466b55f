//! The writer thread: takes what is queued (up to `max_batch`) and runs it
//! in one transaction; answers its callers only after the commit.
//!
//! Writes that may run again (`Mode::Redo`, every awaited write) run in
//! groups under ONE savepoint: if one of them fails or panics, the group is
//! rolled back and each of its writes runs again under a savepoint of its
//! own, so only the failing one is lost. A savepoint per write would copy
//! every page each write touches into the statement journal; per group, a
//! page is copied once per batch.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::{Error, OnCommit};

/// A queued write, run on the writer thread inside the batch's transaction.
pub(crate) trait Write: Send {
    /// Runs the write; true when it succeeded (its changes are kept). A
    /// `Mode::Redo` write may run again after its changes were rolled
    /// back; only its last run counts.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Forgets what the last run recorded: its changes were rolled back
    /// and it will not run again (its caller sees `Abandoned`).
    fn reset(&mut self);
    /// The batch ended: `Ok(committed)`, or `Err` when the transaction
    /// could not begin (the database busy or locked by another process
    /// past the busy timeout, the disk failing) and `run` never ran.
    fn finish(self: Box<Self>, ended: Result<bool, Error>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// May run again: grouped with its neighbours under one savepoint.
    Redo,
    /// A single statement, atomic by itself, run once without a savepoint.
    Alone,
}

/// What the writer thread has done since start.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Writes run (each a caller's closure), committed or not.
    pub(crate) writes: AtomicU64,
    /// Transactions committed. One that changed something costs an fsync
    /// with `synchronous=FULL`; one that changed nothing (a background
    /// claim that found no due row) writes nothing to disk.
    pub(crate) commits: AtomicU64,
}

pub(crate) struct Queued {
    pub(crate) op: Box<dyn Write>,
    pub(crate) mode: Mode,
    /// Nobody waits on this write's commit: it may wait up to the writer's
    /// `defer` for a write somebody does wait on, so both share a commit.
    pub(crate) later: bool,
}

pub(crate) struct Loop {
    pub(crate) max_batch: usize,
    pub(crate) defer: Duration,
    pub(crate) on_commit: Option<OnCommit>,
}

impl Loop {
    pub(crate) fn run(self, conn: Connection, rx: mpsc::Receiver<Queued>, stats: &Stats) {
        // Blocks for the first write, then takes whatever else is queued:
        // under load the batches grow and one commit (one fsync) serves
        // many callers.
        let mut batch = Vec::with_capacity(64);
        while let Ok(first) = rx.recv() {
            batch.push(first);
            self.fill(&rx, &mut batch);
            stats.writes.fetch_add(batch.len() as u64, Relaxed);
            let committed = run_batch(&conn, &mut batch);
            if committed {
                stats.commits.fetch_add(1, Relaxed);
                // The hook first: a caller that sees its write acknowledged
                // also sees what the hook does (the mock's waiters are
                // already woken).
                if let Some(f) = &self.on_commit {
                    f();
                }
            }
            for q in batch.drain(..) {
                q.op.finish(Ok(committed));
            }
        }
        // Every sender is gone: checkpoint, so the next start opens quickly.
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        log::debug!("database writer stopped");
    }

    /// Adds what is queued to `batch`; a batch of `later` writes only
    /// waits up to `defer` for a write somebody awaits (one commit, one
    /// fsync, for both).
    fn fill(&self, rx: &mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
        let take = |batch: &mut Vec<Queued>| {
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(q) => batch.push(q),
                    Err(_) => break,
                }
            }
        };
        take(batch);
        if self.defer.is_zero() {
            return;
        }
        let deadline = Instant::now() + self.defer;
        while batch.len() < self.max_batch && batch.iter().all(|q| q.later) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(q) => {
                    batch.push(q);
                    take(batch);
                }
                Err(_) => break,
            }
        }
    }
}

/// The error a failed `BEGIN` gives each write of the batch (rusqlite's
/// error is not `Clone`): SQLite's code kept, so busy/locked/disk-full stay
/// storage-unavailable.
fn begin_error(e: &rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            Error::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        _ => Error::NotCommitted,
    }
}

pub(crate) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs `batch` in one transaction; true when it committed. On a failed
/// `BEGIN`, every write is finished with the reason and `batch` emptied.
fn run_batch(conn: &Connection, batch: &mut Vec<Queued>) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        log::error!("database: cannot begin a transaction: {e}");
        // Nothing ran: each caller gets the reason (busy/locked/disk:
        // storage unavailable, a 503 to retry, not a lost write).
        for q in batch.drain(..) {
            q.op.finish(Err(begin_error(&e)));
        }
        return false;
    }
    let mut i = 0;
    while i < batch.len() {
        let end = match batch[i].mode {
            Mode::Alone => i + 1,
            Mode::Redo => {
                i + batch[i..]
                    .iter()
                    .take_while(|q| q.mode == Mode::Redo)
                    .count()
            }
        };
        match batch[i].mode {
            Mode::Alone => {
                run_caught(conn, &mut batch[i], true);
            }
            Mode::Redo if end - i == 1 => run_alone_in_savepoint(conn, &mut batch[i]),
            Mode::Redo => run_group(conn, &mut batch[i..end]),
        }
        i = end;
    }
    match exec(conn, "COMMIT") {
        Ok(()) => true,
        Err(e) => {
            log::error!("database: commit failed: {e}");
            let _ = exec(conn, "ROLLBACK");
            false
        }
    }
}

/// Runs one write; a panic must not take the writer thread (and every
/// later write) down with it: it counts as a failure, and its caller sees
/// `Abandoned`.
fn run_caught(conn: &Connection, q: &mut Queued, log_panic: bool) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.op.run(conn))) {
        Ok(ok) => ok,
        Err(_) => {
            if log_panic {
                log::error!("database: a write panicked; its changes were rolled back");
            }
            false
        }
    }
}

/// Writes that may run again, under one savepoint; when one fails, the
/// group is rolled back and each runs again under its own.
fn run_group(conn: &Connection, group: &mut [Queued]) {
    if exec(conn, "SAVEPOINT grp").is_ok() {
        if group.iter_mut().all(|q| run_caught(conn, q, false)) {
            match exec(conn, "RELEASE grp") {
                Ok(()) => return,
                Err(e) => log::error!("database: ending a savepoint failed: {e}"),
            }
        }
        if let Err(e) = exec(conn, "ROLLBACK TO grp").and_then(|()| exec(conn, "RELEASE grp")) {
            log::error!("database: rolling back a group of writes failed: {e}");
        }
    }
    for q in group {
        run_alone_in_savepoint(conn, q);
    }
}

/// One write under its own savepoint: a failure rolls back only its own
/// changes.
fn run_alone_in_savepoint(conn: &Connection, q: &mut Queued) {
    if let Err(e) = exec(conn, "SAVEPOINT op") {
        // Not run: its caller is answered as for a panic (`Abandoned`).
        log::error!("database: savepoint failed, write not run: {e}");
        q.op.reset();
        return;
    }
    let end = if run_caught(conn, q, true) {
        exec(conn, "RELEASE op")
    } else {
        exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
    };
    if let Err(e) = end {
        log::error!("database: ending a savepoint failed: {e}");
    }
}
