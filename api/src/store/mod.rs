//! The SQLite store: schema and migrations, and every SQL statement as a
//! plain `fn(&Connection) -> Result`. The one writer thread that batches
//! queued writes into transactions and the reader pool are the shared
//! `sqlite-writer` crate: no rusqlite call runs on an actix executor thread.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::JobFailure;
use sqlite_writer::{Db, Options, Synchronous};

use crate::domain::{JobId, Source, Status};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("json column: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Db(#[from] sqlite_writer::Error),
    #[error("a blocking store task failed: {0}")]
    Blocking(String),
    #[error("cannot prepare the database: {0}")]
    Setup(String),
    /// The artifact directory cannot take the files (disk full, read-only).
    #[error("{0}")]
    StorageFull(String),
}

impl StoreError {
    /// Disk full, read-only, locked: a retry later may succeed (503).
    pub fn is_storage_unavailable(&self) -> bool {
        match self {
            StoreError::Db(e) => e.is_storage_unavailable(),
            StoreError::Sqlite(e) => sqlite_writer::is_storage_unavailable(e),
            StoreError::StorageFull(_) => true,
            _ => false,
        }
    }

    /// An artifact I/O error, as `StorageFull` when the disk is the cause.
    pub fn artifacts(what: &str, e: std::io::Error) -> Self {
        if sqlite_writer::is_storage_full_io(&e) {
            StoreError::StorageFull(format!("{what}: {e}"))
        } else {
            StoreError::Blocking(format!("{what}: {e}"))
        }
    }
}

/// How long a write waits for a lock another process holds.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Each migration runs once, in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    status             TEXT NOT NULL,
    portal_schema_name TEXT NOT NULL,
    filename           TEXT NOT NULL,
    mime_type          TEXT NOT NULL,
    file_size_bytes    INTEGER NOT NULL,
    camber_job_id      TEXT,
    result             TEXT,
    error              TEXT,
    artifacts          TEXT NOT NULL DEFAULT '[]',
    submit_attempts    INTEGER NOT NULL DEFAULT 0,
    next_submit_at     INTEGER,
    next_reconcile_at  INTEGER,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX jobs_status_seq ON jobs (status, seq);
CREATE INDEX jobs_due_submit ON jobs (next_submit_at) WHERE status = 'pending';
CREATE INDEX jobs_due_reconcile ON jobs (next_reconcile_at) WHERE status = 'processing';
CREATE TABLE job_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    at          TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, id);
"#,
    r#"
-- /readyz proves a real write here.
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"#,
    r#"
-- POST /jobs with an Idempotency-Key: the key and the SHA-256 of the body,
-- written with the job row (one per job: bounded by the jobs themselves).
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"#,
];

/// A file kept by the artifact store, as recorded on the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub seq: i64,
    pub id: JobId,
    pub status: Status,
    pub portal_schema_name: String,
    pub filename: String,
    pub mime_type: String,
    pub file_size_bytes: u64,
    pub camber_job_id: Option<String>,
    pub result: Option<Value>,
    pub error: Option<JobFailure>,
    pub artifacts: Vec<ArtifactMeta>,
    pub submit_attempts: u32,
    pub created_at: String,
    pub updated_at: String,
}

/// One transition of a job, as `GET /jobs/{id}` lists it (`openapi.yaml`'s
/// `Event`); the enums are TEXT only in the `job_events` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub from: Option<Status>,
    pub to: Status,
    pub at: String,
    pub source: Source,
}

/// What `finish_job` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The transition happened, from this status.
    Applied(Status),
    /// The job was already terminal; nothing changed.
    Duplicate,
    NotFound,
    /// The stored Camber id differs from the one given; nothing changed.
    CamberIdMismatch,
}

/// Handle to the store; cheap to clone. The writer thread and the reader
/// pool are the shared `sqlite-writer` crate; this file keeps the schema and
/// the SQL.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// The writer's counters as Prometheus text (`api_db_*`).
    pub fn metrics_text(&self) -> String {
        self.db.metrics_text("api")
    }

    /// Opens (creating when missing) the database at `path`, applies the
    /// migrations and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Setup(format!("{}: {e}", dir.display())))?;
        }
        let opts = Options {
            // FULL: a job is on disk before we answer 201. Batching amortises the fsync.
            synchronous: Synchronous::Full,
            // Most writes one transaction carries; more wait for the next.
            max_batch: 512,
            max_readers: 32,
            // Another process holding the database (a backup, a sqlite3
            // shell) makes a write wait this long, then answer 503.
            busy_timeout: BUSY_TIMEOUT,
            thread_name: "api-store-writer".into(),
            on_commit: None,
            defer: Duration::ZERO,
        };
        let db = Db::open(path, opts, |conn| {
            conn.execute_batch("PRAGMA foreign_keys = ON;")?;
            migrate(conn)
        })?;
        Ok(Store { db })
    }

    /// Runs `f` in the writer thread inside a batch transaction; resolves
    /// after the commit. An `Err` from `f` rolls back only `f`'s own writes.
    /// `f` may run twice (a failure elsewhere in its batch rolls its group
    /// back): it must touch only the connection.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.write(f).await
    }

    /// Runs `f` on a pooled reader connection on one of the reader threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.read(f).await
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        log::info!("applied database migration {}", i + 1);
    }
    Ok(())
}

#[cfg(test)]
mod migration_tests;
mod sql;
#[cfg(test)]
mod tests;

pub use sql::*;
