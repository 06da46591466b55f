//! The schema and its migrations: an ordered list, each step tested from
//! the version before it.

use rusqlite::Connection;

/// The schema's history: each step runs once, in order, in its own
/// transaction, and `PRAGMA user_version` counts the steps applied. A
/// database from the first release (version 0, its tables already there)
/// runs the first step as a no-op (`IF NOT EXISTS`) and the rest in turn.
/// Never edit a step that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the first release's schema.
    r#"
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    tenant_mask TEXT NOT NULL,
    app TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT,
    metadata TEXT NOT NULL,
    input TEXT NOT NULL,
    plan TEXT NOT NULL,
    webhook_url TEXT,
    webhook_headers TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    result TEXT,
    error TEXT,
    log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, seq);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_unix INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sends_remaining INTEGER NOT NULL,
    bad_signature INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_job ON deliveries (job_id);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    at TEXT NOT NULL,
    status INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, n)
);
"#,
    // 2: the position in the retry schedule. Attempts logged before were
    // all failures of undelivered events.
    r#"
ALTER TABLE deliveries ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET failures = attempts WHERE state = 'pending';
"#,
    // 3: whose webhook secret signs a delivery ('' = the global secrets).
    "ALTER TABLE deliveries ADD COLUMN tenant TEXT NOT NULL DEFAULT '';",
    // 4: indexes: by status (the console's filter and counts, the jobs a
    // restart resumes; it replaced `jobs_active`), finished jobs and old
    // idempotency records (retention), the outbox order (it replaced
    // `deliveries_pending`), dead deliveries (the console's count).
    r#"
DROP INDEX IF EXISTS jobs_active;
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_unix);
DROP INDEX IF EXISTS deliveries_pending;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_ms, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (seq) WHERE state = 'dead';
"#,
    // 5: an idempotency record goes with its job, never while the job is
    // kept; filled from the stored response for older records.
    r#"
ALTER TABLE idempotency ADD COLUMN job_id TEXT;
UPDATE idempotency SET job_id = json_extract(response, '$.id') WHERE json_valid(response);
"#,
    // 6: by app and by event, newest last: `?app=` and `?event=` (and
    // waits on them) would otherwise walk every row when none matches.
    r#"
CREATE INDEX IF NOT EXISTS jobs_by_app ON jobs (app, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event, seq);
"#,
    // 7: one `fault` column (the sender's faults, a JSON list of
    // `WebhookFault`s) instead of a column per fault.
    r#"
ALTER TABLE deliveries ADD COLUMN fault TEXT NOT NULL DEFAULT '[]';
UPDATE deliveries SET fault = '["bad_signature"]' WHERE bad_signature;
ALTER TABLE deliveries DROP COLUMN bad_signature;
"#,
    // 8: a manual redeliver is an attempt of its own kind (one more send
    // outside the retry schedule), no longer a spent `failures` count.
    "ALTER TABLE deliveries ADD COLUMN attempt_kind TEXT NOT NULL DEFAULT 'scheduled';",
    // 9: each job's events (status and stage changes, control actions),
    // written with the change; the console's timeline reads them.
    r#"
CREATE TABLE IF NOT EXISTS job_events (
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    -- The events of one write, a line each (see store/events.rs): one row
    -- per write, not per event, keeps a job's nine or so events from
    -- costing the writer nine rows and nine index entries.
    events TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, seq);
"#,
    // 10: receiver audits (`POST /_mock/jobs/{id}/audit`): one row each,
    // its cases a JSON list written when it is done.
    r#"
CREATE TABLE IF NOT EXISTS audits (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    cases TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS audits_by_job ON audits (job_id);
"#,
    // 11: a scenario's `webhook.audit` waiting for its job's genuine
    // delivery, written with the job; gone once the audit starts (or is
    // given up), so a restart still starts it.
    r#"
CREATE TABLE IF NOT EXISTS scenario_audits (
    job_id TEXT PRIMARY KEY,
    state_url TEXT,
    state_pointer TEXT
);
"#,
    // 12: a job's events live in its own row (`jobs.events`, appended by
    // each write), not in a table of their own: the writer saves an insert
    // and an index entry per write (about 17,000 instructions a job, 8 %
    // of its work, measured with callgrind). v9's rows move over in order.
    r#"
ALTER TABLE jobs ADD COLUMN events TEXT NOT NULL DEFAULT '';
UPDATE jobs SET events = (SELECT group_concat(e.events, '' ORDER BY e.seq)
    FROM job_events e WHERE e.job_id = jobs.id)
    WHERE id IN (SELECT job_id FROM job_events);
DROP TABLE job_events;
"#,
];

/// Schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Creates the schema, or brings an older database up to date, one step
/// at a time. Plans written since v4 also say what chose them
/// (`Plan::origin`); older ones simply lack it.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Applies the steps after the database's version, up to `target`.
fn migrate_to(conn: &Connection, target: usize) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(version) {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = conn
            .execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", i + 1));
        match step {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        log::info!("applied database migration {}", i + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{WebhookFault, WebhookFaults};

    /// Each table's columns and each index, as SQLite reports them.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT m.type || ' ' || m.name || ' ' || COALESCE(group_concat(p.name || ':' || p.type || ':' || p.\"notnull\" || ':' || COALESCE(p.dflt_value, ''), ','), '') \
                 FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) p \
                 WHERE m.name NOT LIKE 'sqlite_%' GROUP BY m.type, m.name ORDER BY m.type, m.name",
            )
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn version(conn: &Connection) -> usize {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn each_step_applies_to_a_database_at_the_version_before_and_ends_in_the_same_schema() {
        let fresh = Connection::open_in_memory().unwrap();
        migrate(&fresh).unwrap();
        assert_eq!(version(&fresh), SCHEMA_VERSION);
        for from in 0..SCHEMA_VERSION {
            let conn = Connection::open_in_memory().unwrap();
            migrate_to(&conn, from).unwrap();
            assert_eq!(version(&conn), from);
            // One step, from the version before it.
            migrate_to(&conn, from + 1).unwrap();
            assert_eq!(version(&conn), from + 1, "step {}", from + 1);
            migrate(&conn).unwrap();
            assert_eq!(shape(&conn), shape(&fresh), "upgraded from v{from}");
        }
        // Opening an up-to-date database again changes nothing.
        migrate(&fresh).unwrap();
        assert_eq!(version(&fresh), SCHEMA_VERSION);
    }

    /// The schema as v4 wrote it (deliveries with a `bad_signature`
    /// column, idempotency records without `job_id`).
    const V4_SCHEMA: &str = "
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL,
    tenant_mask TEXT NOT NULL, app TEXT NOT NULL, status TEXT NOT NULL, stage TEXT,
    metadata TEXT NOT NULL, input TEXT NOT NULL, plan TEXT NOT NULL, webhook_url TEXT,
    webhook_headers TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, result TEXT, error TEXT, log TEXT NOT NULL DEFAULT '');
CREATE INDEX jobs_by_tenant ON jobs (tenant, seq);
CREATE INDEX jobs_by_status ON jobs (status, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE idempotency (tenant TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL,
    response TEXT NOT NULL, created_unix INTEGER NOT NULL, PRIMARY KEY (tenant, key));
CREATE INDEX idempotency_by_age ON idempotency (created_unix);
CREATE TABLE deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL,
    event TEXT NOT NULL, url TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, sends_remaining INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, bad_signature INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL, created_at TEXT NOT NULL, tenant TEXT NOT NULL DEFAULT '');
CREATE INDEX deliveries_by_job ON deliveries (job_id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms, seq) WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (seq) WHERE state = 'dead';
CREATE TABLE attempts (delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at TEXT NOT NULL,
    status INTEGER, latency_ms INTEGER NOT NULL, error TEXT, response_excerpt TEXT,
    PRIMARY KEY (delivery_id, n));
PRAGMA user_version = 4;
";

    #[test]
    fn a_v4_database_file_keeps_its_rows_and_its_bad_signature_becomes_the_fault() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(V4_SCHEMA).unwrap();
            let plan = r#"{"outcome":"success","stage_ms":0,"hold":false,"webhook_mode":"deliver","delay_ms":0,"sends":1,"bad_signature":true}"#;
            conn.execute(
                "INSERT INTO jobs (seq, id, tenant, tenant_mask, app, status, metadata, input, plan, \
                 webhook_url, webhook_headers, created_at, updated_at, finished_at, result, log) \
                 VALUES (1, 'cmb_v4', 't', 'k…', 'app', 'completed', '{\"job_id\":\"mine\"}', '{}', ?1, \
                 'http://127.0.0.1:9/', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', \
                 '2026-01-01T00:00:00Z', '{\"ok\":1}', 'FETCH started\n')",
                [plan],
            )
            .unwrap();
            for (id, bad, state) in [("dlv_bad", 1, "pending"), ("dlv_ok", 0, "delivered")] {
                conn.execute(
                    "INSERT INTO deliveries (id, job_id, event, url, headers, body, state, attempts, \
                     sends_remaining, failures, bad_signature, next_attempt_ms, created_at, tenant) \
                     VALUES (?1, 'cmb_v4', 'job.completed', 'http://127.0.0.1:9/', '{\"X-A\":\"b\"}', \
                     X'7B7D', ?3, 2, 1, 2, ?2, 5, '2026-01-01T00:00:00Z', 't')",
                    rusqlite::params![id, bad, state],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO idempotency (tenant, key, body_hash, response, created_unix) \
                 VALUES ('t', 'k1', 'h', '{\"id\":\"cmb_v4\"}', 1)",
                [],
            )
            .unwrap();
        }
        let store = crate::store::Store::open(path.to_str().unwrap()).unwrap();
        let (bad, ok, job, idem_job, ver) = store
            .read_now(|c| {
                Ok((
                    crate::store::get_delivery(c, "dlv_bad")?.unwrap(),
                    crate::store::get_delivery(c, "dlv_ok")?.unwrap(),
                    crate::store::get_job(c, "cmb_v4")?.unwrap(),
                    c.query_row("SELECT job_id FROM idempotency WHERE key = 'k1'", [], |r| {
                        r.get::<_, String>(0)
                    })?,
                    version(c),
                ))
            })
            .unwrap();
        assert_eq!(ver, SCHEMA_VERSION);
        // The fault was carried over; the rest of each row survived.
        assert_eq!(bad.faults, WebhookFaults(vec![WebhookFault::BadSignature]));
        assert_eq!(ok.faults, WebhookFaults::default());
        assert_eq!(
            (
                bad.attempts,
                bad.failures,
                bad.next_attempt_ms,
                bad.tenant.as_str()
            ),
            (2, 2, 5, "t")
        );
        assert_eq!(bad.headers.iter().next().unwrap().1, "b");
        assert_eq!(ok.state, shared::DeliveryState::Delivered);
        // The job, and its plan as v4 wrote it, read back typed.
        assert_eq!(job.metadata["job_id"], "mine");
        assert_eq!(job.result.as_ref().unwrap()["ok"], 1);
        let plan = job.plan.expect("a v4 plan reads");
        assert!(plan.webhook.has(&WebhookFault::BadSignature));
        assert_eq!(job.delivery_attempts, 2);
        assert_eq!(idem_job, "cmb_v4");
    }

    #[test]
    fn a_v11_database_keeps_its_jobs_events_in_order_in_their_rows() {
        let conn = Connection::open_in_memory().unwrap();
        migrate_to(&conn, 11).unwrap();
        conn.execute_batch(
            "INSERT INTO jobs (seq, id, tenant, tenant_mask, app, status, metadata, input, plan, \
             webhook_headers, created_at, updated_at) VALUES \
             (1, 'j1', 't', 'k', 'a', 'running', '{}', '{}', '{}', '{}', 'c', 'u'), \
             (2, 'j2', 't', 'k', 'a', 'pending', '{}', '{}', '{}', '{}', 'c', 'u'); \
             INSERT INTO job_events (seq, job_id, events) VALUES \
             (3, 'j1', 'second\n'), (1, 'j1', 'first\n'), (2, 'j9', 'gone\n');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let events = |id: &str| -> String {
            conn.query_row("SELECT events FROM jobs WHERE id = ?1", [id], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(events("j1"), "first\nsecond\n");
        assert_eq!(events("j2"), "");
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'job_events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }
}
