//! Webhook deliveries and their attempts: rows and SQL.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};
use shared::{DeliveryState, WebhookEvent, WebhookState};

use super::Headers;
use crate::scenario::WebhookFaults;

/// The `fault` column: the faults the sender applies, as a JSON list
/// (`[]` for none; `["bad_signature"]`, `[{"content_type": "text/plain"}]`).
impl ToSql for WebhookFaults {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let text = serde_json::to_string(self)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::from(text))
    }
}

impl FromSql for WebhookFaults {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(v.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// What an attempt is: one of the retry schedule's, or one more asked for
/// by hand (`/_mock/deliveries/{id}/redeliver`, the console's
/// redeliver-dead) after the delivery ended, outside the schedule: if it
/// fails, the delivery is dead again at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AttemptKind {
    #[default]
    Scheduled,
    Manual,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Scheduled, Self::Manual]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl ToSql for AttemptKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for AttemptKind {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Self::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown attempt kind `{s}`").into()))
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub seq: i64,
    pub id: String,
    pub job_id: String,
    pub event: WebhookEvent,
    pub url: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub state: DeliveryState,
    pub attempts: i64,
    pub sends_remaining: i64,
    /// Failed attempts so far: the position in the retry schedule.
    pub failures: i64,
    /// What the sender does to each attempt on purpose.
    pub faults: WebhookFaults,
    /// What its next attempt is: scheduled, or one more by hand.
    pub kind: AttemptKind,
    pub next_attempt_ms: i64,
    pub created_at: String,
    /// The tenant id of the job: a tenant with its own webhook secret
    /// (`--api-key KEY=SECRET`) has its webhooks signed with it.
    pub tenant: String,
}

const DELIVERY_COLUMNS: &str = "seq, id, job_id, event, url, headers, body, state, attempts, \
     sends_remaining, fault, next_attempt_ms, created_at, failures, tenant, attempt_kind";

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        job_id: r.get(2)?,
        event: r.get(3)?,
        url: r.get(4)?,
        headers: r.get(5)?,
        body: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        sends_remaining: r.get(9)?,
        faults: r.get(10)?,
        next_attempt_ms: r.get(11)?,
        created_at: r.get(12)?,
        failures: r.get(13)?,
        tenant: r.get(14)?,
        kind: r.get(15)?,
    })
}

pub fn insert_delivery(conn: &Connection, d: &DeliveryRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO deliveries (id, job_id, event, url, headers, body, state, attempts, \
         sends_remaining, fault, next_attempt_ms, created_at, failures, tenant, attempt_kind) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        d.id,
        d.job_id,
        d.event,
        d.url,
        d.headers,
        d.body,
        d.state,
        d.attempts,
        d.sends_remaining,
        d.faults,
        d.next_attempt_ms,
        d.created_at,
        d.failures,
        d.tenant,
        d.kind
    ])?;
    super::note(super::Note::Delivery {
        job_id: d.job_id.clone(),
        state: d.state,
        event: d.event,
    });
    Ok(())
}

/// One attempt of a delivery, as logged.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub n: i64,
    pub at: String,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Records an attempt and the delivery state it led to.
pub fn record_attempt(
    conn: &Connection,
    a: &AttemptRow,
    state: DeliveryState,
    sends_remaining: i64,
    failures: i64,
    next_attempt_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO attempts (delivery_id, n, at, status, latency_ms, error, response_excerpt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.delivery_id,
        a.n,
        a.at,
        a.status,
        a.latency_ms,
        a.error,
        a.response_excerpt
    ])?;
    let changed = conn.prepare_cached(
        // Monotone: a record written again after a failed write (see the
        // engine) never undoes a later attempt's state.
        "UPDATE deliveries SET state = ?2, attempts = ?3, sends_remaining = ?4, next_attempt_ms = ?5, \
         failures = ?6 WHERE id = ?1 AND attempts <= ?3 RETURNING job_id, event",
    )?
    .query_row(
        params![
            a.delivery_id,
            state,
            a.n,
            sends_remaining,
            next_attempt_ms,
            failures
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    note_delivery(changed, state);
    Ok(())
}

/// Puts a delivery back in the queue (redeliver) for one more send of
/// `kind` (a manual one is outside its retry schedule).
pub fn requeue_delivery(
    conn: &Connection,
    id: &str,
    now_ms: i64,
    kind: AttemptKind,
) -> rusqlite::Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', sends_remaining = 1, next_attempt_ms = ?2, \
         attempt_kind = ?3 WHERE id = ?1 RETURNING job_id, event",
        )?
        .query_row(params![id, now_ms, kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    note_delivery(changed, DeliveryState::Pending);
    Ok(())
}

fn note_delivery(changed: Option<(String, WebhookEvent)>, state: DeliveryState) {
    if let Some((job_id, event)) = changed {
        super::note(super::Note::Delivery {
            job_id,
            state,
            event,
        });
    }
}

pub fn get_delivery(conn: &Connection, id: &str) -> rusqlite::Result<Option<DeliveryRow>> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
    ))?
    .query_row([id], delivery_from_row)
    .optional()
}

/// A job's newest delivery (`deliveries_by_job`).
pub fn latest_delivery(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<DeliveryRow>> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE job_id = ?1 ORDER BY seq DESC LIMIT 1"
    ))?
    .query_row([job_id], delivery_from_row)
    .optional()
}

/// The outbox order: next attempt first, then creation.
pub type DueKey = (i64, i64);

/// A delivery's place in the outbox order.
pub fn due_key(d: &DeliveryRow) -> DueKey {
    (d.next_attempt_ms, d.seq)
}

/// Up to `limit` pending deliveries from `from` (inclusive) on, in outbox
/// order: how the engine pages the outbox into memory.
pub fn pending_page(
    conn: &Connection,
    from: Option<DueKey>,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let (due, seq) = from.unwrap_or((i64::MIN, i64::MIN));
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' \
         AND (next_attempt_ms, seq) >= (?1, ?2) ORDER BY next_attempt_ms, seq LIMIT ?3"
    ))?
    .query_map(params![due, seq, limit as i64], delivery_from_row)?
    .collect()
}

pub fn count_pending(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub job_id: Option<String>,
    /// One of [`WebhookState::OF_DELIVERY`].
    pub state: Option<WebhookState>,
    pub event: Option<WebhookEvent>,
    pub before_seq: Option<i64>,
    pub limit: usize,
}

/// The statement and arguments that list the deliveries `f` selects. Like
/// `list_jobs`, the SQL names only the filters given, so
/// `deliveries_by_job`, `deliveries_by_event`, `deliveries_dead` or
/// `deliveries_due` can serve them.
fn list_deliveries_sql(f: &DeliveryFilter) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(j) = &f.job_id {
        args.push(Box::new(j.clone()));
        conds.push(format!("job_id = ?{}", args.len()));
    }
    if let Some(s) = f.state {
        // Literals, so SQLite can match the partial indexes' conditions.
        conds.push(
            match s {
                WebhookState::Pending => "state = 'pending' AND failures = 0",
                WebhookState::Failing => "state = 'pending' AND failures > 0",
                WebhookState::Delivered => "state = 'delivered'",
                WebhookState::Dead => "state = 'dead'",
                // Not a delivery's state: matches none.
                WebhookState::Scheduled | WebhookState::Dropped => "0",
            }
            .into(),
        );
    }
    if let Some(e) = f.event {
        args.push(Box::new(e));
        conds.push(format!("event = ?{}", args.len()));
    }
    if let Some(b) = f.before_seq {
        args.push(Box::new(b));
        conds.push(format!("seq < ?{}", args.len()));
    }
    args.push(Box::new((f.limit + 1) as i64));
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries {filter} ORDER BY seq DESC LIMIT ?{}",
        args.len()
    );
    (sql, args)
}

/// Newest first, each with its attempts; one extra row tells whether a
/// next page exists.
pub fn list_deliveries(
    conn: &Connection,
    f: &DeliveryFilter,
) -> rusqlite::Result<Vec<(DeliveryRow, Vec<AttemptRow>)>> {
    let (sql, args) = list_deliveries_sql(f);
    let rows: Vec<DeliveryRow> = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), delivery_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT delivery_id, n, at, status, latency_ms, error, response_excerpt \
         FROM attempts WHERE delivery_id = ?1 ORDER BY n",
    )?;
    rows.into_iter()
        .map(|d| {
            let attempts = stmt
                .query_map([&d.id], |r| {
                    Ok(AttemptRow {
                        delivery_id: r.get(0)?,
                        n: r.get(1)?,
                        at: r.get(2)?,
                        status: r.get(3)?,
                        latency_ms: r.get(4)?,
                        error: r.get(5)?,
                        response_excerpt: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((d, attempts))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list (or a wait) filtered by event reads `deliveries_by_event`
    /// rather than walking every delivery newest first: `event=job.failed`
    /// when none failed costs the same on a store of any size.
    #[test]
    fn an_event_filter_reads_the_event_index() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&conn).unwrap();
        let f = DeliveryFilter {
            job_id: None,
            state: None,
            event: Some(WebhookEvent::Failed),
            before_seq: None,
            limit: 50,
        };
        let (sql, args) = list_deliveries_sql(&f);
        let plan = super::super::query_plan(&conn, &sql, &args);
        assert!(plan.contains("deliveries_by_event"), "{plan}");
    }
}
