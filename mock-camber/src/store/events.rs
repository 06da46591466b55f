//! A job's events: each status change, stage change and control action
//! (hold, advance, cancel, complete, fail) with its time. They are written
//! in the same write as the change itself, in the job's own row (its
//! `events` column: `insert_job` writes the first, `update_job` appends),
//! and the console's timeline is read from them.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Connection;
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

/// The text of `events` as a job's `events` column holds them (written
/// with the change that made them: `insert_job`, `update_job` appends):
/// a line per event, its fields separated by `\u{1f}` (`at`, kind, stage,
/// status, detail; an absent one empty, an absent detail `\0`), `\n`,
/// `\u{1f}` and `\\` in a detail escaped. Rendered by the caller, not on
/// the writer thread.
pub fn encode_events(events: &[JobEvent]) -> String {
    let mut text = String::with_capacity(events.len() * 48);
    for e in events {
        encode(&mut text, e);
    }
    text
}

fn encode(out: &mut String, e: &JobEvent) {
    const SEP: char = '\u{1f}';
    out.push_str(&e.at);
    out.push(SEP);
    out.push_str(e.kind.as_str());
    out.push(SEP);
    out.push_str(e.stage.map(Stage::as_str).unwrap_or(""));
    out.push(SEP);
    out.push_str(e.status.map(JobStatus::as_str).unwrap_or(""));
    out.push(SEP);
    if let Some(d) = &e.detail {
        for c in d.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                SEP => out.push_str("\\u"),
                c => out.push(c),
            }
        }
    } else {
        out.push('\u{0}');
    }
    out.push('\n');
}

fn decode(line: &str) -> Result<JobEvent, String> {
    let bad = || format!("a malformed job event `{line}`");
    let mut f = line.split('\u{1f}');
    let (at, kind, stage, status, detail) = (f.next(), f.next(), f.next(), f.next(), f.next());
    let (Some(at), Some(kind), Some(stage), Some(status), Some(detail)) =
        (at, kind, stage, status, detail)
    else {
        return Err(bad());
    };
    let kind = (EventKind::ALL.into_iter().find(|k| k.as_str() == kind)).ok_or_else(bad)?;
    let stage = match stage {
        "" => None,
        s => Some(Stage::parse(s).ok_or_else(bad)?),
    };
    let status = match status {
        "" => None,
        s => Some(JobStatus::parse(s).ok_or_else(bad)?),
    };
    let detail = (detail != "\u{0}").then(|| {
        let mut out = String::with_capacity(detail.len());
        let mut chars = detail.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('u') => out.push('\u{1f}'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        out
    });
    Ok(JobEvent {
        at: at.to_owned(),
        kind,
        stage,
        status,
        detail,
    })
}

/// The job's events, oldest first.
pub fn job_events(conn: &Connection, job_id: &str) -> rusqlite::Result<Vec<JobEvent>> {
    let rows = conn
        .prepare_cached("SELECT events FROM jobs WHERE id = ?1")?
        .query_map([job_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut out = Vec::new();
    for text in &rows {
        for line in text.lines() {
            out.push(decode(line).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    #[test]
    fn events_round_trip_through_their_row_whatever_their_detail_holds() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, events TEXT NOT NULL DEFAULT '')",
        )
        .unwrap();
        // As insert_job writes a job's first events and update_job appends.
        let insert = |id: &str, events: &[JobEvent]| {
            conn.execute(
                "INSERT INTO jobs (id, events) VALUES (?1, ?2)",
                params![id, encode_events(events)],
            )
            .unwrap();
        };
        let append = |id: &str, events: &[JobEvent]| {
            conn.execute(
                "UPDATE jobs SET events = events || ?2 WHERE id = ?1",
                params![id, encode_events(events)],
            )
            .unwrap();
        };
        let ev = |kind, stage, status, detail: Option<&str>| JobEvent {
            at: "2026-12-06T04:00:00.123456Z".into(),
            kind,
            stage,
            status,
            detail: detail.map(str::to_owned),
        };
        let first = vec![
            ev(EventKind::Status, None, Some(JobStatus::Running), None),
            ev(EventKind::StageStarted, Some(Stage::Fetch), None, None),
        ];
        let second = vec![
            ev(
                EventKind::StageFailed,
                Some(Stage::Ocr),
                None,
                Some("OCR_FAILURE: a\nb \\ c \u{1f} d"),
            ),
            ev(EventKind::Cancel, None, None, Some("")),
        ];
        insert("j1", &first);
        insert("j2", &first[..1]);
        insert("j3", &[]);
        append("j1", &second);
        append("j1", &[]);
        let all: Vec<JobEvent> = first.into_iter().chain(second).collect();
        assert_eq!(job_events(&conn, "j1").unwrap(), all);
        assert_eq!(job_events(&conn, "j2").unwrap().len(), 1);
        assert_eq!(job_events(&conn, "j3").unwrap(), vec![]);
        assert_eq!(job_events(&conn, "nobody").unwrap(), vec![]);
    }
}
