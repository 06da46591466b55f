//! mock-camber in a Rust test: the real daemon in-process on a free port,
//! typed clients for a tenant and for the admin API, and a webhook receiver
//! that verifies what it gets.
//!
//! - [`MockCamber::start`] runs the real `mock_camber::Application` in this
//!   process on port 0 with an in-memory store, ready in milliseconds;
//!   [`MockCamber::builder`] sets stage time, seed, secrets, retry schedule
//!   and scenario rules. Dropped = shut down.
//! - [`MockCamber::tenant`] is a [`Tenant`] with a fresh API key (the mock
//!   treats every key as its own tenant), so tests isolate without `reset`.
//! - [`MockCamber::admin`] is the [`Admin`] API under `/_mock/`.
//! - [`WebhookReceiver::start`] records and verifies webhooks and answers
//!   with the statuses a test sets.
//!
//! Everything runs on threads of the kit's own (with an actix system each),
//! so a test may be `#[tokio::test]` or `#[actix_web::test]`. Nothing
//! sleeps: waits use the mock's long-polls and the receiver's channel.
//!
//! ```
//! use std::time::Duration;
//! use mock_camber_testkit::{MockCamber, WaitFor, WebhookReceiver};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mock_camber_testkit::Error> {
//! let mock = MockCamber::start().await;
//! let hooks = WebhookReceiver::start().await;
//! let camber = mock.tenant();
//!
//! let job = camber
//!     .submit(&json!({"app": "ocr", "input": {"filename": "a.pdf"},
//!                     "webhook": {"url": hooks.url()}}))
//!     .await?;
//! let done = camber.wait_for_job(&job.id, WaitFor::Completed, Duration::from_secs(10)).await?;
//! assert!(done.result.is_some());
//!
//! let webhook = &hooks.wait_for(1, Duration::from_secs(10)).await[0];
//! assert!(webhook.verified());
//! assert_eq!(webhook.body.camber_job_id, job.id);
//! # Ok(())
//! # }
//! ```
//!
//! The clients speak plain HTTP: a mock started with TLS (through
//! [`Builder::settings`]) is reached by the code under test with its own
//! CA, not by [`Tenant`] or [`Admin`].

mod admin;
mod audit;
mod http;
mod receiver;
mod runner;
mod server;
mod tenant;

pub use admin::{Admin, Attempt, JournalEntry, MockDelivery};
pub use audit::{AuditCase, AuditObserved, AuditOptions, AuditReport, AuditSummary, Verdict};
pub use receiver::{Delivery, WebhookReceiver};
pub use server::{Builder, MockCamber};
pub use tenant::{Tenant, WaitFor};

/// The secret a [`MockCamber`] signs webhooks with unless
/// [`Builder::webhook_secret`] says otherwise; [`WebhookReceiver::start`]
/// verifies against it.
pub const WEBHOOK_SECRET: &str = "mock-camber-testkit-secret";

/// The settings [`Builder::settings`] changes (the daemon's flags).
pub use mock_camber::Settings;

use std::time::Duration;

/// Why a call of a [`Tenant`] or [`Admin`] did not give what it asks for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request did not get an answer (refused, reset, timed out).
    #[error("{what}: {reason}")]
    Transport { what: String, reason: String },
    /// An answer with another status than expected.
    #[error("{what}: answered {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    /// An answer that is not the expected JSON.
    #[error("{what}: unexpected body ({reason}): {body}")]
    Body {
        what: String,
        reason: String,
        body: String,
    },
    /// A wait ran out; `last` is what the mock showed then.
    #[error("timed out after {after:?} waiting for {what}; last seen: {last:?}")]
    Timeout {
        what: String,
        after: Duration,
        last: Option<String>,
    },
    /// The mock this client belongs to was dropped.
    #[error("the mock has stopped")]
    Stopped,
}
