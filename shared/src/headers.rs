//! Header names of the Camber API, its webhook and the mock's own extras
//! (see mock-camber/openapi.yaml), lowercase as HTTP/2 and actix normalise
//! them.

/// Hex HMAC-SHA256 of the raw body (the seed's scheme).
pub const WEBHOOK_SECRET: &str = "x-webhook-secret";
/// Stable across retries of one event.
pub const DELIVERY_ID: &str = "x-camber-delivery-id";
/// 1, 2, … for each attempt of one delivery.
pub const ATTEMPT: &str = "x-camber-attempt";
/// `job.completed` or `job.failed` ([`crate::WebhookEvent`]).
pub const EVENT: &str = "x-camber-event";
/// Standard Webhooks: the message id (= the delivery id).
pub const STD_WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: unix seconds of this attempt.
pub const STD_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64 signature>` (space separated when several).
pub const STD_WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Client-chosen key that makes a submit safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// `true` on a response replayed for a repeated Idempotency-Key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Per-request scenario, the same JSON as `metadata.mock`.
pub const MOCK_SCENARIO: &str = "x-mock-scenario";
/// Every response carries one, like stripe-mock's `Request-Id`.
pub const REQUEST_ID: &str = "x-request-id";
