//! The writer thread: takes what is queued (up to `max_batch`) and runs it
//! in one transaction, each write under its own savepoint; answers its
//! callers only after the commit.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;

use rusqlite::Connection;

use crate::{Error, OnCommit};

/// Run on the writer thread inside the transaction; answers whether the
/// write succeeded (keep its savepoint) and what to do once the batch ended.
/// Given `Err` instead of the connection when the transaction could not
/// begin (the database busy or locked by another process past the busy
/// timeout, the disk failing): the write did not run, and its caller is
/// answered with that error.
pub(crate) type Op = Box<dyn FnOnce(Result<&Connection, Error>) -> (bool, Done) + Send>;
/// Told whether the batch committed.
pub(crate) type Done = Box<dyn FnOnce(bool) + Send>;

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
    pub(crate) op: Op,
    /// Under a savepoint (the default), or alone: a single statement is
    /// atomic by itself, and the savepoint's two statements are skipped.
    pub(crate) isolated: bool,
}

pub(crate) fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Queued>,
    max_batch: usize,
    on_commit: Option<OnCommit>,
    stats: &Stats,
) {
    // Blocks for the first write, then takes whatever else is queued: under
    // load the batches grow and one commit (one fsync) serves many callers.
    let mut batch = Vec::with_capacity(64);
    let mut done = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        stats.writes.fetch_add(batch.len() as u64, Relaxed);
        let committed = run_batch(&conn, &mut batch, &mut done);
        if committed {
            stats.commits.fetch_add(1, Relaxed);
        }
        // The hook first: a caller that sees its write acknowledged also
        // sees what the hook does (the mock's waiters are already woken).
        if committed {
            if let Some(f) = &on_commit {
                f();
            }
        }
        for d in done.drain(..) {
            d(committed);
        }
    }
    // Every sender is gone: checkpoint, so the next start opens quickly.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    log::debug!("database writer stopped");
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

/// Runs `batch` in one transaction; true when it committed.
fn run_batch(conn: &Connection, batch: &mut Vec<Queued>, done: &mut Vec<Done>) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        log::error!("database: cannot begin a transaction: {e}");
        // Nothing ran: each caller gets the reason (busy/locked/disk:
        // storage unavailable, a 503 to retry, not a lost write).
        for Queued { op, .. } in batch.drain(..) {
            let (_, d) = op(Err(begin_error(&e)));
            done.push(d);
        }
        return false;
    }
    for Queued { op, isolated } in batch.drain(..) {
        if isolated {
            if let Err(e) = exec(conn, "SAVEPOINT op") {
                log::error!("database: savepoint failed, write not run: {e}");
                continue;
            }
        }
        // A panicking write must not take the writer thread (and every
        // later write) down with it: its caller sees `Abandoned`.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(Ok(conn))));
        let keep = matches!(ran, Ok((true, _)));
        if ran.is_err() {
            log::error!("database: a write panicked; its changes were rolled back");
        }
        if isolated {
            let end = if keep {
                exec(conn, "RELEASE op")
            } else {
                exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
            };
            if let Err(e) = end {
                log::error!("database: ending a savepoint failed: {e}");
            }
        }
        if let Ok((_, d)) = ran {
            done.push(d);
        }
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
