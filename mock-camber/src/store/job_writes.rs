//! A job's writes: a new job (with its idempotency record) and a progress
//! change, each rendered to text off the writer thread ([`NewJob::of`],
//! [`ProgressWrite`]) so the writer only binds and steps.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use shared::{JobStatus, WebhookError};

use super::jobs::json_text;
use super::JobRow;
use crate::jobs::stage::Stage;
use crate::scenario::Plan;

/// A new job as the writer stores it: its JSON columns and its first
/// events already text, made by [`NewJob::of`] on the caller's thread, so
/// the single writer thread only binds and steps (and drops no JSON tree).
#[derive(Debug)]
pub struct NewJob {
    pub seq: i64,
    pub id: String,
    pub tenant: String,
    pub tenant_mask: String,
    pub app: String,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    metadata: String,
    input: String,
    plan: String,
    webhook_url: Option<String>,
    webhook_headers: String,
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    result: Option<String>,
    error: Option<String>,
    log: String,
    events: String,
}

impl NewJob {
    /// The row (its JSON columns rendered) with its plan and first events
    /// (`row.plan` is not read: the job keeps the plan, not a copy).
    pub fn of(row: JobRow, plan: &Plan, events: &[super::JobEvent]) -> rusqlite::Result<Self> {
        Ok(Self {
            metadata: json_text(&row.metadata)?,
            input: json_text(&row.input)?,
            plan: json_text(plan)?,
            webhook_headers: row.webhook_headers.to_json(),
            result: row.result.as_ref().map(json_text).transpose()?,
            error: row.error.as_ref().map(json_text).transpose()?,
            events: super::encode_events(events),
            seq: row.seq,
            id: row.id,
            tenant: row.tenant,
            tenant_mask: row.tenant_mask,
            app: row.app,
            status: row.status,
            stage: row.stage,
            webhook_url: row.webhook_url,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            log: row.log,
        })
    }
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
    job: &NewJob,
    idem: Option<&IdemRecord>,
    now_unix: i64,
) -> rusqlite::Result<SubmitOutcome> {
    if let Some(idem) = idem {
        // A record older than the window still stands while its job is
        // unfinished (running or held jobs keep their key).
        let seen: Option<(String, String, i64, bool)> = conn
            .prepare_cached(
                "SELECT i.body_hash, i.response, i.created_unix, \
                 COALESCE(j.status IN ('pending', 'running'), 0) \
                 FROM idempotency i LEFT JOIN jobs j ON j.id = i.job_id \
                 WHERE i.tenant = ?1 AND i.key = ?2",
            )?
            .query_row(params![job.tenant, idem.key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        if let Some((hash, response, created, unfinished)) = seen {
            if unfinished || now_unix - created < IDEMPOTENCY_WINDOW_SECS {
                return Ok(if hash == idem.body_hash {
                    SubmitOutcome::Replayed(response)
                } else {
                    SubmitOutcome::KeyReused
                });
            }
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency (tenant, key, body_hash, response, created_unix, job_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            job.tenant,
            idem.key,
            idem.body_hash,
            idem.response,
            now_unix,
            job.id
        ])?;
    }
    conn.prepare_cached(
        "INSERT INTO jobs (seq, id, tenant, tenant_mask, app, status, stage, metadata, input, plan, \
         webhook_url, webhook_headers, created_at, updated_at, started_at, finished_at, result, error, log, \
         events) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
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
        job.log,
        job.events
    ])?;
    super::note(super::Note::Job {
        id: job.id.clone(),
        tenant: job.tenant.clone(),
        app: job.app.clone(),
        status: job.status,
    });
    Ok(SubmitOutcome::Created)
}

/// A progress change of a running job, with the events that led to it.
#[derive(Debug, Clone)]
pub struct Progress {
    pub events: Vec<super::JobEvent>,
    pub id: String,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<Value>,
    pub error: Option<WebhookError>,
    pub log: String,
}

impl JobRow {
    /// The row as `update_job(p)` leaves it (for a row not yet written).
    pub fn apply(&mut self, p: Progress) {
        self.status = p.status;
        self.stage = p.stage;
        self.updated_at = p.updated_at;
        if p.started_at.is_some() {
            self.started_at = p.started_at;
        }
        self.finished_at = p.finished_at;
        self.result = p.result;
        self.error = p.error;
        self.log = p.log;
    }
}

/// A [`Progress`] as the writer stores it: its result, error and events
/// already text (rendered on the caller's thread).
#[derive(Debug, Clone)]
pub struct ProgressWrite {
    pub id: String,
    pub status: JobStatus,
    stage: Option<Stage>,
    updated_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    result: Option<String>,
    error: Option<String>,
    log: String,
    events: String,
}

impl TryFrom<Progress> for ProgressWrite {
    type Error = rusqlite::Error;

    fn try_from(p: Progress) -> rusqlite::Result<Self> {
        Ok(Self {
            result: p.result.as_ref().map(json_text).transpose()?,
            error: p.error.as_ref().map(json_text).transpose()?,
            events: super::encode_events(&p.events),
            id: p.id,
            status: p.status,
            stage: p.stage,
            updated_at: p.updated_at,
            started_at: p.started_at,
            finished_at: p.finished_at,
            log: p.log,
        })
    }
}

/// Writes a progress change; its events are appended to the job's.
pub fn update_job(conn: &Connection, p: &ProgressWrite) -> rusqlite::Result<()> {
    let owner: Option<(String, String)> = conn.prepare_cached(
        "UPDATE jobs SET status = ?2, stage = ?3, updated_at = ?4, started_at = COALESCE(?5, started_at), \
         finished_at = ?6, result = ?7, error = ?8, log = ?9, events = events || ?10 \
         WHERE id = ?1 RETURNING tenant, app",
    )?
    .query_row(params![
        p.id,
        p.status,
        p.stage,
        p.updated_at,
        p.started_at,
        p.finished_at,
        p.result,
        p.error,
        p.log,
        p.events
    ], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()?;
    if let Some((tenant, app)) = owner {
        super::note(super::Note::Job {
            id: p.id.clone(),
            tenant,
            app,
            status: p.status,
        });
    }
    Ok(())
}
