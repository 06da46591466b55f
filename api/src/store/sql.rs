//! Every SQL statement of the api as a plain `fn(&Connection) -> Result`.
//! Times: `*_at` text columns are RFC 3339; `next_*_at` are unix ms.

use rusqlite::{params, Connection, OptionalExtension, Row};
use shared::JobFailure;

use super::{ArtifactMeta, Event, Finish, JobRecord, StoreError};
use crate::domain::{NewJob, Outcome, Source, Status};

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn now_text() -> String {
    shared::rfc3339(chrono::Utc::now())
}

const JOB_COLUMNS: &str =
    "seq, id, status, portal_schema_name, filename, mime_type, file_size_bytes, \
     camber_job_id, result, error, artifacts, submit_attempts, created_at, updated_at";

fn json_col<T: serde::de::DeserializeOwned>(text: Option<String>) -> rusqlite::Result<Option<T>> {
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

/// The `Idempotency-Key` of a create and the SHA-256 (hex) of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemKey {
    pub key: String,
    pub body_hash: String,
}

/// What became of a create.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New(JobRecord),
    /// The key was used before with the same body: that job.
    Replayed(JobRecord),
    /// The key was used before with another body.
    KeyReused,
}

/// Inserts a new pending job, or, when `idem`'s key was seen, answers the
/// job it created (same body) or `KeyReused` (another body). The key is
/// written with the row, in the same transaction.
pub fn create_job(
    conn: &Connection,
    id: &str,
    job: &NewJob,
    submit_lease_ms: i64,
    idem: Option<&IdemKey>,
) -> Result<Created, StoreError> {
    let Some(idem) = idem else {
        return insert_job(conn, id, job, submit_lease_ms).map(Created::New);
    };
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT id, request_hash FROM jobs WHERE idempotency_key = ?1")?
        .query_row([&idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((seen_id, hash)) = seen {
        if hash != idem.body_hash {
            return Ok(Created::KeyReused);
        }
        return get_job(conn, &seen_id)?
            .map(Created::Replayed)
            .ok_or(StoreError::Setup("a keyed job vanished".into()));
    }
    let created = insert_job(conn, id, job, submit_lease_ms)?;
    conn.prepare_cached("UPDATE jobs SET idempotency_key = ?2, request_hash = ?3 WHERE id = ?1")?
        .execute(params![id, idem.key, idem.body_hash])?;
    Ok(Created::New(created))
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
        let source: String = r.get(3)?;
        Ok(Event {
            from: r.get(0)?,
            to: r.get(1)?,
            at: r.get(2)?,
            source: Source::parse(&source).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Text,
                    format!("unknown event source `{source}`").into(),
                )
            })?,
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
    error: &JobFailure,
) -> Result<bool, StoreError> {
    let now = now_text();
    let moved = conn
        .prepare_cached(
            "UPDATE jobs SET status = 'failed', error = ?2, submit_attempts = ?3, next_submit_at = NULL, \
             updated_at = ?4 WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, serde_json::to_string(error)?, attempts as i64, now])?;
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
        Outcome::Failed(e) => (None, Some(serde_json::to_string(e)?)),
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

/// The latest a stored due time (`next_submit_at`, `next_reconcile_at`)
/// may lie ahead of `now`. They are wall-clock times (they outlive the
/// process), and none is ever written more than `max_ahead_ms` ahead, so a
/// later one was written before the clock stepped back: it is brought
/// forward to `now + max_ahead_ms`. A backward step of any size thus delays
/// a job by at most the longest wait it could have had anyway; a forward
/// step makes waits end early (a lease early: a second submit of a job
/// under the same Idempotency-Key, i.e. the same Camber job).
pub fn bound_ahead(at: i64, now: i64, max_ahead_ms: i64) -> i64 {
    at.min(now.saturating_add(max_ahead_ms.max(0)))
}

/// Pending jobs whose next submit is due, leased for `lease_ms` so that no
/// other round takes them while this one submits. Due times more than
/// `max_ahead_ms` ahead are first brought back (`bound_ahead`).
pub fn claim_due_submits(
    conn: &Connection,
    lease_ms: i64,
    max_ahead_ms: i64,
    limit: usize,
) -> Result<Vec<JobRecord>, StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE jobs SET next_submit_at = ?1 WHERE status = 'pending' AND next_submit_at > ?1",
    )?
    .execute([bound_ahead(i64::MAX, now, max_ahead_ms)])?;
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
/// `again_after_ms` so that it is polled at most that often. No due time
/// stays more than `again_after_ms` ahead (`bound_ahead`).
pub fn claim_due_reconciles(
    conn: &Connection,
    again_after_ms: i64,
    limit: usize,
) -> Result<Vec<JobRecord>, StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE jobs SET next_reconcile_at = ?1 \
         WHERE status = 'processing' AND next_reconcile_at > ?1",
    )?
    .execute([bound_ahead(i64::MAX, now, again_after_ms)])?;
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
/// A real (small) write: readiness means the database takes writes.
pub fn ping(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES ('ready_probe', ?1)")?
        .execute([now_ms().to_string()])?;
    Ok(())
}
