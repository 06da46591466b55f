//! Sending an audit's requests: only to the job's own webhook URL, through
//! the destination policy, each bounded by the delivery timeout and by
//! [`EXCERPT_BYTES`] of answer read; then the report's one write.

use actix_web::web::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::cases;
use super::report::{excerpt, CaseReport, Observed, Verdict, EXCERPT_BYTES};
use super::state::StateRead;
use super::target::{Case, Shot, Target, CONTRACT_HEADERS};
use crate::store::Store;

/// Most requests of one audit in flight at once (the parallel case).
const MAX_IN_FLIGHT: usize = 32;

/// Runs the battery against `target`, then commits the report.
pub async fn run(store: Store, id: String, target: Target) {
    let client = crate::engine::client(target.timeout, MAX_IN_FLIGHT, &target.policy);
    let mut reports = Vec::new();
    for case in cases::battery(&target) {
        reports.push(run_case(&client, &target, case).await);
    }
    let cases = serde_json::to_value(&reports).unwrap_or_default();
    let at = shared::wire::rfc3339(chrono::Utc::now());
    let done = store
        .write(move |c| crate::store::finish_audit(c, &id, &at, &cases))
        .await;
    if let Err(e) = done {
        log::error!("could not record an audit's report: {e}");
    }
}

async fn run_case(client: &awc::Client, target: &Target, case: Case) -> CaseReport {
    let check = case.state_unchanged.zip(target.state.as_ref());
    let before = match check {
        Some((_, s)) => Some(read_state(client, target, s).await),
        None => None,
    };
    let sends = case.shots.iter().map(|shot| send(client, target, shot));
    let observed: Vec<Observed> = if case.drip {
        let mut out = Vec::new();
        for shot in &case.shots {
            out.push(super::hostile::drip(target, shot).await);
        }
        out
    } else if case.parallel {
        futures_util::future::join_all(sends).await
    } else {
        let mut out = Vec::new();
        for s in sends {
            out.push(s.await);
        }
        out
    };
    let (mut verdict, mut reason) = super::verdict::judge(case.expect, &observed);
    if let (Some((why, s)), Some(before)) = (check, before) {
        match (before, read_state(client, target, s).await) {
            (Ok(b), Ok(a)) if b != a => {
                verdict = Verdict::Fail;
                reason = format!("{why}: the state went from {b:?} to {a:?}");
            }
            (Ok(b), Ok(_)) => reason = format!("{reason}; the state stayed {b:?}"),
            (Err(e), _) | (_, Err(e)) => reason = format!("{reason}; state not read: {e}"),
        }
    }
    CaseReport {
        name: case.name.to_owned(),
        expected: case.expected.to_owned(),
        observed,
        verdict,
        reason,
    }
}

async fn read_state(client: &awc::Client, t: &Target, s: &StateRead) -> Result<String, String> {
    s.read(client, &t.policy, t.timeout, &t.caller_job_id).await
}

/// One request: the caller's headers (never over the contract's), then
/// the shot's; the answer's status and excerpt within the time limit.
async fn send(client: &awc::Client, target: &Target, shot: &Shot) -> Observed {
    if let Err(refused) = crate::engine::literal_refused(&target.policy, &target.url) {
        return Observed {
            error: Some(refused),
            ..Observed::default()
        };
    }
    // A connection each: a receiver answering HTTP/1.0 closes it without
    // `Connection: close`, and awc would hand the closed one to the next
    // case, which would then read as "no answer".
    let mut r = client.post(&target.url).force_close();
    for (k, v) in target.caller.iter() {
        let contract = CONTRACT_HEADERS.iter().any(|c| c.eq_ignore_ascii_case(k));
        if !contract && !k.eq_ignore_ascii_case("host") {
            r = r.insert_header((k.as_str(), v.as_str()));
        }
    }
    for (k, v) in &shot.headers {
        r = r.insert_header((*k, v.as_str()));
    }
    let start = Instant::now();
    let limit = target.timeout;
    let outcome = tokio::time::timeout(limit, exchange(r, shot.body.clone())).await;
    let latency_ms = start.elapsed().as_millis() as u64;
    match outcome {
        Ok(Ok((status, bytes))) => Observed {
            status: Some(status),
            latency_ms,
            excerpt: Some(excerpt(&bytes)),
            error: None,
        },
        Ok(Err(e)) => Observed {
            latency_ms,
            error: Some(e),
            ..Observed::default()
        },
        Err(_) => Observed {
            latency_ms,
            error: Some(format!("timed out after {} ms", limit.as_millis())),
            ..Observed::default()
        },
    }
}

async fn exchange(r: awc::ClientRequest, body: Bytes) -> Result<(u16, Vec<u8>), String> {
    let mut resp = r.send_body(body).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match resp.next().await {
            Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    Ok((status, bytes))
}
