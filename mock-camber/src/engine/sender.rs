//! One webhook attempt over HTTP: the contract's headers and both
//! signatures, the caller's own headers on top, a time limit on the whole
//! exchange, and at most `EXCERPT_BYTES` of the answer kept.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix_tls::connect::Resolver;

use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
use actix_web::web::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use shared::headers as h;
use shared::retry::parse_retry_after;
use shared::signing::{sign_hex, sign_standard_all};
use shared::wire::rfc3339;
use shared::WebhookEvent;
use tokio::time::Instant;

use super::policy::{Guarded, Policy, Refused};
use super::EngineSettings;
use crate::scenario::{WebhookFault, WebhookFaults};
use crate::store::Headers;

/// Bytes of a receiver's answer kept in the attempt log.
const EXCERPT_BYTES: usize = 1024;

/// The one awc client every attempt shares (connections are reused).
/// Redirects are never followed: a 3xx is a failed attempt. With a
/// destination policy, host names are resolved by [`Guarded`], which
/// refuses a connection to any address the policy does not let through.
pub(crate) fn client(timeout: Duration, max_in_flight: usize, policy: &Policy) -> awc::Client {
    // Webhook receivers may be https: awc's rustls needs a provider.
    // Another component may have installed one already; that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = awc::Client::builder().timeout(timeout).disable_redirects();
    if policy.is_open() {
        return builder
            .connector(awc::Connector::new().limit(max_in_flight).timeout(timeout))
            .finish();
    }
    let guarded = Resolver::custom(Guarded(Rc::new(policy.clone())));
    let tcp = actix_tls::connect::Connector::new(guarded).service();
    builder
        .connector(
            awc::Connector::new()
                .connector(tcp)
                .limit(max_in_flight)
                .timeout(timeout),
        )
        .finish()
}

pub(super) struct AttemptRequest {
    pub url: String,
    pub delivery_id: String,
    /// Whose secret signs it (see `EngineSettings::tenant_secrets`).
    pub tenant: String,
    pub event: WebhookEvent,
    pub headers: Headers,
    pub body: Bytes,
    pub n: u32,
    /// What this attempt does wrong on purpose (see [`Altered`]).
    pub faults: WebhookFaults,
}

/// What the sender's faults change in an attempt: every
/// `WebhookFault::at_send` variant has its behaviour here, and only here.
#[derive(Debug, Default)]
struct Altered<'a> {
    /// Sign with wrong secrets (`bad_signature`).
    bad_signature: bool,
    /// Send this `Content-Type` instead of `application/json`.
    content_type: Option<&'a str>,
}

impl<'a> Altered<'a> {
    fn of(faults: &'a WebhookFaults) -> Self {
        let mut out = Self::default();
        for f in faults.iter() {
            match f {
                WebhookFault::BadSignature => out.bad_signature = true,
                WebhookFault::ContentType(ct) => out.content_type = Some(ct),
                // Applied before any attempt (the outbox's schedule).
                WebhookFault::Drop | WebhookFault::Delay(_) | WebhookFault::Sends(_) => {}
            }
        }
        out
    }
}

/// The outcome of one webhook attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub n: u32,
    pub at: String,
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    /// The receiver's `Retry-After` on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub(super) async fn send(
    client: &awc::Client,
    req: &AttemptRequest,
    settings: &EngineSettings,
) -> AttemptResult {
    let at = Utc::now();
    let ts = at.timestamp();
    let secrets = signing_secrets(
        &settings.tenant_secrets,
        &settings.webhook_secrets,
        &req.tenant,
    );
    let altered = Altered::of(&req.faults);
    let mangled: Vec<String>;
    let secrets = if altered.bad_signature {
        mangled = (secrets.iter())
            .map(|s| format!("{s}-not-the-secret"))
            .collect();
        &mangled
    } else {
        secrets
    };
    let mut result = AttemptResult {
        n: req.n,
        at: rfc3339(at),
        status: None,
        latency: Duration::ZERO,
        error: None,
        excerpt: None,
        retry_after: None,
    };
    // A literal address never reaches the resolver: checked here (the
    // policy may have changed since the submit).
    if let Err(refused) = literal_refused(&settings.policy, &req.url) {
        result.error = Some(refused);
        return result;
    }
    let mut r = client.post(&req.url);
    let ours = signed_headers(
        secrets,
        &req.delivery_id,
        req.event,
        req.n,
        ts,
        &req.body,
        altered.content_type,
    );
    for (k, v) in ours {
        r = r.insert_header((k, v));
    }
    // The caller's headers win over ours (clients sharing a static secret),
    // but never `Host` (refused at submit; skipped in rows stored before).
    for (k, v) in req.headers.iter() {
        if !k.eq_ignore_ascii_case("host") {
            r = r.insert_header((k.as_str(), v.as_str()));
        }
    }
    let start = Instant::now();
    let limit = settings.delivery_timeout;
    let outcome = tokio::time::timeout(limit, exchange(r, req.body.clone(), limit)).await;
    result.latency = start.elapsed();
    match outcome {
        Ok(Ok((status, retry_after, excerpt))) => {
            result.status = Some(status);
            result.retry_after = retry_after;
            result.excerpt = Some(String::from_utf8_lossy(&excerpt).into_owned());
            if !(200..300).contains(&status) {
                result.error = Some(format!("receiver answered {status}"));
            }
        }
        Ok(Err(e)) => result.error = Some(e),
        Err(_) => result.error = Some(timed_out(limit)),
    }
    result
}

/// Sends the request and reads the status, `Retry-After` (on a 429 or
/// 503) and at most `EXCERPT_BYTES` of the answer.
async fn exchange(
    r: awc::ClientRequest,
    body: Bytes,
    limit: Duration,
) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
    let mut resp = r.send_body(body).await.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => timed_out(limit),
        awc::error::SendRequestError::Connect(awc::error::ConnectError::Resolver(e))
            if e.is::<Refused>() =>
        {
            e.to_string()
        }
        other => other.to_string(),
    })?;
    let status = resp.status().as_u16();
    let retry_after = matches!(status, 429 | 503)
        .then(|| resp.headers().get(RETRY_AFTER)?.to_str().ok())
        .flatten()
        .and_then(|v| parse_retry_after(v, Utc::now()));
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match resp.next().await {
            Some(Ok(chunk)) => excerpt.extend_from_slice(&chunk),
            _ => break,
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    Ok((status, retry_after, excerpt))
}

/// The policy's refusal of `url`'s host when it is a literal address.
pub(crate) fn literal_refused(policy: &Policy, url: &str) -> Result<(), String> {
    if policy.is_open() {
        return Ok(());
    }
    let uri = url
        .parse::<actix_web::http::Uri>()
        .map_err(|e| e.to_string())?;
    let host = uri.host().unwrap_or("");
    match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(ip) => policy.check_ip(ip),
        Err(_) => Ok(()),
    }
}

/// The secrets that sign `tenant`'s webhooks, the current one first: a
/// tenant with a secret of its own signs with it alone, so tenants of a
/// shared mock cannot sign webhooks for each other.
pub(crate) fn signing_secrets<'a>(
    tenant_secrets: &'a HashMap<String, Vec<String>>,
    global: &'a [String],
    tenant: &str,
) -> &'a [String] {
    tenant_secrets.get(tenant).map_or(global, Vec::as_slice)
}

/// The contract's headers of one send of `body`, signed with `secrets`
/// (`X-Webhook-Secret` with the current one, `webhook-signature` with
/// each): what the outbox and the receiver audit (`audit/`) both send.
pub(crate) fn signed_headers(
    secrets: &[String],
    delivery_id: &str,
    event: WebhookEvent,
    n: u32,
    ts: i64,
    body: &[u8],
    content_type: Option<&str>,
) -> [(&'static str, String); 8] {
    let current = secrets.first().map_or("", String::as_str);
    contract_headers(
        delivery_id,
        event,
        n,
        ts,
        sign_hex(current.as_bytes(), body),
        sign_standard_all(secrets, delivery_id, ts, body),
        content_type,
    )
}

/// The contract's headers of one attempt, in the order they are sent.
fn contract_headers(
    delivery_id: &str,
    event: WebhookEvent,
    n: u32,
    ts: i64,
    secret_hex: String,
    signature: String,
    content_type: Option<&str>,
) -> [(&'static str, String); 8] {
    let content_type = content_type.unwrap_or("application/json");
    [
        (CONTENT_TYPE.as_str(), content_type.to_owned()),
        (h::WEBHOOK_SECRET, secret_hex),
        (h::DELIVERY_ID, delivery_id.to_owned()),
        (h::ATTEMPT, n.to_string()),
        (h::EVENT, event.as_str().to_owned()),
        (h::STD_WEBHOOK_ID, delivery_id.to_owned()),
        (h::STD_WEBHOOK_TIMESTAMP, ts.to_string()),
        (h::STD_WEBHOOK_SIGNATURE, signature),
    ]
}

/// The headers attempt `n` (made at unix time `ts`) carried, as the
/// console shows them: built like [`send`] builds them, with the signature
/// values elided and the caller's secret-looking headers masked.
pub fn shown_headers(
    delivery_id: &str,
    event: WebhookEvent,
    n: u32,
    ts: i64,
    faults: &WebhookFaults,
    caller: &Headers,
) -> Vec<(String, String)> {
    let altered = Altered::of(faults);
    let elided = if altered.bad_signature {
        "(elided: deliberately wrong, bad_signature)"
    } else {
        "(elided)"
    };
    let mut out: Vec<(String, String)> = contract_headers(
        delivery_id,
        event,
        n,
        ts,
        elided.into(),
        elided.into(),
        altered.content_type,
    )
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in caller.iter() {
        let name = k.to_ascii_lowercase();
        let shown = crate::journal::mask_header(&name, v);
        match out.iter_mut().find(|(o, _)| *o == name) {
            Some(slot) => slot.1 = format!("{shown} (the caller's)"),
            None => out.push((name, shown)),
        }
    }
    out
}

fn timed_out(limit: Duration) -> String {
    format!("timed out after {} ms", limit.as_millis())
}
