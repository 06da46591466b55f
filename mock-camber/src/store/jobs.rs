//! Jobs as stored: the row, its reads and its SQL mapping (its writes are
//! in `job_writes.rs`).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;
use shared::{JobStatus, WebhookError};

use super::Headers;
use crate::jobs::stage::Stage;
use crate::scenario::Plan;

impl ToSql for Stage {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Stage {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Stage::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown stage `{s}`").into()))
    }
}

/// A JSON column, parsed: the one place stored JSON text is read back.
/// Null, or text that does not parse, reads as absent.
fn json_opt<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = r.get(i)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// JSON text of a value to store.
pub(super) fn json_text<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A job as stored, its JSON columns parsed.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub seq: i64,
    pub id: String,
    pub tenant: String,
    pub tenant_mask: String,
    pub app: String,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub metadata: Value,
    pub input: Value,
    /// `None` when the stored plan does not read as one (rows a first
    /// release wrote by hand-made tools, say): such a job is not resumed.
    pub plan: Option<Plan>,
    pub webhook_url: Option<String>,
    pub webhook_headers: Headers,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<Value>,
    pub error: Option<WebhookError>,
    pub log: String,
    /// From the job's delivery, when there is one.
    pub delivery_state: Option<shared::DeliveryState>,
    pub delivery_attempts: i64,
    /// Its failed attempts: `pending` with some reads `failing`.
    pub delivery_failures: i64,
}

const JOB_COLUMNS: &str = "j.seq, j.id, j.tenant, j.tenant_mask, j.app, j.status, j.stage, \
     j.metadata, j.input, j.plan, j.webhook_url, j.webhook_headers, j.created_at, j.updated_at, \
     j.started_at, j.finished_at, j.result, j.error, j.log, d.state, COALESCE(d.attempts, 0), \
     COALESCE(d.failures, 0)";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        tenant: r.get(2)?,
        tenant_mask: r.get(3)?,
        app: r.get(4)?,
        status: r.get(5)?,
        stage: r.get(6)?,
        metadata: json_opt(r, 7)?.unwrap_or(Value::Null),
        input: json_opt(r, 8)?.unwrap_or(Value::Null),
        plan: json_opt(r, 9)?,
        webhook_url: r.get(10)?,
        webhook_headers: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        started_at: r.get(14)?,
        finished_at: r.get(15)?,
        result: json_opt(r, 16)?,
        error: json_opt(r, 17)?,
        log: r.get(18)?,
        delivery_state: r.get(19)?,
        delivery_attempts: r.get(20)?,
        delivery_failures: r.get(21)?,
    })
}

pub fn get_job(conn: &Connection, id: &str) -> rusqlite::Result<Option<JobRow>> {
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN deliveries d ON d.job_id = j.id WHERE j.id = ?1"
    ))?
    .query_row([id], job_from_row)
    .optional()
}

/// Filters of a job listing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Tenant ids; `None` is every tenant.
    pub tenants: Option<Vec<String>>,
    pub status: Option<JobStatus>,
    pub app: Option<String>,
    /// An id prefix (`cmb_…`), else text found in the id or the metadata.
    pub search: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: usize,
}

/// Newest first; one extra row tells whether a next page exists. The SQL
/// names only the filters given, so SQLite can pick the index that serves
/// them (`jobs_by_tenant`, `jobs_by_status`, the id) and stop after a page.
pub fn list_jobs(conn: &Connection, f: &JobFilter) -> rusqlite::Result<Vec<JobRow>> {
    let (sql, args) = list_jobs_sql(f);
    conn.prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), job_from_row)?
        .collect()
}

/// The statement and arguments of [`list_jobs`].
fn list_jobs_sql(f: &JobFilter) -> (String, Vec<Box<dyn ToSql>>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    let arg = |v: Box<dyn ToSql>, args: &mut Vec<Box<dyn ToSql>>| {
        args.push(v);
        format!("?{}", args.len())
    };
    match f.tenants.as_deref() {
        None => {}
        Some([one]) => conds.push(format!(
            "j.tenant = {}",
            arg(Box::new(one.clone()), &mut args)
        )),
        Some(many) => {
            let list: Vec<String> = (many.iter())
                .map(|t| arg(Box::new(t.clone()), &mut args))
                .collect();
            conds.push(format!("j.tenant IN ({})", list.join(", ")));
        }
    }
    if let Some(s) = f.status {
        conds.push(format!("j.status = {}", arg(Box::new(s), &mut args)));
    }
    if let Some(a) = &f.app {
        conds.push(format!("j.app = {}", arg(Box::new(a.clone()), &mut args)));
    }
    if let Some(q) = &f.search {
        if q.starts_with("cmb_") && q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            // Ids are ASCII: a prefix is a range of the unique index. As a
            // subquery, or SQLite would rather walk every job newest first.
            let lo = arg(Box::new(q.clone()), &mut args);
            let hi = arg(Box::new(format!("{q}~")), &mut args);
            conds.push(format!(
                "j.seq IN (SELECT seq FROM jobs WHERE id >= {lo} AND id < {hi})"
            ));
        } else {
            let p = arg(Box::new(q.clone()), &mut args);
            conds.push(format!(
                "(instr(j.id, {p}) > 0 OR instr(j.metadata, {p}) > 0)"
            ));
        }
    }
    if let Some(b) = f.before_seq {
        conds.push(format!("j.seq < {}", arg(Box::new(b), &mut args)));
    }
    let limit = arg(Box::new((f.limit + 1) as i64), &mut args);
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN deliveries d ON d.job_id = j.id \
         {filter} ORDER BY j.seq DESC LIMIT {limit}"
    );
    (sql, args)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// How SQLite runs [`list_jobs`] for this filter.
    fn plan(conn: &Connection, f: &JobFilter) -> String {
        let (sql, args) = list_jobs_sql(f);
        super::super::query_plan(conn, &sql, &args)
    }

    /// A list (or a wait's check) filtered by app reads the `jobs_by_app`
    /// index rather than walking every job newest first: an app with no
    /// job costs the same on a store of any size (a thousand parked
    /// `/_mock/jobs?app=nobody` waits on 165,000 jobs took both cores).
    #[test]
    fn an_app_filter_reads_the_app_index() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&conn).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO jobs (seq, id, tenant, tenant_mask, app, status, metadata, input,
                               plan, webhook_headers, created_at, updated_at)
             SELECT i, 'cmb_' || i, 't' || (i % 7), 't', 'bench', 'completed', '{}', '{}', '{}',
                    '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM n;
             ",
        )
        .unwrap();
        let by_app = JobFilter {
            tenants: None,
            status: None,
            app: Some("nobody".into()),
            search: None,
            before_seq: None,
            limit: 50,
        };
        let p = plan(&conn, &by_app);
        assert!(p.contains("jobs_by_app"), "{p}");
        let p = plan(
            &conn,
            &JobFilter {
                tenants: Some(vec!["t1".into()]),
                ..by_app
            },
        );
        assert!(p.contains("jobs_by_app"), "{p}");
    }
}
