//! Wire types of the Camber API (SPEC §2) and its webhook (SPEC §3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Job status as Camber reports it (lowercase on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
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

/// `201 Created` answer to `POST /jobs`. `job_id` repeats `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub id: String,
    pub job_id: String,
    pub status: JobStatus,
    pub app: String,
    pub created_at: String,
}

/// The webhook part of a job view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub url: String,
    /// `pending`, `delivered`, `dead`, `dropped`, or `none` before the job ends.
    pub state: String,
    pub attempts: u32,
}

/// `GET /jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub job_id: String,
    pub app: String,
    pub status: JobStatus,
    pub stage: Option<String>,
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WebhookError>,
    pub webhook: Option<WebhookView>,
}

/// Webhook `status` values.
pub struct WebhookStatus;
impl WebhookStatus {
    pub const SUCCESS: &'static str = "success";
    pub const FAILED: &'static str = "failed";
}

/// The webhook body, fields in the contract's order (SPEC §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    pub camber_job_id: String,
    pub job_id: String,
    pub status: String,
    pub timestamp: String,
    pub result: WebhookResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookResult {
    /// `SUCCESS` or `FAILED`.
    pub status: String,
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WebhookError>,
}

/// `{"code": "OCR_FAILURE", "stage": "OCR", "details": {"reason": "…"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookError {
    pub code: String,
    pub stage: String,
    #[serde(default)]
    pub details: Value,
}

impl WebhookBody {
    pub fn success(camber_job_id: &str, job_id: &str, timestamp: String, result: Value) -> Self {
        Self {
            camber_job_id: camber_job_id.to_owned(),
            job_id: job_id.to_owned(),
            status: WebhookStatus::SUCCESS.to_owned(),
            timestamp,
            result: WebhookResult {
                status: "SUCCESS".to_owned(),
                job_id: job_id.to_owned(),
                result: Some(result),
                error: None,
            },
        }
    }

    pub fn failure(
        camber_job_id: &str,
        job_id: &str,
        timestamp: String,
        error: WebhookError,
    ) -> Self {
        Self {
            camber_job_id: camber_job_id.to_owned(),
            job_id: job_id.to_owned(),
            status: WebhookStatus::FAILED.to_owned(),
            timestamp,
            result: WebhookResult {
                status: "FAILED".to_owned(),
                job_id: job_id.to_owned(),
                result: None,
                error: Some(error),
            },
        }
    }

    /// The exact bytes sent: compact, non-ASCII escaped (see [`compact_json`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        compact_json(&serde_json::to_value(self).expect("webhook body serialises"))
    }
}

/// Compact JSON with every non-ASCII character escaped as `\uXXXX`
/// (surrogate pairs above U+FFFF): the bytes Python's
/// `json.dumps(v, separators=(",", ":"))` produces for the same value.
pub fn compact_json(value: &Value) -> Vec<u8> {
    let text = serde_json::to_string(value).expect("JSON values serialise");
    if text.is_ascii() {
        return text.into_bytes();
    }
    // Non-ASCII can only occur inside strings, so escaping every such char
    // in place keeps the document valid and equal in value.
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// `2026-01-26T10:30:45.123456` — the webhook `timestamp` (UTC, no zone, as
/// Python's `datetime.utcnow().isoformat()`).
pub fn webhook_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    let mut s = rfc3339(at);
    s.pop();
    s
}

/// RFC 3339 with microseconds and `Z`, used for every `*_at` field.
/// Formatted from the fields directly: chrono's `format` parses its pattern
/// on every call, and both services stamp several times per job.
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        // A leap second shows as 60.xxxxxx elsewhere; keep it in range here.
        (at.nanosecond() % 1_000_000_000) / 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_body_has_the_contract_key_order() {
        let body = WebhookBody::success(
            "cmb_1",
            "job-1",
            "2026-01-26T10:30:45.123456".into(),
            json!({"structured": {"b": 1, "a": 2}, "quality_score": 0.92}),
        );
        assert_eq!(
            String::from_utf8(body.to_bytes()).unwrap(),
            r#"{"camber_job_id":"cmb_1","job_id":"job-1","status":"success","timestamp":"2026-01-26T10:30:45.123456","result":{"status":"SUCCESS","job_id":"job-1","result":{"structured":{"b":1,"a":2},"quality_score":0.92}}}"#
        );
    }

    #[test]
    fn failure_body_has_the_contract_key_order() {
        let body = WebhookBody::failure(
            "cmb_1",
            "job-1",
            "2026-01-26T10:30:45.123456".into(),
            WebhookError {
                code: "OCR_FAILURE".into(),
                stage: "OCR".into(),
                details: json!({"reason": "No text detected in image"}),
            },
        );
        assert_eq!(
            String::from_utf8(body.to_bytes()).unwrap(),
            r#"{"camber_job_id":"cmb_1","job_id":"job-1","status":"failed","timestamp":"2026-01-26T10:30:45.123456","result":{"status":"FAILED","job_id":"job-1","error":{"code":"OCR_FAILURE","stage":"OCR","details":{"reason":"No text detected in image"}}}}"#
        );
    }

    #[test]
    fn compact_json_escapes_non_ascii_like_python() {
        // json.dumps({"k": "é😀"}, separators=(",", ":"))
        let v = json!({"k": "é😀"});
        assert_eq!(compact_json(&v), br#"{"k":"\u00e9\ud83d\ude00"}"#.to_vec());
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
