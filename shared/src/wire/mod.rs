//! Wire types of the Camber API and its webhook (mock-camber/openapi.yaml):
//! the status enums and job views here, the webhook body in `webhook.rs`.

mod webhook;

pub use webhook::{
    compact_json, webhook_timestamp, JobFailure, WebhookBody, WebhookError, WebhookResult,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Job status as Camber reports it (lowercase on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    #[default]
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and how a job's webhook is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookTarget {
    pub url: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub headers: serde_json::Map<String, Value>,
}

/// `POST /jobs` body, as existing Camber clients send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub app: String,
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTarget>,
}

/// `201 Created` answer to `POST /jobs`. `job_id` repeats `id`. A client
/// reads it leniently (real Camber may send less, or more): every field
/// but one of `id`/`job_id` may be missing, unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub status: JobStatus,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub created_at: String,
}

impl SubmitResponse {
    /// The Camber job id: `id`, else `job_id`; `None` when both are empty.
    pub fn camber_id(&self) -> Option<&str> {
        [self.id.as_str(), self.job_id.as_str()]
            .into_iter()
            .find(|s| !s.is_empty())
    }
}

/// Declares a fieldless enum that travels as one of fixed strings, with
/// `as_str`, `parse` and `ALL`; serde uses the same strings, so a renamed
/// value fails to compile or fails the round-trip test below.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// A webhook delivery's state in the outbox, as stored. Views and
    /// filters split `pending` by whether an attempt has failed: see
    /// [`WebhookState::of`].
    DeliveryState {
        /// Waiting for its first or next attempt.
        Pending = "pending",
        /// A receiver answered 2xx (every send, for `duplicate` mode).
        Delivered = "delivered",
        /// The retry schedule ran out without a 2xx.
        Dead = "dead",
    }
}

wire_enum! {
    /// A delivery's state as every view names it (`webhook.state` in a job
    /// view, `state` in the admin API's deliveries and its `?state=` filter,
    /// the console): the delivery's state once the job has ended, else what
    /// will happen.
    WebhookState {
        /// The job has not ended yet: nothing to send so far.
        Scheduled = "scheduled",
        /// Waiting for a send, and no attempt has failed.
        Pending = "pending",
        /// An attempt failed; the next one is scheduled (retrying).
        Failing = "failing",
        /// A receiver answered 2xx (every send, for `duplicate` mode).
        Delivered = "delivered",
        /// The retry schedule ran out without a 2xx.
        Dead = "dead",
        /// The job ended in `drop` mode: nothing will be sent.
        Dropped = "dropped",
    }
}

impl WebhookState {
    /// The states a delivery (one that exists) can be in.
    pub const OF_DELIVERY: [WebhookState; 4] = [
        WebhookState::Pending,
        WebhookState::Failing,
        WebhookState::Delivered,
        WebhookState::Dead,
    ];

    /// The word for a stored delivery: `pending` splits into `pending` (no
    /// failed attempt yet) and `failing` (`failures` > 0, another attempt
    /// is scheduled).
    pub fn of(state: DeliveryState, failures: i64) -> Self {
        match state {
            DeliveryState::Pending if failures > 0 => WebhookState::Failing,
            DeliveryState::Pending => WebhookState::Pending,
            DeliveryState::Delivered => WebhookState::Delivered,
            DeliveryState::Dead => WebhookState::Dead,
        }
    }

    /// The stored state a delivery in this state has (`pending` and
    /// `failing` are both stored `pending`); `None` for the states of a job
    /// that has no delivery.
    pub fn stored(self) -> Option<DeliveryState> {
        match self {
            WebhookState::Pending | WebhookState::Failing => Some(DeliveryState::Pending),
            WebhookState::Delivered => Some(DeliveryState::Delivered),
            WebhookState::Dead => Some(DeliveryState::Dead),
            WebhookState::Scheduled | WebhookState::Dropped => None,
        }
    }
}

wire_enum! {
    /// The webhook event (the `X-Camber-Event` header).
    WebhookEvent {
        Completed = "job.completed",
        Failed = "job.failed",
    }
}

wire_enum! {
    /// The webhook body's top-level `status`.
    WebhookStatus {
        Success = "success",
        Failed = "failed",
    }
}

wire_enum! {
    /// The webhook body's `result.status`.
    ResultStatus {
        Success = "SUCCESS",
        Failed = "FAILED",
    }
}

impl WebhookStatus {
    pub fn event(self) -> WebhookEvent {
        match self {
            WebhookStatus::Success => WebhookEvent::Completed,
            WebhookStatus::Failed => WebhookEvent::Failed,
        }
    }
}

/// The webhook part of a job view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub url: String,
    pub state: WebhookState,
    pub attempts: u32,
}

/// `GET /jobs/{id}`. Read leniently: only `status` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub app: String,
    pub status: JobStatus,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WebhookError>,
    #[serde(default)]
    pub webhook: Option<WebhookView>,
}

/// RFC 3339 with microseconds and `Z`, used for every `*_at` field.
/// (`to_rfc3339_opts` writes the fields directly; chrono's `format` would
/// parse a pattern on every call, and both services stamp several times per job.)
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each wire enum's strings, pinned: renaming one fails here.
    #[test]
    fn wire_enums_travel_as_their_contract_strings() {
        fn pin<T>(all: &[T], texts: &[&str])
        where
            T: Copy + PartialEq + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>,
        {
            assert_eq!(all.len(), texts.len());
            for (v, t) in all.iter().zip(texts) {
                assert_eq!(serde_json::to_value(v).unwrap(), json!(t));
                assert_eq!(serde_json::from_value::<T>(json!(t)).unwrap(), *v);
            }
        }
        pin(DeliveryState::ALL, &["pending", "delivered", "dead"]);
        pin(
            WebhookState::ALL,
            &[
                "scheduled",
                "pending",
                "failing",
                "delivered",
                "dead",
                "dropped",
            ],
        );
        pin(WebhookEvent::ALL, &["job.completed", "job.failed"]);
        pin(WebhookStatus::ALL, &["success", "failed"]);
        pin(ResultStatus::ALL, &["SUCCESS", "FAILED"]);
        pin(
            &JobStatus::ALL,
            &["pending", "running", "completed", "failed", "cancelled"],
        );
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(*s));
            assert_eq!(WebhookState::of(*s, 0).as_str(), s.as_str());
        }
        assert_eq!(
            WebhookState::of(DeliveryState::Pending, 1),
            WebhookState::Failing
        );
        assert_eq!(WebhookState::of(DeliveryState::Dead, 3), WebhookState::Dead);
        assert_eq!(DeliveryState::parse("none"), None);
        assert_eq!(WebhookStatus::Success.event(), WebhookEvent::Completed);
        assert_eq!(WebhookStatus::Failed.event(), WebhookEvent::Failed);
    }

    #[test]
    fn timestamps_have_microseconds_and_the_right_zone_marker() {
        use chrono::TimeZone;
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 1, 26, 10, 30, 45)
            .unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(rfc3339(at), "2026-01-26T10:30:45.123456Z");
        assert_eq!(webhook_timestamp(at), "2026-01-26T10:30:45.123456");
        let early = chrono::Utc.with_ymd_and_hms(987, 2, 3, 4, 5, 6).unwrap();
        assert_eq!(rfc3339(early), "0987-02-03T04:05:06.000000Z");
    }

    #[test]
    fn job_status_round_trips_and_knows_terminal_states() {
        for st in JobStatus::ALL {
            assert_eq!(JobStatus::parse(st.as_str()), Some(st));
        }
        assert!(JobStatus::Cancelled.is_terminal());
        assert!(!JobStatus::Running.is_terminal());
        assert_eq!(JobStatus::parse("done"), None);
    }
}

/// Status and state columns are stored as their wire strings.
#[cfg(feature = "sql")]
mod sql {
    use super::{DeliveryState, JobStatus, WebhookEvent};
    use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

    macro_rules! sql_text {
        ($($name:ident),+) => {$(
            impl ToSql for $name {
                fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                    Ok(ToSqlOutput::from(self.as_str()))
                }
            }
            impl FromSql for $name {
                fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                    let s = v.as_str()?;
                    $name::parse(s).ok_or_else(|| {
                        FromSqlError::Other(format!("unknown {} `{s}`", stringify!($name)).into())
                    })
                }
            }
        )+};
    }
    sql_text!(JobStatus, DeliveryState, WebhookEvent);
}
