//! SQLite persistence: the schema, its migrations, and the SQL itself as
//! plain `fn(&Connection) -> Result` functions. The writer thread and the
//! reader pool are the shared `sqlite-writer` crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};
use shared::{DeliveryState, JobStatus, WebhookEvent};
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

const MIGRATIONS: &str = r#"
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    tenant_mask TEXT NOT NULL,
    app TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT,
    metadata TEXT NOT NULL,
    input TEXT NOT NULL,
    plan TEXT NOT NULL,
    webhook_url TEXT,
    webhook_headers TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    result TEXT,
    error TEXT,
    log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, seq);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (status) WHERE status IN ('pending', 'running');
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_unix INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sends_remaining INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    bad_signature INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_job ON deliveries (job_id);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (state) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    at TEXT NOT NULL,
    status INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, n)
);
"#;

/// Schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// Creates the schema, or brings an older database up to date:
/// v1 → v2 added `deliveries.failures` (the position in the retry schedule).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(MIGRATIONS)?;
    let has_failures: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('deliveries') WHERE name = 'failures'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_failures {
        // Attempts logged before v2 were all failures of undelivered events.
        conn.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
             UPDATE deliveries SET failures = attempts WHERE state = 'pending';",
        )?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
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
            ..Options::default()
        };
        let db = Db::open(&file, opts, |c| migrate(c).map_err(StoreError::from))?;
        Ok(Self { db, _temp: temp })
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Runs `f` inside the writer's next transaction (under its own
    /// savepoint) and resolves once that transaction committed.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.db.write(move |c| f(c).map_err(StoreError::from)).await
    }

    /// Queues a write without waiting for it; `then` is called with the
    /// outcome after the transaction ended (on the writer thread).
    pub fn write_then<R, F, T>(&self, f: F, then: T)
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        T: FnOnce(Result<R, StoreError>) + Send + 'static,
    {
        self.db
            .write_then(move |c| f(c).map_err(StoreError::from), then)
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

    /// Runs a read on a pooled connection on tokio's blocking pool.
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

// ---------------------------------------------------------------- rows

/// A job's extra webhook headers (`webhook.headers`), parsed once from the
/// submit body and shared, never re-encoded, on their way to the sender;
/// stored as a JSON object in one place (this type's SQL mapping).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Arc<[(String, String)]>);

impl Headers {
    /// The string-valued entries of a JSON object (others are refused at
    /// submit, so none are dropped here in practice).
    pub fn from_map(map: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self(
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }
}

impl ToSql for Headers {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        Ok(ToSqlOutput::from(
            serde_json::Value::Object(map).to_string(),
        ))
    }
}

impl FromSql for Headers {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(v.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))?;
        Ok(Self::from_map(&map))
    }
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub seq: i64,
    pub id: String,
    pub tenant: String,
    pub tenant_mask: String,
    pub app: String,
    pub status: JobStatus,
    pub stage: Option<String>,
    pub metadata: String,
    pub input: String,
    pub plan: String,
    pub webhook_url: Option<String>,
    pub webhook_headers: Headers,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub log: String,
    /// From the job's delivery, when there is one.
    pub delivery_state: Option<shared::DeliveryState>,
    pub delivery_attempts: i64,
}

const JOB_COLUMNS: &str = "j.seq, j.id, j.tenant, j.tenant_mask, j.app, j.status, j.stage, \
     j.metadata, j.input, j.plan, j.webhook_url, j.webhook_headers, j.created_at, j.updated_at, \
     j.started_at, j.finished_at, j.result, j.error, j.log, d.state, COALESCE(d.attempts, 0)";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        tenant: r.get(2)?,
        tenant_mask: r.get(3)?,
        app: r.get(4)?,
        status: r.get(5)?,
        stage: r.get(6)?,
        metadata: r.get(7)?,
        input: r.get(8)?,
        plan: r.get(9)?,
        webhook_url: r.get(10)?,
        webhook_headers: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        started_at: r.get(14)?,
        finished_at: r.get(15)?,
        result: r.get(16)?,
        error: r.get(17)?,
        log: r.get(18)?,
        delivery_state: r.get(19)?,
        delivery_attempts: r.get(20)?,
    })
}

/// An idempotency record to store with a new job.
#[derive(Debug, Clone)]
pub struct IdemRecord {
    pub key: String,
    pub body_hash: String,
    pub response: String,
}

/// What became of a submit at commit time.
#[derive(Debug)]
pub enum SubmitOutcome {
    Created,
    /// Same key, same body, within 24 h: the original response.
    Replayed(String),
    /// Same key, other body.
    KeyReused,
}

const IDEMPOTENCY_WINDOW_SECS: i64 = 24 * 3600;

/// Inserts a new job (and its idempotency record) unless the key was seen.
pub fn insert_job(
    conn: &Connection,
    job: &JobRow,
    idem: Option<&IdemRecord>,
    now_unix: i64,
) -> rusqlite::Result<SubmitOutcome> {
    if let Some(idem) = idem {
        let seen: Option<(String, String, i64)> = conn
            .prepare_cached(
                "SELECT body_hash, response, created_unix FROM idempotency WHERE tenant = ?1 AND key = ?2",
            )?
            .query_row(params![job.tenant, idem.key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((hash, response, created)) = seen {
            if now_unix - created < IDEMPOTENCY_WINDOW_SECS {
                return Ok(if hash == idem.body_hash {
                    SubmitOutcome::Replayed(response)
                } else {
                    SubmitOutcome::KeyReused
                });
            }
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency (tenant, key, body_hash, response, created_unix) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            job.tenant,
            idem.key,
            idem.body_hash,
            idem.response,
            now_unix
        ])?;
    }
    conn.prepare_cached(
        "INSERT INTO jobs (seq, id, tenant, tenant_mask, app, status, stage, metadata, input, plan, \
         webhook_url, webhook_headers, created_at, updated_at, started_at, finished_at, result, error, log) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        job.seq,
        job.id,
        job.tenant,
        job.tenant_mask,
        job.app,
        job.status,
        job.stage,
        job.metadata,
        job.input,
        job.plan,
        job.webhook_url,
        job.webhook_headers,
        job.created_at,
        job.updated_at,
        job.started_at,
        job.finished_at,
        job.result,
        job.error,
        job.log
    ])?;
    Ok(SubmitOutcome::Created)
}

/// A progress change of a running job.
#[derive(Debug, Clone)]
pub struct Progress {
    pub id: String,
    pub status: JobStatus,
    pub stage: Option<String>,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub log: String,
}

pub fn update_job(conn: &Connection, p: &Progress) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET status = ?2, stage = ?3, updated_at = ?4, started_at = COALESCE(?5, started_at), \
         finished_at = ?6, result = ?7, error = ?8, log = ?9 WHERE id = ?1",
    )?
    .execute(params![
        p.id,
        p.status,
        p.stage,
        p.updated_at,
        p.started_at,
        p.finished_at,
        p.result,
        p.error,
        p.log
    ])?;
    Ok(())
}

pub fn get_job(conn: &Connection, id: &str) -> rusqlite::Result<Option<JobRow>> {
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN deliveries d ON d.job_id = j.id WHERE j.id = ?1"
    ))?
    .query_row([id], job_from_row)
    .optional()
}

/// Filters of a job listing. `tenant` matches the tenant id or its mask.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub tenant: Option<(String, String)>,
    pub status: Option<JobStatus>,
    pub app: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: usize,
}

/// Newest first; one extra row tells whether a next page exists.
pub fn list_jobs(conn: &Connection, f: &JobFilter) -> rusqlite::Result<Vec<JobRow>> {
    let (tenant_id, tenant_mask) = f.tenant.clone().unzip();
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN deliveries d ON d.job_id = j.id \
         WHERE (?1 IS NULL OR j.tenant = ?1 OR j.tenant_mask = ?2) \
           AND (?3 IS NULL OR j.status = ?3) AND (?4 IS NULL OR j.app = ?4) \
           AND (?5 IS NULL OR j.seq < ?5) \
         ORDER BY j.seq DESC LIMIT ?6"
    ))?
    .query_map(
        params![
            tenant_id,
            tenant_mask,
            f.status,
            f.app,
            f.before_seq,
            (f.limit + 1) as i64
        ],
        job_from_row,
    )?
    .collect()
}

/// Jobs a restart must resume.
pub fn active_jobs(conn: &Connection) -> rusqlite::Result<Vec<JobRow>> {
    conn.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN deliveries d ON d.job_id = j.id \
         WHERE j.status IN ('pending', 'running') ORDER BY j.seq"
    ))?
    .query_map([], job_from_row)?
    .collect()
}

pub fn max_job_seq(conn: &Connection) -> rusqlite::Result<i64> {
    let from_jobs: i64 =
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM jobs", [], |r| r.get(0))?;
    let from_meta: Option<String> = conn
        .query_row("SELECT v FROM meta WHERE k = 'last_seq'", [], |r| r.get(0))
        .optional()?;
    Ok(from_jobs.max(from_meta.and_then(|v| v.parse().ok()).unwrap_or(0)))
}

// ---------------------------------------------------------------- deliveries

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub seq: i64,
    pub id: String,
    pub job_id: String,
    pub event: WebhookEvent,
    pub url: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub state: DeliveryState,
    pub attempts: i64,
    pub sends_remaining: i64,
    /// Failed attempts so far: the position in the retry schedule.
    pub failures: i64,
    pub bad_signature: bool,
    pub next_attempt_ms: i64,
    pub created_at: String,
}

const DELIVERY_COLUMNS: &str = "seq, id, job_id, event, url, headers, body, state, attempts, \
     sends_remaining, bad_signature, next_attempt_ms, created_at, failures";

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        job_id: r.get(2)?,
        event: r.get(3)?,
        url: r.get(4)?,
        headers: r.get(5)?,
        body: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        sends_remaining: r.get(9)?,
        bad_signature: r.get(10)?,
        next_attempt_ms: r.get(11)?,
        created_at: r.get(12)?,
        failures: r.get(13)?,
    })
}

pub fn insert_delivery(conn: &Connection, d: &DeliveryRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO deliveries (id, job_id, event, url, headers, body, state, attempts, \
         sends_remaining, bad_signature, next_attempt_ms, created_at, failures) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        d.id,
        d.job_id,
        d.event,
        d.url,
        d.headers,
        d.body,
        d.state,
        d.attempts,
        d.sends_remaining,
        d.bad_signature,
        d.next_attempt_ms,
        d.created_at,
        d.failures
    ])?;
    Ok(())
}

/// One attempt of a delivery, as logged.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub n: i64,
    pub at: String,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Records an attempt and the delivery state it led to.
pub fn record_attempt(
    conn: &Connection,
    a: &AttemptRow,
    state: DeliveryState,
    sends_remaining: i64,
    failures: i64,
    next_attempt_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO attempts (delivery_id, n, at, status, latency_ms, error, response_excerpt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.delivery_id,
        a.n,
        a.at,
        a.status,
        a.latency_ms,
        a.error,
        a.response_excerpt
    ])?;
    conn.prepare_cached(
        "UPDATE deliveries SET state = ?2, attempts = ?3, sends_remaining = ?4, next_attempt_ms = ?5, \
         failures = ?6 WHERE id = ?1",
    )?
    .execute(params![
        a.delivery_id,
        state,
        a.n,
        sends_remaining,
        next_attempt_ms,
        failures
    ])?;
    Ok(())
}

/// Puts a delivery back in the queue (redeliver) for one more send, at the
/// end of its retry schedule (`failures`).
pub fn requeue_delivery(
    conn: &Connection,
    id: &str,
    now_ms: i64,
    failures: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET state = 'pending', sends_remaining = 1, next_attempt_ms = ?2, \
         failures = ?3 WHERE id = ?1",
    )?
    .execute(params![id, now_ms, failures])?;
    Ok(())
}

pub fn get_delivery(conn: &Connection, id: &str) -> rusqlite::Result<Option<DeliveryRow>> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
    ))?
    .query_row([id], delivery_from_row)
    .optional()
}

pub fn pending_deliveries(conn: &Connection) -> rusqlite::Result<Vec<DeliveryRow>> {
    conn.prepare(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' ORDER BY seq"
    ))?
    .query_map([], delivery_from_row)?
    .collect()
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub job_id: Option<String>,
    pub state: Option<DeliveryState>,
    pub event: Option<WebhookEvent>,
    pub before_seq: Option<i64>,
    pub limit: usize,
}

pub fn list_deliveries(
    conn: &Connection,
    f: &DeliveryFilter,
) -> rusqlite::Result<Vec<(DeliveryRow, Vec<AttemptRow>)>> {
    let rows: Vec<DeliveryRow> = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE (?1 IS NULL OR job_id = ?1) AND (?2 IS NULL OR state = ?2) \
               AND (?3 IS NULL OR seq < ?3) AND (?5 IS NULL OR event = ?5) \
             ORDER BY seq DESC LIMIT ?4"
        ))?
        .query_map(
            params![
                f.job_id,
                f.state,
                f.before_seq,
                (f.limit + 1) as i64,
                f.event
            ],
            delivery_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT delivery_id, n, at, status, latency_ms, error, response_excerpt \
         FROM attempts WHERE delivery_id = ?1 ORDER BY n",
    )?;
    rows.into_iter()
        .map(|d| {
            let attempts = stmt
                .query_map([&d.id], |r| {
                    Ok(AttemptRow {
                        delivery_id: r.get(0)?,
                        n: r.get(1)?,
                        at: r.get(2)?,
                        status: r.get(3)?,
                        latency_ms: r.get(4)?,
                        error: r.get(5)?,
                        response_excerpt: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((d, attempts))
        })
        .collect()
}

/// Forgets jobs, deliveries and idempotency records; keeps the id sequence
/// so ids are never reused.
pub fn reset(conn: &Connection, last_seq: i64) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM jobs; DELETE FROM idempotency; DELETE FROM deliveries; DELETE FROM attempts;",
    )?;
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
