//! SQLite persistence: the store, its notes to waits, and the SQL itself
//! as plain `fn(&Connection) -> Result` functions (the schema and its
//! migrations: `schema.rs`). The writer thread and the
//! reader pool are the shared `sqlite-writer` crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use sqlite_writer::{Db, Options, Synchronous};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Db(#[from] sqlite_writer::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The database: the shared batching writer and pooled readers
/// (`sqlite-writer`), with this schema. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// Keeps a `:memory:` database's temporary directory alive.
    _temp: Option<Arc<tempfile::TempDir>>,
}

/// Called on the writer thread after each committed batch.
pub use sqlite_writer::OnCommit;

impl Store {
    /// Opens (creating and migrating) the database at `path`; `:memory:`
    /// means a temporary file removed when the store is dropped, so readers
    /// and the writer still share one WAL database.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        Self::open_notifying(path, None)
    }

    /// [`Self::open`], calling `on_commit` on the writer thread after every
    /// committed batch (what wakes long-poll waits).
    pub fn open_notifying(path: &str, on_commit: Option<OnCommit>) -> Result<Self, StoreError> {
        let (file, temp, durable) = if path == ":memory:" {
            let dir = tempfile::Builder::new().prefix("mock-camber-").tempdir()?;
            (
                dir.path().join("mock-camber.db"),
                Some(Arc::new(dir)),
                false,
            )
        } else {
            let file = PathBuf::from(path);
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            (file, None, true)
        };
        let opts = Options {
            // FULL: a batch acknowledged to a client survives a crash of the
            // OS, not just of the process. Batching keeps the fsync shared.
            synchronous: if durable {
                Synchronous::Full
            } else {
                Synchronous::Off
            },
            max_batch: 1024,
            busy_timeout: std::time::Duration::from_secs(5),
            thread_name: "sqlite-writer".into(),
            on_commit,
            defer: DEFER,
            ..Options::default()
        };
        let db = Db::open(&file, opts, |c| {
            migrate(c)?;
            interrupt_running_audits(c)?;
            Ok::<(), StoreError>(())
        })?;
        Ok(Self { db, _temp: temp })
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// `(writes, commits)` of the writer thread since start.
    pub fn write_stats(&self) -> (u64, u64) {
        self.db.stats()
    }

    /// The writer's counters as Prometheus text (`mock_camber_db_*`).
    pub fn metrics_text(&self) -> String {
        self.db.metrics_text("mock_camber")
    }

    /// Runs `f` inside the writer's next transaction and resolves once
    /// that transaction committed. `f` may run twice (a failure elsewhere
    /// in its batch rolls its group back): it must touch only the
    /// connection, and [`note`]s.
    pub async fn write<R, F>(&self, mut f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.db.write(move |c| f(c).map_err(StoreError::from)).await
    }

    /// Queues a write without waiting for it; `then` is called with the
    /// outcome after the transaction ended (on the writer thread).
    pub fn write_then<R, F, T>(&self, mut f: F, then: T)
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<R> + Send + 'static,
        T: FnOnce(Result<R, StoreError>) + Send + 'static,
    {
        self.db
            .write_then(move |c| f(c).map_err(StoreError::from), then)
    }

    /// [`Self::write_then`] for the record of something already done (a
    /// webhook attempt): it may wait a moment (`DEFER`) for the next write
    /// somebody awaits and share its commit.
    pub fn write_later<R, F, T>(&self, mut f: F, then: T)
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<R> + Send + 'static,
        T: FnOnce(Result<R, StoreError>) + Send + 'static,
    {
        self.db
            .write_later(move |c| f(c).map_err(StoreError::from), then)
    }

    /// Queues a single-statement (hence atomic) write whose failure is only
    /// logged: progress a restart can redo, such as a stage change or an
    /// attempt record. No savepoint, no reply: the cheapest write there is.
    pub fn write_bg<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        self.db.write_bg(what, f)
    }

    /// Runs a read on a pooled connection, on one of the pool's reader threads.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.db.read(move |c| f(c).map_err(StoreError::from)).await
    }

    /// A read run on the calling thread: for start-up only.
    pub fn read_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        self.db.read_now(|c| f(c).map_err(StoreError::from))
    }
}

/// How long a webhook attempt's record waits for a write somebody awaits
/// (a submit), so that one commit, one fsync, carries both: at one job at
/// a time, the next submit no longer queues behind the last attempt's own
/// commit.
pub const DEFER: std::time::Duration = std::time::Duration::from_millis(2);

/// What a write changed, as far as long-poll waits care: the store's write
/// functions note it on the writer thread, and the commit hook takes the
/// notes of the batch it committed ([`take_notes`]) to wake only the waits
/// they can satisfy. A write rolled back leaves its note: a spurious wake,
/// which only costs the waiter one re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A job was created or changed; its status now.
    Job {
        id: String,
        tenant: String,
        app: String,
        status: shared::JobStatus,
    },
    /// A delivery was created or changed; its state now.
    Delivery {
        job_id: String,
        state: shared::DeliveryState,
        event: shared::WebhookEvent,
    },
    /// A receiver audit's report was written (it is `done`).
    Audit { id: String },
    /// Anything may have changed (reset, or too many notes to keep).
    Everything,
}

/// Notes kept between two commits at most; past it, one `Everything`.
const MAX_NOTES: usize = 4096;

thread_local! {
    static NOTES: std::cell::RefCell<Vec<Note>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub fn note(n: Note) {
    NOTES.with(|v| {
        let mut v = v.borrow_mut();
        if v.len() < MAX_NOTES {
            v.push(n);
        } else if v.last() != Some(&Note::Everything) {
            v.push(Note::Everything);
        }
    });
}

/// The notes this thread made since the last call (the commit hook runs on
/// the writer thread, where every write ran).
pub fn take_notes() -> Vec<Note> {
    NOTES.with(|v| std::mem::take(&mut *v.borrow_mut()))
}

mod audits;
mod deliveries;
mod events;
mod headers;
mod schema;

use schema::migrate;
mod job_writes;
mod jobs;
mod retention;
mod tenants;

pub use audits::*;
pub use deliveries::*;
pub use events::*;
pub use headers::Headers;
pub use job_writes::*;
pub use jobs::*;
pub use retention::*;
pub use tenants::*;

/// Forgets jobs, deliveries and idempotency records; keeps the id sequence
/// so ids are never reused.
pub fn reset(conn: &Connection, last_seq: i64) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM jobs; DELETE FROM idempotency; DELETE FROM deliveries; DELETE FROM attempts; \
         DELETE FROM audits; DELETE FROM scenario_audits;",
    )?;
    note(Note::Everything);
    conn.execute(
        "INSERT OR REPLACE INTO meta (k, v) VALUES ('last_seq', ?1)",
        [last_seq.to_string()],
    )?;
    Ok(())
}

pub fn ping(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (k, v) VALUES ('ready_probe', '1')",
        [],
    )?;
    Ok(())
}

/// How SQLite runs `sql` with `args`: the details of `EXPLAIN QUERY PLAN`,
/// joined (for the tests that pin a query to its index).
#[cfg(test)]
fn query_plan(conn: &Connection, sql: &str, args: &[Box<dyn rusqlite::ToSql>]) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            r.get::<_, String>(3)
        })
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}
