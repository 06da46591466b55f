//! `audits`: receiver audit reports (`audit/`), a row each; its cases are
//! one JSON column written when the audit is done.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub job_id: String,
    /// `running` or `done`.
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The cases as the report shows them (a JSON list).
    pub cases: Value,
}

const AUDIT_COLUMNS: &str = "seq, id, job_id, state, started_at, finished_at, cases";

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    let cases: String = r.get(6)?;
    Ok(AuditRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        job_id: r.get(2)?,
        state: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        cases: serde_json::from_str(&cases).unwrap_or(Value::Array(vec![])),
    })
}

/// A new audit, `running`, with no cases yet.
pub fn insert_audit(conn: &Connection, id: &str, job_id: &str, at: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audits (id, job_id, state, started_at) VALUES (?1, ?2, 'running', ?3)",
    )?
    .execute(params![id, job_id, at])?;
    Ok(())
}

/// The audit is done: its cases and end.
pub fn finish_audit(conn: &Connection, id: &str, at: &str, cases: &Value) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE audits SET state = 'done', finished_at = ?2, cases = ?3 WHERE id = ?1",
    )?
    .execute(params![id, at, cases.to_string()])?;
    super::note(super::Note::Audit { id: id.to_owned() });
    Ok(())
}

pub fn get_audit(conn: &Connection, id: &str) -> rusqlite::Result<Option<AuditRow>> {
    conn.prepare_cached(&format!("SELECT {AUDIT_COLUMNS} FROM audits WHERE id = ?1"))?
        .query_row([id], audit_from_row)
        .optional()
}

/// Newest first, before `before_seq` (a cursor); `limit + 1` rows so the
/// caller can tell whether there is a next page.
pub fn list_audits(
    conn: &Connection,
    job_id: Option<&str>,
    before_seq: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audits \
         WHERE (?1 IS NULL OR job_id = ?1) AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![job_id, before_seq.unwrap_or(i64::MAX), (limit + 1) as i64],
        audit_from_row,
    )?;
    rows.collect()
}

/// A scenario's audit waiting for its job's genuine delivery
/// (`scenario_audits`): the job and how to read the caller's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioAuditRow {
    pub job_id: String,
    pub state_url: Option<String>,
    pub state_pointer: Option<String>,
}

/// Records that job `row.job_id`'s scenario asks for an audit after its
/// delivery (written with the job, so a restart still starts it).
pub fn insert_scenario_audit(conn: &Connection, row: &ScenarioAuditRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO scenario_audits (job_id, state_url, state_pointer) \
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![row.job_id, row.state_url, row.state_pointer])?;
    Ok(())
}

/// The scenario audit of `job_id` started or was given up.
pub fn delete_scenario_audit(conn: &Connection, job_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM scenario_audits WHERE job_id = ?1")?
        .execute([job_id])?;
    Ok(())
}

/// The scenario audits still waiting (at start-up), at most `limit`.
pub fn waiting_scenario_audits(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<ScenarioAuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT job_id, state_url, state_pointer FROM scenario_audits ORDER BY rowid LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(ScenarioAuditRow {
            job_id: r.get(0)?,
            state_url: r.get(1)?,
            state_pointer: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// The cases of an audit a stop cut short (the shape of
/// `audit::report::CaseReport`).
const INTERRUPTED: &str = r#"[{"name":"interrupted","expected":"the battery runs to its end","observed":[],"verdict":"fail","reason":"the mock stopped while this audit ran; start it again"}]"#;

/// Audits a stop interrupted (still `running` when the store opens):
/// done, with one failed case saying so, so that no one reads them as
/// clean.
pub fn interrupt_running_audits(conn: &Connection) -> rusqlite::Result<usize> {
    let at = shared::wire::rfc3339(chrono::Utc::now());
    conn.execute(
        "UPDATE audits SET state = 'done', finished_at = ?1, cases = ?2 WHERE state = 'running'",
        params![at, INTERRUPTED],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn an_audit_running_when_the_mock_stopped_reads_as_done_with_a_failed_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let path = path.to_str().unwrap();
        {
            let store = Store::open(path).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(store.write(|c| {
                insert_audit(c, "aud_1", "cmb_1", "2026-01-01T00:00:00Z")?;
                finish_audit(c, "aud_1", "2026-01-01T00:00:01Z", &serde_json::json!([]))?;
                insert_audit(c, "aud_2", "cmb_1", "2026-01-01T00:00:02Z")
            }))
            .unwrap();
        }
        let store = Store::open(path).unwrap();
        let (done, cut) = store
            .read_now(|c| {
                Ok((
                    get_audit(c, "aud_1")?.unwrap(),
                    get_audit(c, "aud_2")?.unwrap(),
                ))
            })
            .unwrap();
        assert_eq!(done.cases, serde_json::json!([]));
        assert_eq!(done.finished_at.as_deref(), Some("2026-01-01T00:00:01Z"));
        assert_eq!(cut.state, "done");
        assert_eq!(cut.cases[0]["verdict"], "fail");
        assert_eq!(cut.cases[0]["name"], "interrupted");
        let listed = store
            .read_now(|c| list_audits(c, Some("cmb_1"), None, 10))
            .unwrap();
        let ids: Vec<_> = listed.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["aud_2", "aud_1"]);
    }

    #[test]
    fn reports_go_with_their_job_at_retention_and_at_reset() {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&conn).unwrap();
        for (id, finished) in [
            ("cmb_old", "2020-01-01T00:00:00Z"),
            ("cmb_new", "2030-01-01T00:00:00Z"),
        ] {
            conn.execute(
                "INSERT INTO jobs (id, tenant, tenant_mask, app, status, metadata, input, plan, \
                 webhook_headers, created_at, updated_at, finished_at) VALUES (?1, 't', 't', 'a', \
                 'completed', '{}', '{}', '{}', '{}', ?2, ?2, ?2)",
                params![id, finished],
            )
            .unwrap();
            insert_audit(&conn, &format!("aud_{id}"), id, finished).unwrap();
            let waiting = ScenarioAuditRow {
                job_id: id.into(),
                state_url: None,
                state_pointer: Some("/status".into()),
            };
            insert_scenario_audit(&conn, &waiting).unwrap();
        }
        let swept = crate::store::sweep_batch(&conn, "2025-01-01T00:00:00Z", 0, 10).unwrap();
        assert_eq!(swept.jobs, 1);
        assert!(get_audit(&conn, "aud_cmb_old").unwrap().is_none());
        assert!(get_audit(&conn, "aud_cmb_new").unwrap().is_some());
        let waiting = waiting_scenario_audits(&conn, 10).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].job_id, "cmb_new");
        assert_eq!(waiting[0].state_pointer.as_deref(), Some("/status"));
        crate::store::reset(&conn, 0).unwrap();
        assert!(list_audits(&conn, None, None, 10).unwrap().is_empty());
        assert!(waiting_scenario_audits(&conn, 10).unwrap().is_empty());
    }
}
