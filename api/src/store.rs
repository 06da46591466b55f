//! The SQLite store: schema and migrations, and every SQL statement as a
//! plain `fn(&Connection) -> Result`. The one writer thread that batches
//! queued writes into transactions and the reader pool are the shared
//! `sqlite-writer` crate: no rusqlite call runs on an actix executor thread.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlite_writer::{Db, Options, Synchronous};

use crate::domain::{JobId, NewJob, Outcome, Source, Status};

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
}

/// Each migration runs once, in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

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
    pub error: Option<Value>,
    pub artifacts: Vec<ArtifactMeta>,
    pub submit_attempts: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub from: Option<String>,
    pub to: String,
    pub at: String,
    pub source: String,
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
            max_idle_readers: 32,
            busy_timeout: Duration::from_secs(10),
            thread_name: "api-store-writer".into(),
            on_commit: None,
        };
        let db = Db::open(path, opts, |conn| {
            conn.execute_batch("PRAGMA foreign_keys = ON;")?;
            migrate(conn)
        })?;
        Ok(Store { db })
    }

    /// Runs `f` in the writer thread inside a batch transaction; resolves
    /// after the commit. An `Err` from `f` rolls back only `f`'s own writes.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.write(f).await
    }

    /// Runs `f` on a pooled reader connection on the blocking thread pool.
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

// ---------------------------------------------------------------------------
// SQL. Times: `*_at` text columns are RFC 3339; `next_*_at` are unix ms.

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn now_text() -> String {
    shared::rfc3339(chrono::Utc::now())
}

const JOB_COLUMNS: &str =
    "seq, id, status, portal_schema_name, filename, mime_type, file_size_bytes, \
     camber_job_id, result, error, artifacts, submit_attempts, created_at, updated_at";

fn json_col(text: Option<String>) -> rusqlite::Result<Option<Value>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let status: String = row.get(2)?;
    let artifacts: String = row.get(10)?;
    Ok(JobRecord {
        seq: row.get(0)?,
        id: row.get(1)?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        portal_schema_name: row.get(3)?,
        filename: row.get(4)?,
        mime_type: row.get(5)?,
        file_size_bytes: row.get::<_, i64>(6)? as u64,
        camber_job_id: row.get(7)?,
        result: json_col(row.get(8)?)?,
        error: json_col(row.get(9)?)?,
        artifacts: serde_json::from_str(&artifacts).unwrap_or_default(),
        submit_attempts: row.get::<_, i64>(11)? as u32,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
    })
}

fn add_event(
    conn: &Connection,
    job_id: &str,
    from: Option<Status>,
    to: Status,
    at: &str,
    source: Source,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO job_events (job_id, from_status, to_status, at, source) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        job_id,
        from.map(Status::as_str),
        to.as_str(),
        at,
        source.as_str()
    ])?;
    Ok(())
}

/// Inserts a `pending` job with its first event. `submit_lease_ms` keeps the
/// background submitter away while the caller submits inline; if the
/// process dies first, the lease runs out and the submitter takes over.
pub fn insert_job(
    conn: &Connection,
    id: &str,
    job: &NewJob,
    submit_lease_ms: i64,
) -> Result<JobRecord, StoreError> {
    let now = now_text();
    conn.prepare_cached(
        "INSERT INTO jobs (id, status, portal_schema_name, filename, mime_type, file_size_bytes, \
         next_submit_at, created_at, updated_at) VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        id,
        job.portal_schema_name,
        job.filename,
        job.mime_type,
        job.file_size_bytes as i64,
        now_ms() + submit_lease_ms,
        now
    ])?;
    add_event(conn, id, None, Status::Pending, &now, Source::Submit)?;
    get_job(conn, id)?.ok_or(StoreError::Setup("inserted job vanished".into()))
}

pub fn get_job(conn: &Connection, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], job_from_row)
        .optional()?)
}

pub fn events(conn: &Connection, id: &str) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT from_status, to_status, at, source FROM job_events WHERE job_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Event {
            from: r.get(0)?,
            to: r.get(1)?,
            at: r.get(2)?,
            source: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One page of jobs, newest first: jobs with `seq < before` (all when None).
/// Returns up to `limit` jobs and whether more follow.
pub fn list_jobs(
    conn: &Connection,
    status: Option<Status>,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<JobRecord>, bool), StoreError> {
    let before = before.unwrap_or(i64::MAX);
    let fetch = (limit + 1) as i64;
    let mut jobs = match status {
        Some(st) => {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE status = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![st.as_str(), before, fetch], job_from_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        }
        None => {
            let sql =
                format!("SELECT {JOB_COLUMNS} FROM jobs WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![before, fetch], job_from_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        }
    };
    let more = jobs.len() > limit;
    jobs.truncate(limit);
    Ok((jobs, more))
}

pub fn count_by_status(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Camber took the job. `pending → processing`, unless a webhook already
/// finished it (the webhook-before-submit-returned race): then the status
/// stays terminal and only a missing Camber id is filled in.
pub fn mark_submitted(
    conn: &Connection,
    id: &str,
    camber_job_id: &str,
    reconcile_after_ms: i64,
) -> Result<Option<Status>, StoreError> {
    let now = now_text();
    let moved = conn
        .prepare_cached(
            "UPDATE jobs SET status = 'processing', camber_job_id = ?2, submit_attempts = submit_attempts + 1, \
             next_submit_at = NULL, next_reconcile_at = ?3, updated_at = ?4 \
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, camber_job_id, now_ms() + reconcile_after_ms, now])?;
    if moved == 1 {
        add_event(
            conn,
            id,
            Some(Status::Pending),
            Status::Processing,
            &now,
            Source::Submit,
        )?;
        return Ok(Some(Status::Processing));
    }
    conn.prepare_cached(
        "UPDATE jobs SET camber_job_id = ?2 WHERE id = ?1 AND camber_job_id IS NULL",
    )?
    .execute(params![id, camber_job_id])?;
    Ok(get_job(conn, id)?.map(|j| j.status))
}

/// A submit attempt failed but may be retried at `next_at_ms`.
pub fn record_submit_failure(
    conn: &Connection,
    id: &str,
    attempts: u32,
    next_at_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE jobs SET submit_attempts = ?2, next_submit_at = ?3, updated_at = ?4 \
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, attempts as i64, next_at_ms, now_text()])?;
    Ok(())
}

/// `pending → failed` without Camber's word (unavailable, rejected).
pub fn fail_pending(
    conn: &Connection,
    id: &str,
    attempts: u32,
    error: &Value,
) -> Result<bool, StoreError> {
    let now = now_text();
    let moved = conn
        .prepare_cached(
            "UPDATE jobs SET status = 'failed', error = ?2, submit_attempts = ?3, next_submit_at = NULL, \
             updated_at = ?4 WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, error.to_string(), attempts as i64, now])?;
    if moved == 1 {
        add_event(
            conn,
            id,
            Some(Status::Pending),
            Status::Failed,
            &now,
            Source::Submit,
        )?;
    }
    Ok(moved == 1)
}

/// The one rule Camber's final word is applied by: `None` = apply it,
/// else why not. Decided for real inside [`finish_job`]'s transaction;
/// `Lifecycle::finish` also asks it of a snapshot, only to spare the
/// artifact files a write that could not apply.
pub fn refuse_finish(job: Option<&JobRecord>, camber_job_id: &str) -> Option<Finish> {
    let Some(job) = job else {
        return Some(Finish::NotFound);
    };
    if job
        .camber_job_id
        .as_deref()
        .is_some_and(|stored| stored != camber_job_id)
    {
        return Some(Finish::CamberIdMismatch);
    }
    job.status.is_terminal().then_some(Finish::Duplicate)
}

/// Applies Camber's final word: `pending|processing → completed|failed`
/// with the artifacts already written to disk, in this transaction.
pub fn finish_job(
    conn: &Connection,
    id: &str,
    camber_job_id: &str,
    outcome: &Outcome,
    artifacts: &[ArtifactMeta],
    source: Source,
) -> Result<Finish, StoreError> {
    let job = get_job(conn, id)?;
    if let Some(refused) = refuse_finish(job.as_ref(), camber_job_id) {
        return Ok(refused);
    }
    let job = job.expect("refuse_finish refuses a missing job");
    let now = now_text();
    let (result, error) = match outcome {
        Outcome::Completed(r) => (Some(r.to_string()), None),
        Outcome::Failed(e) => (None, Some(e.to_string())),
    };
    let to = outcome.status();
    conn.prepare_cached(
        "UPDATE jobs SET status = ?2, camber_job_id = ?3, result = ?4, error = ?5, artifacts = ?6, \
         next_submit_at = NULL, next_reconcile_at = NULL, updated_at = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        to.as_str(),
        camber_job_id,
        result,
        error,
        serde_json::to_string(artifacts)?,
        now
    ])?;
    add_event(conn, id, Some(job.status), to, &now, source)?;
    Ok(Finish::Applied(job.status))
}

/// Pending jobs whose next submit is due, leased for `lease_ms` so that no
/// other round takes them while this one submits.
pub fn claim_due_submits(
    conn: &Connection,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<JobRecord>, StoreError> {
    let now = now_ms();
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND next_submit_at <= ?1 \
         ORDER BY next_submit_at LIMIT ?2"
    );
    let jobs = conn
        .prepare_cached(&sql)?
        .query_map(params![now, limit as i64], job_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut lease = conn.prepare_cached("UPDATE jobs SET next_submit_at = ?2 WHERE id = ?1")?;
    for job in &jobs {
        lease.execute(params![job.id, now + lease_ms])?;
    }
    Ok(jobs)
}

/// Processing jobs due for a poll on Camber; each is pushed back by
/// `again_after_ms` so that it is polled at most that often.
pub fn claim_due_reconciles(
    conn: &Connection,
    again_after_ms: i64,
    limit: usize,
) -> Result<Vec<JobRecord>, StoreError> {
    let now = now_ms();
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'processing' AND next_reconcile_at <= ?1 \
         ORDER BY next_reconcile_at LIMIT ?2"
    );
    let jobs = conn
        .prepare_cached(&sql)?
        .query_map(params![now, limit as i64], job_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut push = conn.prepare_cached("UPDATE jobs SET next_reconcile_at = ?2 WHERE id = ?1")?;
    for job in &jobs {
        push.execute(params![job.id, now + again_after_ms])?;
    }
    Ok(jobs)
}

/// At start: pending jobs leased or backing off in a previous run are due
/// now (a restart is a natural retry point; the Idempotency-Key keeps a
/// retry from creating a second Camber job). Returns how many.
pub fn release_pending(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE jobs SET next_submit_at = ?1 WHERE status = 'pending' AND \
             (next_submit_at IS NULL OR next_submit_at > ?1)",
        )?
        .execute([now_ms()])?)
}

/// Proves the writer is alive and the database writable (for /readyz).
pub fn ping(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("PRAGMA user_version")?
        .query_row([], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    // Ids are UUIDs: a `JobId` is read back only when it is one.
    const J1: &str = "0190a4f2-0000-7000-8000-000000000001";
    const A: &str = "0190a4f2-0000-7000-8000-00000000000a";
    const B: &str = "0190a4f2-0000-7000-8000-00000000000b";
    const GONE: &str = "0190a4f2-0000-7000-8000-0000000000ff";
    const KEPT: &str = "0190a4f2-0000-7000-8000-0000000000cc";
    use super::*;
    use serde_json::json;

    fn new_job() -> NewJob {
        NewJob {
            portal_schema_name: "invoice".into(),
            filename: "a.pdf".into(),
            mime_type: "application/pdf".into(),
            file_size_bytes: 10,
        }
    }

    #[actix_rt::test]
    async fn a_job_goes_pending_processing_completed_with_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("api.db")).unwrap();
        let job = store
            .write(|c| insert_job(c, J1, &new_job(), 1000))
            .await
            .unwrap();
        assert_eq!(job.status, Status::Pending);
        let st = store
            .write(|c| mark_submitted(c, J1, "cmb_1", 1000))
            .await
            .unwrap();
        assert_eq!(st, Some(Status::Processing));
        let outcome = Outcome::Completed(json!({"a": 1}));
        let fin = store
            .write(move |c| finish_job(c, J1, "cmb_1", &outcome, &[], Source::Webhook))
            .await
            .unwrap();
        assert_eq!(fin, Finish::Applied(Status::Processing));
        let events = store.read(|c| events(c, J1)).await.unwrap();
        let path: Vec<_> = events.iter().map(|e| e.to.as_str()).collect();
        assert_eq!(path, ["pending", "processing", "completed"]);
        assert_eq!(events[0].from, None);
    }

    #[actix_rt::test]
    async fn a_late_submit_answer_does_not_reopen_a_finished_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("api.db")).unwrap();
        store
            .write(|c| insert_job(c, J1, &new_job(), 1000))
            .await
            .unwrap();
        let outcome = Outcome::Failed(json!({"code": "X"}));
        store
            .write(move |c| finish_job(c, J1, "cmb_1", &outcome, &[], Source::Webhook))
            .await
            .unwrap();
        let st = store
            .write(|c| mark_submitted(c, J1, "cmb_1", 1000))
            .await
            .unwrap();
        assert_eq!(st, Some(Status::Failed));
        let dup = store
            .write(|c| {
                finish_job(
                    c,
                    J1,
                    "cmb_1",
                    &Outcome::Completed(json!({})),
                    &[],
                    Source::Webhook,
                )
            })
            .await
            .unwrap();
        assert_eq!(dup, Finish::Duplicate);
        let other = store
            .write(|c| {
                finish_job(
                    c,
                    J1,
                    "cmb_2",
                    &Outcome::Completed(json!({})),
                    &[],
                    Source::Webhook,
                )
            })
            .await
            .unwrap();
        assert_eq!(other, Finish::CamberIdMismatch);
    }

    #[actix_rt::test]
    async fn a_failing_write_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("api.db")).unwrap();
        let a = store.write(|c| insert_job(c, A, &new_job(), 0));
        let dup = store.write(|c| insert_job(c, A, &new_job(), 0));
        let b = store.write(|c| insert_job(c, B, &new_job(), 0));
        let (a, dup, b) = futures_util::future::join3(a, dup, b).await;
        assert!(a.is_ok() && dup.is_err() && b.is_ok());
        let (jobs, more) = store.read(|c| list_jobs(c, None, None, 10)).await.unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(!more);
    }

    #[actix_rt::test]
    async fn a_panicking_write_fails_alone_and_the_writer_lives_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("api.db")).unwrap();
        let boom = store
            .write(|c| -> Result<(), StoreError> {
                insert_job(c, GONE, &new_job(), 0)?;
                panic!("boom")
            })
            .await;
        assert!(boom.is_err());
        store
            .write(|c| insert_job(c, KEPT, &new_job(), 0))
            .await
            .unwrap();
        let (jobs, _) = store.read(|c| list_jobs(c, None, None, 10)).await.unwrap();
        let ids: Vec<_> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, [KEPT]);
    }

    #[actix_rt::test]
    async fn claimed_submits_are_leased() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("api.db")).unwrap();
        store
            .write(|c| insert_job(c, J1, &new_job(), -1))
            .await
            .unwrap();
        let first = store
            .write(|c| claim_due_submits(c, 60_000, 10))
            .await
            .unwrap();
        let second = store
            .write(|c| claim_due_submits(c, 60_000, 10))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert!(second.is_empty());
    }
}
