//! What an audit sends to and signs with, a case, and one request of it.

use std::time::Duration;

use actix_web::web::Bytes;
use shared::headers as h;
use shared::WebhookEvent;

use super::state::StateRead;
use super::verdict::Expect;
use crate::engine::policy::Policy;
use crate::store::Headers;

/// Headers the audit sets itself: a caller's header of the same name is
/// not sent (the sender lets the caller's win; an audit must not).
pub const CONTRACT_HEADERS: [&str; 8] = [
    "content-type",
    h::WEBHOOK_SECRET,
    h::DELIVERY_ID,
    h::ATTEMPT,
    h::EVENT,
    h::STD_WEBHOOK_ID,
    h::STD_WEBHOOK_TIMESTAMP,
    h::STD_WEBHOOK_SIGNATURE,
];

/// What an audit sends to, and signs with. Its secrets are never shown.
pub struct Target {
    pub url: String,
    pub delivery_id: String,
    pub event: WebhookEvent,
    /// The genuine delivery's exact bytes.
    pub body: Vec<u8>,
    /// The secrets that sign this job's webhooks, the current one first.
    pub secrets: Vec<String>,
    /// The caller's own webhook headers (`webhook.headers`).
    pub caller: Headers,
    pub timeout: Duration,
    pub policy: Policy,
    /// The caller's `metadata.job_id` (for `state_url`).
    pub caller_job_id: String,
    /// Where to read the caller's state of the job, if given.
    pub state: Option<StateRead>,
}

/// One request of a case: its body and its contract headers.
pub struct Shot {
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

/// One case of the battery: its requests and what it expects.
pub struct Case {
    pub name: &'static str,
    pub expected: &'static str,
    pub shots: Vec<Shot>,
    /// Sent all at once rather than one after the other.
    pub parallel: bool,
    /// With `state_url`: the caller's state must be the same before and
    /// after the case; else this reason.
    pub state_unchanged: Option<&'static str>,
    /// Sent by `hostile::drip`, one body byte every 200 ms.
    pub drip: bool,
    pub expect: Expect,
}

pub fn case(name: &'static str, expected: &'static str, expect: Expect, shots: Vec<Shot>) -> Case {
    Case {
        name,
        expected,
        shots,
        parallel: false,
        expect,
        state_unchanged: None,
        drip: false,
    }
}
