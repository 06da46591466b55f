//! The battery: each case's requests, signed as the outbox signs
//! (`engine::signed_headers`), and what it expects (docs/receiver-audit.md);
//! the verdicts are in `verdict.rs`, cases 9 and 10 in `hostile.rs`.

use actix_web::web::Bytes;
use serde_json::{json, Value};
use shared::headers as h;

use super::target::{case, Case, Shot, Target};
use super::verdict::Expect;

/// Copies of the genuine delivery sent at once.
const PARALLEL_COPIES: usize = 20;

/// The battery for `t`, in the order it is sent.
pub fn battery(t: &Target) -> Vec<Case> {
    let mut cases = signature_cases(t);
    cases.extend(timestamp_cases(t));
    cases.extend(duplicate_cases(t));
    cases.push(conflicting_case(t));
    cases.extend(body_cases(t));
    cases.push(super::hostile::big_unsigned(t));
    cases.push(super::hostile::drip_case(t));
    cases
}

/// Cases 1 to 3: the genuine delivery, tampered bodies, bad signatures.
fn signature_cases(t: &Target) -> Vec<Case> {
    let genuine = Bytes::from(t.body.clone());
    let signed = |body: &Bytes, id: &str| signed(t, body, id, None);
    let own = |name: &str| format!("{}_audit_{name}", t.delivery_id);
    let original = signed(&genuine, &t.delivery_id);
    let with_headers = |body: Vec<u8>, headers: &[(&'static str, String)]| Shot {
        body: Bytes::from(body),
        headers: headers.to_vec(),
    };
    vec![
        case(
            "genuine",
            "2xx",
            Expect::Accepted(GENUINE),
            vec![shot(&genuine, &original)],
        ),
        case(
            "value_changed",
            "4xx: a value changed after signing, original signature",
            Expect::Refused(CHANGED),
            vec![with_headers(changed_value(&t.body), &original)],
        ),
        case(
            "reserialised",
            "4xx: the same JSON re-spaced, then reordered, original signature",
            Expect::Refused(RESERIALISED),
            vec![
                with_headers(respaced(&t.body), &original),
                with_headers(reserialised(&t.body), &original),
            ],
        ),
        case(
            "wrong_secret",
            "4xx: signed with a wrong secret",
            Expect::Refused(WRONG_SECRET),
            vec![shot(
                &genuine,
                &wrong_secret(t, &genuine, &own("wrong_secret")),
            )],
        ),
        case(
            "missing_signature",
            "4xx: no X-Webhook-Secret, no webhook-signature",
            Expect::Refused(MISSING),
            vec![shot(
                &genuine,
                &without_signatures(signed(&genuine, &own("missing"))),
            )],
        ),
        case(
            "garbage_signature",
            "4xx: a garbage, then an empty signature",
            Expect::Refused(GARBAGE),
            garbage(&genuine, signed(&genuine, &own("garbage"))),
        ),
        case(
            "rotation_list",
            "2xx: webhook-signature lists one valid entry among invalid ones",
            Expect::Accepted(ROTATION),
            vec![shot(
                &genuine,
                &rotation(signed(&genuine, &own("rotation"))),
            )],
        ),
    ]
}

/// Case 4: a valid signature over a `webhook-timestamp` 10 minutes old,
/// then 10 minutes ahead.
fn timestamp_cases(t: &Target) -> Vec<Case> {
    let genuine = Bytes::from(t.body.clone());
    let now = chrono::Utc::now().timestamp();
    let at = |name: &str, ts: i64| {
        let id = format!("{}_audit_{name}", t.delivery_id);
        crate::engine::signed_headers(&t.secrets, &id, t.event, 1, ts, &genuine, None).to_vec()
    };
    vec![
        case(
            "stale_timestamp",
            "4xx: webhook-timestamp 10 minutes old, validly signed (2xx: info)",
            Expect::RefusedElseInfo(STALE),
            vec![shot(&genuine, &at("stale", now - 600))],
        ),
        case(
            "future_timestamp",
            "4xx: webhook-timestamp 10 minutes ahead, validly signed (2xx: info)",
            Expect::RefusedElseInfo(FUTURE),
            vec![shot(&genuine, &at("future", now + 600))],
        ),
    ]
}

/// Case 5: the genuine delivery again, then 20 copies at once.
fn duplicate_cases(t: &Target) -> Vec<Case> {
    let genuine = Bytes::from(t.body.clone());
    let original = signed(t, &genuine, &t.delivery_id, None);
    let repeated = case(
        "repeated",
        "2xx or 409, never 5xx",
        Expect::OkOrConflict,
        vec![shot(&genuine, &original)],
    );
    let copies = (0..PARALLEL_COPIES)
        .map(|_| shot(&genuine, &original))
        .collect();
    let mut parallel = case(
        "parallel_copies",
        "20 at once: each 2xx or 409, never 5xx",
        Expect::OkOrConflict,
        copies,
    );
    parallel.parallel = true;
    parallel.state_unchanged = Some(DUPLICATE);
    let mut repeated = repeated;
    repeated.state_unchanged = Some(DUPLICATE);
    vec![repeated, parallel]
}

/// Case 6: the opposite outcome, validly signed, after the genuine one.
fn conflicting_case(t: &Target) -> Case {
    let mut v: Value = serde_json::from_slice(&t.body).unwrap_or_else(|_| json!({}));
    let job_id = v["job_id"].clone();
    let event = if v["status"] == "success" {
        v["status"] = json!("failed");
        v["result"] = json!({"status": "failed", "job_id": job_id, "error": {
            "code": "OCR_FAILURE", "stage": "OCR",
            "details": {"reason": "audit: a later, conflicting outcome"}}});
        shared::WebhookEvent::Failed
    } else {
        v["status"] = json!("success");
        v["result"] = json!({"status": "success", "job_id": job_id, "result": {}});
        shared::WebhookEvent::Completed
    };
    let body = Bytes::from(shared::wire::compact_json(&v));
    let id = format!("{}_audit_conflict", t.delivery_id);
    let ts = chrono::Utc::now().timestamp();
    let headers = crate::engine::signed_headers(&t.secrets, &id, event, 1, ts, &body, None);
    let mut c = case(
        "conflicting_outcome",
        "never 5xx; with state_url, not applied",
        Expect::NotServerError,
        vec![shot(&body, &headers)],
    );
    c.state_unchanged = Some(CONFLICT);
    c
}

/// Cases 7 and 8: forward compatibility, malformed and misdirected bodies.
fn body_cases(t: &Target) -> Vec<Case> {
    let genuine = Bytes::from(t.body.clone());
    let own = |name: &str| format!("{}_audit_{name}", t.delivery_id);
    let signed = |body: &Bytes, id: &str| signed(t, body, id, None);
    let edit = |f: &dyn Fn(&mut Value)| edited(&t.body, f);
    let extra = edit(&|v| v["camber_added_later"] = json!({"note": "a field Camber may add"}));
    let unknown_status = edit(&|v| v["status"] = json!("superseded"));
    let unknown_job = edit(&|v| {
        v["camber_job_id"] = json!("cmb_audit_unknown");
        v["job_id"] = json!("audit-unknown-job");
        v["result"]["job_id"] = json!("audit-unknown-job");
    });
    let malformed = Bytes::from(t.body[..t.body.len() / 2].to_vec());
    vec![
        case(
            "unknown_field",
            "2xx: an unknown extra field, validly signed",
            Expect::Accepted(UNKNOWN_FIELD),
            vec![shot(&extra, &signed(&extra, &own("field")))],
        ),
        case(
            "unknown_status",
            "4xx or 2xx (ignored), never 5xx: an unknown `status`",
            Expect::NotServerError,
            vec![shot(
                &unknown_status,
                &signed(&unknown_status, &own("status")),
            )],
        ),
        case(
            "malformed_json",
            "4xx: validly signed malformed JSON",
            Expect::Refused(MALFORMED),
            vec![shot(&malformed, &signed(&malformed, &own("malformed")))],
        ),
        case(
            "wrong_content_type",
            "4xx: validly signed, Content-Type text/plain",
            Expect::RefusedElseInfo(CONTENT_TYPE),
            vec![shot(
                &genuine,
                &self::signed(t, &genuine, &own("content_type"), Some("text/plain")),
            )],
        ),
        case(
            "unknown_job",
            "4xx: validly signed, for a job the receiver never submitted",
            Expect::RefusedElseInfo(UNKNOWN_JOB),
            vec![shot(&unknown_job, &signed(&unknown_job, &own("job")))],
        ),
    ]
}

const GENUINE: &str = "the genuine delivery, validly signed, was not accepted: check the secret the receiver verifies with";
const CHANGED: &str = "accepted a body changed after signing: the signature is not verified, or not over the raw bytes";
const RESERIALISED: &str = "accepted re-serialised JSON with the original signature: the signature is probably verified over re-serialised JSON, not the raw bytes";
const WRONG_SECRET: &str =
    "accepted a body signed with a wrong secret: the signature is not verified";
const MISSING: &str =
    "accepted a webhook without any signature header: a missing signature must be refused";
const GARBAGE: &str = "accepted a garbage or empty signature: the signature is not verified";
const ROTATION: &str = "refused a webhook-signature list with one valid entry: during a secret rotation every entry must be tried";
const STALE: &str = "accepted a webhook-timestamp 10 minutes old: if you verify webhook-signature, refuse timestamps outside a tolerance (5 min); if you verify only X-Webhook-Secret, a captured delivery can be replayed at any time";
const FUTURE: &str = "accepted a webhook-timestamp 10 minutes ahead: if you verify webhook-signature, refuse timestamps outside a tolerance (5 min); if you verify only X-Webhook-Secret, replays are not bounded in time";
const CONFLICT: &str = "applied a later, conflicting outcome: a job's first outcome must stand (compare before you write)";
const DUPLICATE: &str =
    "a duplicate of the applied delivery changed the state: apply each delivery once";
const UNKNOWN_FIELD: &str = "refused a validly signed body with an unknown extra field: ignore fields you do not know (forward compatibility)";
const MALFORMED: &str = "accepted malformed JSON: it cannot have been parsed";
const CONTENT_TYPE: &str = "accepted a body declared text/plain: harmless when verified, but the receiver does not check Content-Type";
const UNKNOWN_JOB: &str = "accepted a webhook for a job it never submitted (ignored?): a 404 tells the sender, and you, that something is off";

fn shot(body: &Bytes, headers: &[(&'static str, String)]) -> Shot {
    Shot {
        body: body.clone(),
        headers: headers.to_vec(),
    }
}

/// The contract's headers for `body` under message id `id`, now.
fn signed(
    t: &Target,
    body: &[u8],
    id: &str,
    content_type: Option<&str>,
) -> Vec<(&'static str, String)> {
    let ts = chrono::Utc::now().timestamp();
    crate::engine::signed_headers(&t.secrets, id, t.event, 1, ts, body, content_type).to_vec()
}

fn wrong_secret(t: &Target, body: &[u8], id: &str) -> Vec<(&'static str, String)> {
    let wrong: Vec<String> = t
        .secrets
        .iter()
        .map(|s| format!("{s}-not-the-secret"))
        .collect();
    let ts = chrono::Utc::now().timestamp();
    crate::engine::signed_headers(&wrong, id, t.event, 1, ts, body, None).to_vec()
}

fn without_signatures(mut headers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    headers.retain(|(k, _)| *k != h::WEBHOOK_SECRET && *k != h::STD_WEBHOOK_SIGNATURE);
    headers
}

fn replaced(
    mut headers: Vec<(&'static str, String)>,
    name: &str,
    value: &str,
) -> Vec<(&'static str, String)> {
    for (k, v) in &mut headers {
        if *k == name {
            *v = value.to_owned();
        }
    }
    headers
}

fn garbage(body: &Bytes, headers: Vec<(&'static str, String)>) -> Vec<Shot> {
    let junk = replaced(headers.clone(), h::WEBHOOK_SECRET, "not-a-signature");
    let junk = replaced(junk, h::STD_WEBHOOK_SIGNATURE, "v1,bm90LWEtc2lnbmF0dXJl");
    let empty = replaced(headers, h::WEBHOOK_SECRET, "");
    let empty = replaced(empty, h::STD_WEBHOOK_SIGNATURE, "");
    vec![shot(body, &junk), shot(body, &empty)]
}

/// The valid `webhook-signature` entries between two invalid ones.
fn rotation(headers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let valid = (headers.iter())
        .find(|(k, _)| *k == h::STD_WEBHOOK_SIGNATURE)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let list = format!("v1,b2xkLXNlY3JldC1zaWduYXR1cmU= {valid} v1,YW5vdGhlci1vbmU=");
    replaced(headers, h::STD_WEBHOOK_SIGNATURE, &list)
}

/// The body with one value changed (the timestamp's last digit), the
/// rest byte for byte.
fn changed_value(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    let text = String::from_utf8_lossy(body);
    if let Some(at) = text.find("\"timestamp\":\"") {
        let start = at + "\"timestamp\":\"".len();
        if let Some(end) = text[start..].find('"') {
            let last = start + end - 1;
            out[last] = if out[last] == b'1' { b'2' } else { b'1' };
            return out;
        }
    }
    edited(body, &|v| v["audit_changed"] = json!(true)).to_vec()
}

/// The same JSON in the same key order, pretty-printed: what a receiver
/// that verifies over its own re-serialisation (keys kept in order) takes
/// for the original.
fn respaced(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => serde_json::to_vec_pretty(&v).unwrap_or_default(),
        Err(_) => body.to_vec(),
    }
}

/// The same JSON, its top-level keys reversed, pretty-printed.
fn reserialised(body: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let reversed: serde_json::Map<String, Value> = map.into_iter().rev().collect();
    serde_json::to_vec_pretty(&Value::Object(reversed)).unwrap_or_default()
}

fn edited(body: &[u8], f: &dyn Fn(&mut Value)) -> Bytes {
    let mut v: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    f(&mut v);
    Bytes::from(shared::wire::compact_json(&v))
}
