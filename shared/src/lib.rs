//! What mock-camber and api must agree on: wire types, header names,
//! webhook signing, the error body shape, and what both binaries do alike:
//! the `healthcheck` probe, retry and duration syntax, how data paths are
//! named at start. Nothing else lives here.

pub mod error;
pub mod fdlimit;
pub mod headers;
pub mod healthcheck;
#[cfg(feature = "http")]
pub mod http;
pub mod number;
pub mod paging;
pub mod paths;
pub mod retry;
pub mod signing;
pub mod tls;
pub mod wire;

pub use error::ErrorBody;
pub use wire::{
    compact_json, rfc3339, webhook_timestamp, DeliveryState, JobFailure, JobStatus, JobView,
    ResultStatus, SubmitRequest, SubmitResponse, WebhookBody, WebhookError, WebhookEvent,
    WebhookResult, WebhookState, WebhookStatus, WebhookTarget, WebhookView,
};

/// How long a request body may take to arrive: `timeout` for a body of up
/// to 1 MiB, plus one second per further 64 KiB it declares (or may have,
/// up to its limit), so a large upload on a slow link is not cut off while
/// a stalled one still is.
pub fn body_deadline(timeout: std::time::Duration, size: u64) -> std::time::Duration {
    const FREE: u64 = 1024 * 1024;
    const MIN_RATE: u64 = 64 * 1024;
    timeout + std::time::Duration::from_secs(size.saturating_sub(FREE) / MIN_RATE)
}
