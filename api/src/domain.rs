//! The api's job model: its status machine, event sources, and the parsed,
//! valid `NewJob` a `POST /jobs` body becomes (parse, don't validate).

use serde::Serialize;
use serde_json::{json, Map, Value};
use shared::{
    JobFailure, JobStatus, JobView, ResultStatus, WebhookBody, WebhookError, WebhookStatus,
};

/// Our job status. Camber's `running` is our `processing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Processing,
        Status::Completed,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

// The status column holds the same strings as the API.
impl rusqlite::types::ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Status {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Status::parse(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown job status `{s}`").into())
        })
    }
}

/// Who caused a transition (the `source` of a job event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Submit,
    Webhook,
    Reconcile,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Submit, Source::Webhook, Source::Reconcile];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Submit => "submit",
            Source::Webhook => "webhook",
            Source::Reconcile => "reconcile",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|src| src.as_str() == s)
    }
}

/// How a job ended on Camber, as a webhook or a poll reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The worker's output (`result.result` of the webhook).
    Completed(Value),
    /// `{"code", "stage", "details"}`.
    Failed(JobFailure),
}

impl Outcome {
    pub fn status(&self) -> Status {
        match self {
            Outcome::Completed(_) => Status::Completed,
            Outcome::Failed(_) => Status::Failed,
        }
    }

    fn failed(error: Option<&WebhookError>, default_code: &str, stage: Option<&str>) -> Self {
        Outcome::Failed(match error {
            Some(e) => e.clone().into(),
            None => JobFailure::new(default_code, stage, json!({})),
        })
    }

    /// A job view's terminal status as an outcome; `None` while it runs.
    pub fn from_view(view: &JobView) -> Option<Self> {
        match view.status {
            JobStatus::Completed => Some(Outcome::Completed(
                view.result.clone().unwrap_or(Value::Null),
            )),
            JobStatus::Failed => Some(Self::failed(view.error.as_ref(), "UNKNOWN", None)),
            JobStatus::Cancelled => Some(Self::failed(
                view.error.as_ref(),
                "CANCELLED",
                view.stage.as_deref(),
            )),
            JobStatus::Pending | JobStatus::Running => None,
        }
    }
}

/// Camber's webhook, as an outcome. The top-level `status` decides (the
/// contract's enums, so anything else was refused when the body was
/// parsed); `result.status` must agree with it; a `failed` body without
/// `result.error` is `UNKNOWN`.
impl TryFrom<&WebhookBody> for Outcome {
    type Error = String;

    fn try_from(body: &WebhookBody) -> Result<Self, Self::Error> {
        match (body.status, body.result.status) {
            (WebhookStatus::Success, ResultStatus::Success) => Ok(Outcome::Completed(
                body.result.result.clone().unwrap_or(Value::Null),
            )),
            (WebhookStatus::Failed, ResultStatus::Failed) => {
                Ok(Self::failed(body.result.error.as_ref(), "UNKNOWN", None))
            }
            (status, inner) => Err(format!(
                "`status` is `{status}` but `result.status` is `{inner}`"
            )),
        }
    }
}

/// One of our job ids: a UUID in its canonical hyphenated form. Only
/// [`JobId::new`] and [`JobId::parse`] make one, so a `JobId` is always safe
/// as a path component (the artifact store relies on it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    /// A new id. v7: time-ordered, so inserts into the id-keyed indexes stay
    /// on their right edge instead of dirtying a random B-tree page per job.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    /// `raw` as one of our ids; anything that is not a UUID names no job.
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw)
            .ok()
            .map(|u| Self(u.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for JobId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl rusqlite::types::ToSql for JobId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// Read back through [`JobId::parse`] too: a row cannot smuggle in a path.
impl rusqlite::types::FromSql for JobId {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        JobId::parse(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("`{s}` is not a job id").into())
        })
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub const ALLOWED_MIME_TYPES: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/tiff",
    "image/webp",
];
pub const MAX_FILENAME_LEN: usize = 255;
pub const MAX_SCHEMA_NAME_LEN: usize = 128;

/// A valid job request: every field checked once, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub portal_schema_name: String,
    pub filename: String,
    pub mime_type: String,
    pub file_size_bytes: u64,
}

/// One bad field of a `POST /jobs` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

fn required_string<'a>(
    body: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(field_err(field, format!("`{field}` is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(field_err(field, format!("`{field}` must not be empty")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(field_err(field, format!("`{field}` must be a string"))),
    }
}

impl NewJob {
    /// Parses a `POST /jobs` body; `max_file_bytes` is the configured upper bound.
    pub fn parse(body: &Map<String, Value>, max_file_bytes: u64) -> Result<Self, FieldError> {
        let portal_schema_name = required_string(body, "portal_schema_name")?;
        if portal_schema_name.chars().count() > MAX_SCHEMA_NAME_LEN {
            return Err(field_err(
                "portal_schema_name",
                format!("`portal_schema_name` must be at most {MAX_SCHEMA_NAME_LEN} characters"),
            ));
        }

        let filename = required_string(body, "filename")?;
        if filename.chars().count() > MAX_FILENAME_LEN {
            return Err(field_err(
                "filename",
                format!("`filename` must be at most {MAX_FILENAME_LEN} characters"),
            ));
        }
        if filename.contains(['/', '\\']) || filename.contains("..") {
            return Err(field_err(
                "filename",
                "`filename` must be a plain file name, without path separators or `..`",
            ));
        }
        if filename.chars().any(char::is_control) {
            return Err(field_err(
                "filename",
                "`filename` must not contain control characters",
            ));
        }

        let mime_type = required_string(body, "mime_type")?.to_ascii_lowercase();
        if !ALLOWED_MIME_TYPES.contains(&mime_type.as_str()) {
            return Err(field_err(
                "mime_type",
                format!(
                    "`mime_type` must be one of {}",
                    ALLOWED_MIME_TYPES.join(", ")
                ),
            ));
        }

        let file_size_bytes = match body.get("file_size_bytes") {
            None | Some(Value::Null) => {
                return Err(field_err(
                    "file_size_bytes",
                    "`file_size_bytes` is required",
                ))
            }
            // JSON does not tell 1000 from 1000.0; JSON Schema's `integer`
            // accepts both, and so do we (1e30 is "too large", not "not a number").
            Some(Value::Number(n)) => shared::number::whole_u64(n).ok_or_else(|| {
                field_err(
                    "file_size_bytes",
                    "`file_size_bytes` must be a positive whole number",
                )
            })?,
            Some(_) => {
                return Err(field_err(
                    "file_size_bytes",
                    "`file_size_bytes` must be an integer",
                ))
            }
        };
        if file_size_bytes == 0 || file_size_bytes > max_file_bytes {
            return Err(field_err(
                "file_size_bytes",
                format!("`file_size_bytes` must be between 1 and {max_file_bytes}"),
            ));
        }

        Ok(NewJob {
            portal_schema_name: portal_schema_name.to_owned(),
            filename: filename.to_owned(),
            mime_type,
            file_size_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewJob, FieldError> {
        NewJob::parse(v.as_object().unwrap(), 1000)
    }

    fn good() -> Value {
        json!({"portal_schema_name": "invoice", "filename": "a.pdf", "mime_type": "application/pdf", "file_size_bytes": 10})
    }

    #[test]
    fn a_valid_body_parses() {
        let job = parse(good()).unwrap();
        assert_eq!(job.filename, "a.pdf");
        assert_eq!(job.file_size_bytes, 10);
        // JSON Schema's `integer` includes 10.0; so does the parser.
        let mut body = good();
        body["file_size_bytes"] = json!(10.0);
        assert_eq!(parse(body).unwrap().file_size_bytes, 10);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("portal_schema_name", json!(null), "required"),
            ("portal_schema_name", json!(""), "empty"),
            ("filename", json!("../etc/passwd"), "path"),
            ("filename", json!("a/b.pdf"), "path"),
            ("filename", json!("a\\b.pdf"), "path"),
            ("filename", json!("x".repeat(256)), "255"),
            ("filename", json!(5), "string"),
            ("mime_type", json!("text/html"), "one of"),
            ("file_size_bytes", json!(0), "between"),
            ("file_size_bytes", json!(1001), "between"),
            ("file_size_bytes", json!(-1), "positive"),
            ("file_size_bytes", json!(1.5), "positive"),
            ("file_size_bytes", json!(-1.0), "positive"),
            ("file_size_bytes", json!(0.0), "between"),
            ("file_size_bytes", json!(1e300), "between"),
            ("file_size_bytes", json!("10"), "integer"),
        ];
        for (field, value, needle) in cases {
            let mut body = good();
            body[field] = value.clone();
            let err = parse(body).unwrap_err();
            assert_eq!(err.field, field, "{value}");
            assert!(
                err.message.contains(needle),
                "{field}={value}: {}",
                err.message
            );
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert!(Status::Failed.is_terminal() && !Status::Processing.is_terminal());
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
    }

    /// The enums serialise as the strings the API shows (and the store
    /// holds): `openapi.yaml`'s `JobStatus` and `Event.source`.
    #[test]
    fn status_and_source_serialise_as_their_names() {
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        for s in Source::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
    }
}
