//! What the QA console reads beyond the plain listings: counts for the
//! overview strip and the tenants seen. Each query is served by an index
//! (`jobs_by_status`, `jobs_by_tenant`, `deliveries_due`,
//! `deliveries_dead`), so none reads the job rows themselves.

use rusqlite::{Connection, OptionalExtension};
use shared::JobStatus;

/// Rows by state, for the overview strip.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreCounts {
    /// Jobs by status, in `JobStatus::ALL` order.
    pub jobs: Vec<(JobStatus, i64)>,
    pub deliveries_total: i64,
    /// Waiting for a send with no failed attempt yet.
    pub deliveries_pending: i64,
    /// Waiting for a retry after a failed attempt.
    pub deliveries_failing: i64,
    pub deliveries_dead: i64,
}

pub fn counts(conn: &Connection) -> rusqlite::Result<StoreCounts> {
    let mut jobs: Vec<(JobStatus, i64)> = JobStatus::ALL.iter().map(|s| (*s, 0)).collect();
    let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, JobStatus>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        if let Some(slot) = jobs.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = n;
        }
    }
    let one = |sql: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(sql)?.query_row([], |r| r.get(0))
    };
    Ok(StoreCounts {
        jobs,
        deliveries_total: one("SELECT COUNT(*) FROM deliveries")?,
        deliveries_pending: one(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND failures = 0",
        )?,
        deliveries_failing: one(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND failures > 0",
        )?,
        deliveries_dead: one("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'")?,
    })
}

/// A tenant that has jobs: its id (a hash of its key) and its mask.
#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: String,
    pub mask: String,
    pub jobs: i64,
}

/// Every tenant with jobs, most jobs first. Walks `jobs_by_tenant` only,
/// then reads one row per tenant for its mask.
pub fn tenants(conn: &Connection) -> rusqlite::Result<Vec<TenantRow>> {
    let groups: Vec<(String, i64)> = conn
        .prepare_cached("SELECT tenant, COUNT(*) FROM jobs GROUP BY tenant")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut mask = conn.prepare_cached("SELECT tenant_mask FROM jobs WHERE tenant = ?1 LIMIT 1")?;
    let mut out = Vec::with_capacity(groups.len());
    for (id, jobs) in groups {
        let m: Option<String> = mask.query_row([&id], |r| r.get(0)).optional()?;
        out.push(TenantRow {
            mask: m.unwrap_or_default(),
            id,
            jobs,
        });
    }
    out.sort_by(|a, b| b.jobs.cmp(&a.jobs).then_with(|| a.mask.cmp(&b.mask)));
    Ok(out)
}

/// The ids of the tenants a console filter names: by key (hashed to its
/// id) or by the mask the console shows.
pub fn tenant_ids_matching(
    conn: &Connection,
    key_or_mask: &str,
    key_id: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut ids: Vec<String> = tenants(conn)?
        .into_iter()
        .filter(|t| t.mask == key_or_mask || t.id == key_id)
        .map(|t| t.id)
        .collect();
    if ids.is_empty() {
        // No such tenant: a filter that matches nothing, not everything.
        ids.push(key_id.to_owned());
    }
    Ok(ids)
}
