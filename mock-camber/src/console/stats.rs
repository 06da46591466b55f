//! The console's overview strip: its counts (each query served by an
//! index: `jobs_by_status`, `deliveries_due`, `deliveries_dead`, so none
//! reads the job rows themselves), the overview built from them, and
//! `StatsCache`, the last overview shared by the console tabs one change
//! woke. A leaf: `AppState` holds the cache.

use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;
use serde_json::{json, Value};
use shared::JobStatus;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::store::TenantRow;

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

/// The overview strip: jobs by status and deliveries by state (from the
/// store), the webhook queue and active jobs (gauges), rates over the last
/// minute (the daemon's counters), the tenants seen (masked).
pub fn overview(counts: &StoreCounts, tenants: &[TenantRow], m: &Metrics) -> Value {
    let mut jobs = serde_json::Map::new();
    let mut total = 0;
    for (status, n) in &counts.jobs {
        jobs.insert(status.as_str().to_owned(), json!(n));
        total += n;
    }
    jobs.insert("total".into(), json!(total));
    use std::sync::atomic::Ordering::Relaxed;
    json!({
        "jobs": jobs,
        "deliveries": {
            "total": counts.deliveries_total,
            "pending": counts.deliveries_pending,
            "failing": counts.deliveries_failing,
            "dead": counts.deliveries_dead,
            "delivered": counts.deliveries_total
                - counts.deliveries_pending
                - counts.deliveries_failing
                - counts.deliveries_dead,
        },
        "webhook_queue_depth": m.queue_depth.load(Relaxed),
        "active_jobs": m.active_jobs.load(Relaxed),
        "rates": m.rates(),
        "tenants": tenants.iter().map(|t| json!({"tenant": t.mask, "jobs": t.jobs})).collect::<Vec<_>>(),
    })
}

/// An overview, the change counter it was read at, and when.
pub struct CachedStats {
    version: u64,
    at: Instant,
    value: Value,
}

/// How long an overview read at an unchanged counter stays good: only its
/// rates age.
const STATS_FRESH: Duration = Duration::from_secs(1);

/// The console's last overview, with the change counter it was read at:
/// open console tabs woken by one change share one read.
#[derive(Default)]
pub struct StatsCache(Mutex<Option<CachedStats>>);

impl StatsCache {
    /// The overview read at change `version`, if it is under a second old.
    pub fn get(&self, version: u64) -> Option<Value> {
        let cached = self.0.lock();
        let c = cached.as_ref()?;
        (c.version == version && c.at.elapsed() < STATS_FRESH).then(|| c.value.clone())
    }

    /// Keeps `value`, read at change `version`, as the last overview.
    pub fn put(&self, version: u64, value: Value) {
        *self.0.lock() = Some(CachedStats {
            version,
            at: Instant::now(),
            value,
        });
    }
}
