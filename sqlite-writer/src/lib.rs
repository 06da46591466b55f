//! The SQLite machinery both services share, and nothing of either schema:
//!
//! - **one writer thread** that takes whatever writes are queued (up to
//!   `max_batch`) and runs them in ONE transaction, so that a write that
//!   fails or panics rolls back only itself and the others commit; every
//!   awaiting caller is answered only after COMMIT (durable before
//!   acknowledged, with `synchronous=FULL`). Writes run in groups under one
//!   savepoint and may run twice: when one of a group fails, the group is
//!   rolled back and each write runs again under its own savepoint;
//! - **fire-and-forget writes** for progress a restart can redo (errors
//!   logged), and **deferred writes** that nobody awaits, which may wait
//!   a moment (`Options::defer`) to share the next awaited write's commit;
//! - **reader connections** in a small pool, used on the pool's own reader
//!   threads, so no rusqlite call ever runs on an async executor thread;
//! - an optional hook called on the writer thread after each commit,
//!   before the batch's callers are answered.
//!
//! Statements inside the closures should use `prepare_cached`: each
//! connection keeps its prepared statements. A write closure must have no
//! effect outside its connection that a second run would not repeat
//! harmlessly.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

mod readers;
mod writer;

use readers::Readers;
use writer::{Loop, Mode, Queued, Stats, Write};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("the write was abandoned: it panicked, or the writer stopped")]
    Abandoned,
    #[error("the transaction did not commit")]
    NotCommitted,
    #[error("a blocking database task failed: {0}")]
    Blocking(String),
    #[error("cannot prepare the database: {0}")]
    Setup(String),
}

impl Error {
    /// The storage cannot take writes for now (disk full, read-only, an I/O
    /// error, a lock): the write may succeed later, so services answer 503
    /// with `Retry-After`, not 500.
    pub fn is_storage_unavailable(&self) -> bool {
        match self {
            Error::NotCommitted => true,
            Error::Sqlite(e) => is_storage_unavailable(e),
            _ => false,
        }
    }
}

/// [`Error::is_storage_unavailable`] for a rusqlite error.
pub fn is_storage_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(DiskFull | ReadOnly | SystemIoFailure | DatabaseBusy | DatabaseLocked | CannotOpen)
    )
}

/// An I/O error that says the disk cannot take data for now (full, quota,
/// read-only file system).
pub fn is_storage_full_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), StorageFull | QuotaExceeded | ReadOnlyFilesystem)
}

/// `PRAGMA synchronous` of the writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync at every commit: an acknowledged write survives an OS crash.
    Full,
    Normal,
    /// No fsync (scratch databases).
    Off,
}

/// Called on the writer thread after every committed batch, before its
/// callers are answered.
pub type OnCommit = Box<dyn Fn() + Send>;

pub struct Options {
    pub synchronous: Synchronous,
    /// Most writes folded into one transaction.
    pub max_batch: usize,
    /// Reader connections open at once (kept open when idle); a read past
    /// it waits for one, so reads never take more than this many files.
    pub max_readers: usize,
    pub busy_timeout: Duration,
    pub thread_name: String,
    pub on_commit: Option<OnCommit>,
    /// How long a batch of deferred writes ([`Db::write_later`]) alone
    /// waits for a write somebody awaits, so that both share one commit
    /// (one fsync) instead of taking one each. Zero: never waits.
    pub defer: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_batch: 512,
            max_readers: 16,
            busy_timeout: Duration::from_secs(10),
            thread_name: "sqlite-writer".into(),
            on_commit: None,
            defer: Duration::ZERO,
        }
    }
}

/// A database: one writer thread plus pooled readers. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    writer: mpsc::Sender<Queued>,
    readers: Arc<Readers>,
    stats: Arc<Stats>,
}

impl Db {
    /// Opens (creating) the database at `path` in WAL mode, runs `setup`
    /// (the schema's migrations) on the writer connection, then starts the
    /// writer thread.
    pub fn open<E>(
        path: &Path,
        opts: Options,
        setup: impl FnOnce(&mut Connection) -> Result<(), E>,
    ) -> Result<Self, E>
    where
        E: From<Error>,
    {
        let mut conn = Connection::open(path).map_err(Error::from)?;
        conn.busy_timeout(opts.busy_timeout).map_err(Error::from)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(Error::from)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("SQLite journal mode is {mode}, not WAL");
        }
        let sync = match opts.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(Error::from)?;
        // The per-write savepoints keep their statement journals in memory
        // instead of a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(Error::from)?;
        setup(&mut conn)?;
        let (tx, rx) = mpsc::channel::<Queued>();
        let writer = Loop {
            max_batch: opts.max_batch.max(1),
            defer: opts.defer,
            on_commit: opts.on_commit,
        };
        let stats = Arc::new(Stats::default());
        let counts = stats.clone();
        std::thread::Builder::new()
            .name(opts.thread_name)
            .spawn(move || writer.run(conn, rx, &counts))
            .map_err(|e| Error::Setup(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            stats,
            writer: tx,
            readers: Arc::new(Readers::new(
                path.to_owned(),
                opts.max_readers,
                opts.busy_timeout,
            )),
        })
    }

    pub fn path(&self) -> &Path {
        &self.readers.path
    }

    /// `(writes, commits)` since start: writes run by the writer thread,
    /// and the transactions that carried them.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.writes.load(Relaxed),
            self.stats.commits.load(Relaxed),
        )
    }

    /// [`Self::stats`] as Prometheus text: `<prefix>_db_writes_total` and
    /// `<prefix>_db_commits_total`.
    pub fn metrics_text(&self, prefix: &str) -> String {
        let (writes, commits) = self.stats();
        format!(
            "# HELP {prefix}_db_writes_total Writes run by the database writer thread.\n\
             # TYPE {prefix}_db_writes_total counter\n{prefix}_db_writes_total {writes}\n\
             # HELP {prefix}_db_commits_total Transactions the writer committed (each carries a batch of writes).\n\
             # TYPE {prefix}_db_commits_total counter\n{prefix}_db_commits_total {commits}\n"
        )
    }

    /// Runs `f` inside the writer's next transaction and resolves once
    /// that transaction committed. An `Err` from `f` (or a panic) rolls
    /// back only `f`'s own writes. `f` may run twice (see the crate's
    /// docs); its last run's result is the answer.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.write_then(f, move |r| {
            let _ = tx.send(r);
        });
        rx.await.unwrap_or_else(|_| Err(Error::Abandoned.into()))
    }

    /// Queues `f` like [`Self::write`] without awaiting it; `then` gets the
    /// outcome on the writer thread once the transaction ended.
    pub fn write_then<T, E, F, Then>(&self, f: F, then: Then)
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
        Then: FnOnce(Result<T, E>) + Send + 'static,
    {
        self.queue(Box::new(Reply { f, out: None, then }), Mode::Redo, false);
    }

    /// [`Self::write_then`] for a write nobody waits on promptly (a record
    /// of what already happened): it may wait up to [`Options::defer`] for
    /// a write somebody awaits, and share its commit.
    pub fn write_later<T, E, F, Then>(&self, f: F, then: Then)
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
        Then: FnOnce(Result<T, E>) + Send + 'static,
    {
        self.queue(Box::new(Reply { f, out: None, then }), Mode::Redo, true);
    }

    /// Queues a write whose failure is only logged: progress a restart can
    /// redo. `f` must be a single statement (atomic by itself): it runs
    /// once, without a savepoint, the cheapest write there is.
    pub fn write_bg<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        self.queue(
            Box::new(Background { what, f: Some(f) }),
            Mode::Alone,
            false,
        );
    }

    fn queue(&self, op: Box<dyn Write>, mode: Mode, later: bool) {
        if self.writer.send(Queued { op, mode, later }).is_err() {
            // The op (and its reply) is dropped: awaiting callers see
            // `Abandoned`.
            log::error!("database writer has stopped; a write was dropped");
        }
    }

    /// Resolves once everything queued before it has committed.
    pub async fn flush(&self) -> Result<(), Error> {
        self.write(|_| Ok::<_, Error>(())).await
    }

    /// Runs `f` on a pooled reader connection, on one of the pool's reader
    /// threads. A read that panics answers `Error::Blocking`.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let readers = self.readers.clone();
        self.readers.submit(Box::new(move || {
            let _ = tx.send(readers.with(f));
        }));
        rx.await.unwrap_or_else(|_| {
            Err(Error::Blocking("the read panicked or found no reader thread".into()).into())
        })
    }

    /// A read on the calling thread: for start-up only.
    pub fn read_now<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        self.readers.with(f)
    }
}

/// A write with a reply: `f`'s last run is kept until the batch ended.
struct Reply<F, T, E, Then> {
    f: F,
    out: Option<Result<T, E>>,
    then: Then,
}

impl<F, T, E, Then> Write for Reply<F, T, E, Then>
where
    T: Send,
    E: From<Error> + Send,
    F: FnMut(&Connection) -> Result<T, E> + Send,
    Then: FnOnce(Result<T, E>) + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        self.out = None;
        let out = (self.f)(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn reset(&mut self) {
        self.out = None;
    }

    fn finish(self: Box<Self>, ended: Result<bool, Error>) {
        let Reply { f, out, then } = *self;
        // Gone before `then` runs: whatever `f` shared with the caller
        // (an `Arc`) is the caller's alone again.
        drop(f);
        match (ended, out) {
            (Err(e), _) => then(Err(e.into())),
            // It panicked (or never ran): `then` is dropped, and an
            // awaiting caller sees `Abandoned`.
            (Ok(_), None) => {}
            (Ok(false), Some(Ok(_))) => then(Err(Error::NotCommitted.into())),
            (Ok(_), Some(out)) => then(out),
        }
    }
}

/// A fire-and-forget single statement.
struct Background<F> {
    what: &'static str,
    f: Option<F>,
}

impl<F> Write for Background<F>
where
    F: FnOnce(&Connection) -> rusqlite::Result<()> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        if let Some(f) = self.f.take() {
            if let Err(e) = f(conn) {
                log::error!("database: {} failed: {e}", self.what);
            }
        }
        // Atomic by itself: a failure changed nothing, so it never makes
        // the batch's other writes run again.
        true
    }

    fn reset(&mut self) {}

    fn finish(self: Box<Self>, ended: Result<bool, Error>) {
        if let Err(e) = ended {
            log::error!("database: {} failed: {e}", self.what);
        }
    }
}

#[cfg(test)]
mod tests;
