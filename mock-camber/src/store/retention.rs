//! Retention: finished jobs whose end is older than the window go, with
//! their deliveries, attempts, audits and idempotency records, a small batch per
//! write so that submits never wait behind a long sweep. Running or held
//! jobs, and jobs with a webhook still pending, are never touched.

use rusqlite::{params, Connection};

/// Rows one sweep batch removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub jobs: usize,
    pub deliveries: usize,
    pub attempts: usize,
    pub idempotency: usize,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One batch: at most `limit` jobs finished before `cutoff` (RFC 3339, the
/// format of `finished_at`, which sorts as text) and at most `limit`
/// idempotency records created before `cutoff_unix` whose job is gone (it
/// was swept, now or before): a running or held job, or one whose webhook
/// is pending, keeps its key however old it is.
pub fn sweep_batch(
    conn: &Connection,
    cutoff: &str,
    cutoff_unix: i64,
    limit: usize,
) -> rusqlite::Result<Swept> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS sweep (id TEXT PRIMARY KEY);
         DELETE FROM temp.sweep;",
    )?;
    let jobs = conn
        .prepare_cached(
            "INSERT INTO temp.sweep (id)
             SELECT j.id FROM jobs j
             WHERE j.finished_at IS NOT NULL AND j.finished_at < ?1
               AND j.status NOT IN ('pending', 'running')
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.job_id = j.id AND d.state = 'pending')
             ORDER BY j.finished_at LIMIT ?2",
        )?
        .execute(params![cutoff, limit as i64])?;
    let mut swept = Swept {
        jobs,
        ..Swept::default()
    };
    if jobs > 0 {
        swept.attempts = conn
            .prepare_cached(
                "DELETE FROM attempts WHERE delivery_id IN
                   (SELECT d.id FROM deliveries d JOIN temp.sweep s ON d.job_id = s.id)",
            )?
            .execute([])?;
        swept.deliveries = conn
            .prepare_cached("DELETE FROM deliveries WHERE job_id IN (SELECT id FROM temp.sweep)")?
            .execute([])?;
        conn.prepare_cached("DELETE FROM audits WHERE job_id IN (SELECT id FROM temp.sweep)")?
            .execute([])?;
        conn.prepare_cached(
            "DELETE FROM scenario_audits WHERE job_id IN (SELECT id FROM temp.sweep)",
        )?
        .execute([])?;
        conn.prepare_cached("DELETE FROM jobs WHERE id IN (SELECT id FROM temp.sweep)")?
            .execute([])?;
    }
    swept.idempotency = conn
        .prepare_cached(
            "DELETE FROM idempotency WHERE rowid IN
               (SELECT i.rowid FROM idempotency i
                WHERE i.created_unix < ?1
                  AND (i.job_id IS NULL
                       OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = i.job_id))
                LIMIT ?2)",
        )?
        .execute(params![cutoff_unix, limit as i64])?;
    Ok(swept)
}
