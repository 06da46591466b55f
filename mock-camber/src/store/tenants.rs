//! The tenants that have jobs: for the console's overview strip and the
//! admin job list's tenant filter. Served by the `jobs_by_tenant` index, so
//! no query reads the job rows themselves.

use rusqlite::{Connection, OptionalExtension};

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
