//! A job's events: each status change, stage change and control action
//! (hold, advance, cancel, complete, fail) with its time. They are written
//! in the same write as the change itself (`insert_job`, `update_job`),
//! and the console's timeline is read from them.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection};
use shared::JobStatus;

use crate::jobs::stage::Stage;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Its status changed (to `status`).
    Status,
    /// `stage` started.
    StageStarted,
    /// `stage` ended, and the job moves on (or completes).
    StageFinished,
    /// The job ended in `stage`, failed or cancelled (`detail`: the code
    /// and reason).
    StageFailed,
    /// It waits for an advance at every stage (`hold` scenario).
    Hold,
    /// The admin API ended its `stage` by hand.
    Advance,
    /// Cancelled (`detail`: by whom).
    Cancel,
    /// Completed by the admin API.
    Complete,
    /// Failed by the admin API.
    Fail,
}

impl EventKind {
    const ALL: [Self; 9] = [
        Self::Status,
        Self::StageStarted,
        Self::StageFinished,
        Self::StageFailed,
        Self::Hold,
        Self::Advance,
        Self::Cancel,
        Self::Complete,
        Self::Fail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::StageStarted => "stage_started",
            Self::StageFinished => "stage_finished",
            Self::StageFailed => "stage_failed",
            Self::Hold => "hold",
            Self::Advance => "advance",
            Self::Cancel => "cancel",
            Self::Complete => "complete",
            Self::Fail => "fail",
        }
    }
}

impl ToSql for EventKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for EventKind {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        (Self::ALL.into_iter().find(|k| k.as_str() == s))
            .ok_or_else(|| FromSqlError::Other(format!("unknown job event `{s}`").into()))
    }
}

/// One event of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub at: String,
    pub kind: EventKind,
    pub stage: Option<Stage>,
    pub status: Option<JobStatus>,
    pub detail: Option<String>,
}

/// Appends `events` to the job's (inside the write that made them).
pub fn insert_events(conn: &Connection, job_id: &str, events: &[JobEvent]) -> rusqlite::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO job_events (job_id, at, kind, stage, status, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in events {
        stmt.execute(params![job_id, e.at, e.kind, e.stage, e.status, e.detail])?;
    }
    Ok(())
}

/// The job's events, oldest first.
pub fn job_events(conn: &Connection, job_id: &str) -> rusqlite::Result<Vec<JobEvent>> {
    conn.prepare_cached(
        "SELECT at, kind, stage, status, detail FROM job_events WHERE job_id = ?1 ORDER BY seq",
    )?
    .query_map([job_id], |r| {
        Ok(JobEvent {
            at: r.get(0)?,
            kind: r.get(1)?,
            stage: r.get(2)?,
            status: r.get(3)?,
            detail: r.get(4)?,
        })
    })?
    .collect()
}
