//! What mock-camber and api must agree on: wire types, header names,
//! webhook signing, the error body shape, and what both binaries do alike:
//! the `healthcheck` probe, retry and duration syntax, how data paths are
//! named at start. Nothing else lives here.

pub mod error;
pub mod headers;
pub mod healthcheck;
pub mod number;
pub mod paging;
pub mod paths;
pub mod retry;
pub mod signing;
pub mod tls;
pub mod wire;

pub use error::ErrorBody;
pub use wire::{
    compact_json, rfc3339, webhook_timestamp, DeliveryState, JobStatus, JobView, ResultStatus,
    SubmitRequest, SubmitResponse, WebhookBody, WebhookError, WebhookEvent, WebhookResult,
    WebhookState, WebhookStatus, WebhookTarget, WebhookView,
};
