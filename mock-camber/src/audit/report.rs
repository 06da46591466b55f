//! What an audit reports: each case's expected and observed answers, its
//! verdict and a reason a developer can act on; the summary; the JSON view.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::AuditRow;

/// Bytes of a receiver's answer kept in a report.
pub const EXCERPT_BYTES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Info,
}

/// One request of a case as the receiver answered it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observed {
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// At most [`EXCERPT_BYTES`] of the answer.
    pub excerpt: Option<String>,
    /// The transport error when there was no answer.
    pub error: Option<String>,
}

impl Observed {
    pub fn is_2xx(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn is_4xx(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s))
    }

    pub fn is_5xx(&self) -> bool {
        self.status.is_some_and(|s| s >= 500)
    }

    /// "500", or the transport error.
    pub fn describe(&self) -> String {
        match (self.status, &self.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// One case of the battery, judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    pub name: String,
    pub expected: String,
    pub observed: Vec<Observed>,
    pub verdict: Verdict,
    pub reason: String,
}

/// `{id, job_id, state, started_at, finished_at, cases, summary, failed}`.
pub fn view(row: &AuditRow) -> Value {
    let cases: Vec<CaseReport> = serde_json::from_value(row.cases.clone()).unwrap_or_default();
    let count = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
    let failed: Vec<&str> = (cases.iter())
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.as_str())
        .collect();
    json!({
        "id": row.id,
        "job_id": row.job_id,
        "state": row.state,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "cases": cases,
        "summary": {
            "pass": count(Verdict::Pass),
            "fail": count(Verdict::Fail),
            "info": count(Verdict::Info),
        },
        "failed": failed,
    })
}

/// The first `EXCERPT_BYTES` of `bytes` as text, cut at a character.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
