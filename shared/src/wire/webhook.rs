//! The webhook body Camber sends when a job ends, its error shape, and the
//! exact bytes it travels as (mock-camber/openapi.yaml, `webhooks`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{rfc3339, ResultStatus, WebhookStatus};

/// The webhook body, fields in the order Camber sends them (see
/// `webhooks.jobFinished` in mock-camber/openapi.yaml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    pub camber_job_id: String,
    pub job_id: String,
    pub status: WebhookStatus,
    pub timestamp: String,
    pub result: WebhookResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookResult {
    pub status: ResultStatus,
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
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub details: Value,
}

impl WebhookBody {
    pub fn success(camber_job_id: &str, job_id: &str, timestamp: String, result: Value) -> Self {
        Self {
            camber_job_id: camber_job_id.to_owned(),
            job_id: job_id.to_owned(),
            status: WebhookStatus::Success,
            timestamp,
            result: WebhookResult {
                status: ResultStatus::Success,
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
            status: WebhookStatus::Failed,
            timestamp,
            result: WebhookResult {
                status: ResultStatus::Failed,
                job_id: job_id.to_owned(),
                result: None,
                error: Some(error),
            },
        }
    }

    /// The exact bytes sent: compact, non-ASCII escaped (see [`compact_json`]).
    /// Serialised straight from the struct (the fields in their order), not
    /// through a `Value` tree: the same bytes, without a tree to build.
    pub fn to_bytes(&self) -> Vec<u8> {
        ascii_escaped(serde_json::to_string(self).expect("webhook body serialises"))
    }
}

/// Compact JSON with every non-ASCII character escaped as `\uXXXX`
/// (surrogate pairs above U+FFFF): the bytes Python's
/// `json.dumps(v, separators=(",", ":"))` produces for the same value.
pub fn compact_json(value: &Value) -> Vec<u8> {
    ascii_escaped(serde_json::to_string(value).expect("JSON values serialise"))
}

fn ascii_escaped(text: String) -> Vec<u8> {
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

/// A job's failure as the api records and shows it (`error` of its job
/// view, `result.json`): [`WebhookError`]'s shape, except that `stage` is
/// null when no stage is known (a job Camber lost, or one that failed
/// without saying how).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub details: Value,
}

impl JobFailure {
    pub fn new(code: impl Into<String>, stage: Option<&str>, details: Value) -> Self {
        Self {
            code: code.into(),
            stage: stage.map(str::to_owned),
            details,
        }
    }
}

/// Camber's own error, as it said it (its `stage` kept, empty or not).
impl From<WebhookError> for JobFailure {
    fn from(e: WebhookError) -> Self {
        Self {
            code: e.code,
            stage: Some(e.stage),
            details: e.details,
        }
    }
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
    fn a_body_serialises_to_the_bytes_its_value_tree_would() {
        let details = json!({"reason": "página ilegible 😀", "pages": [1, 2.5, null]});
        let bodies = [
            WebhookBody::success(
                "cmb_1",
                "mine-é",
                "2026-01-26T10:30:45.123456".into(),
                json!({"z": 1, "a": {"ß": "é", "n": -0.5}, "list": [true, "x"]}),
            ),
            WebhookBody::failure(
                "cmb_2",
                "mine",
                "2026-01-26T10:30:45.123456".into(),
                WebhookError {
                    code: "OCR_FAILURE".into(),
                    stage: "OCR".into(),
                    details,
                },
            ),
        ];
        for body in bodies {
            let via_tree = compact_json(&serde_json::to_value(&body).unwrap());
            assert_eq!(
                String::from_utf8(body.to_bytes()).unwrap(),
                String::from_utf8(via_tree).unwrap()
            );
            assert!(body.to_bytes().is_ascii());
        }
    }

    #[test]
    fn compact_json_escapes_non_ascii_like_python() {
        // json.dumps({"k": "é😀"}, separators=(",", ":"))
        let v = json!({"k": "é😀"});
        assert_eq!(compact_json(&v), br#"{"k":"\u00e9\ud83d\ude00"}"#.to_vec());
    }

    /// The field order and the null stage are what api's job views showed
    /// when it built failures as JSON values.
    #[test]
    fn a_job_failure_has_the_webhook_errors_shape_with_a_nullable_stage() {
        let lost = JobFailure::new("CAMBER_JOB_LOST", None, json!({"reason": "gone"}));
        assert_eq!(
            serde_json::to_string(&lost).unwrap(),
            r#"{"code":"CAMBER_JOB_LOST","stage":null,"details":{"reason":"gone"}}"#
        );
        let camber = WebhookError {
            code: "OCR_FAILURE".into(),
            stage: "OCR".into(),
            details: json!({"reason": "No text"}),
        };
        let as_sent = serde_json::to_value(&camber).unwrap();
        let failure = JobFailure::from(camber);
        assert_eq!(serde_json::to_value(&failure).unwrap(), as_sent);
        let back: JobFailure = serde_json::from_value(as_sent).unwrap();
        assert_eq!(back, failure);
    }
}
