//! Cases 9 and 10, a hostile sender: an unsigned 5 MB body, and a body
//! dripped one byte every 200 ms over a raw connection (through the same
//! destination policy as every other request).

use std::time::Duration;

use actix_web::web::Bytes;
use shared::headers as h;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::report::{excerpt, Observed, EXCERPT_BYTES};
use super::target::{case, Case, Shot, Target};
use super::verdict::Expect;

/// The unsigned body's size.
const BIG_BYTES: usize = 5 * 1024 * 1024;
/// How fast a big body must be refused.
pub const BIG_WITHIN_MS: u64 = 1000;
/// The drip's pace.
const DRIP_EVERY: Duration = Duration::from_millis(200);

/// Case 9: 5 MB, no signature.
pub fn big_unsigned(t: &Target) -> Case {
    let mut body = Vec::with_capacity(BIG_BYTES);
    body.extend_from_slice(b"{\"pad\":\"");
    body.resize(BIG_BYTES - 2, b'a');
    body.extend_from_slice(b"\"}");
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        (h::STD_WEBHOOK_ID, format!("{}_audit_big", t.delivery_id)),
        (h::EVENT, t.event.as_str().to_owned()),
    ];
    case(
        "big_unsigned_body",
        "4xx within a second: an unsigned 5 MB body",
        Expect::RefusedWithin(BIG_WITHIN_MS),
        vec![Shot {
            body: Bytes::from(body),
            headers,
        }],
    )
}

/// Case 10: the genuine delivery, signed, its body dripped.
pub fn drip_case(t: &Target) -> Case {
    let body = Bytes::from(t.body.clone());
    let id = format!("{}_audit_drip", t.delivery_id);
    let ts = chrono::Utc::now().timestamp();
    let headers = crate::engine::signed_headers(&t.secrets, &id, t.event, 1, ts, &body, None);
    let mut c = case(
        "slow_sender",
        "an answer or a close within the receiver's own time limit (one byte every 200 ms)",
        Expect::Drip,
        vec![Shot {
            body,
            headers: headers.to_vec(),
        }],
    );
    c.drip = true;
    c
}

/// Sends `shot` over a raw connection, one body byte every 200 ms, until
/// the receiver answers or closes, or the delivery timeout passes.
pub async fn drip(t: &Target, shot: &Shot) -> Observed {
    let start = Instant::now();
    let outcome = tokio::time::timeout(t.timeout, drip_exchange(t, shot)).await;
    let latency_ms = start.elapsed().as_millis() as u64;
    match outcome {
        Ok(Ok(bytes)) => Observed {
            status: parse_status(&bytes),
            latency_ms,
            excerpt: Some(excerpt(&bytes)),
            error: bytes
                .is_empty()
                .then(|| "closed without an answer".to_owned()),
        },
        Ok(Err(e)) => Observed {
            latency_ms,
            error: Some(e),
            ..Observed::default()
        },
        Err(_) => Observed {
            latency_ms,
            error: Some(format!(
                "still reading after {} ms (the audit's limit)",
                t.timeout.as_millis()
            )),
            ..Observed::default()
        },
    }
}

async fn drip_exchange(t: &Target, shot: &Shot) -> Result<Vec<u8>, String> {
    let uri: actix_web::http::Uri = t.url.parse().map_err(|e| format!("{e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("not run: the drip is sent over plain http only".into());
    }
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let mut allowed = None;
    for a in addrs {
        if t.policy.check_ip(a.ip()).is_ok() {
            allowed = Some(a);
            break;
        }
    }
    let addr = allowed.ok_or("the destination policy refuses every address of the host")?;
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n");
    for (k, v) in &shot.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        shot.body.len()
    ));
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = [0u8; EXCERPT_BYTES];
    for byte in shot.body.iter() {
        tokio::select! {
            n = s.read(&mut answer) => {
                let n = n.map_err(|e| e.to_string())?;
                return Ok(answer[..n].to_vec());
            }
            _ = tokio::time::sleep(DRIP_EVERY) => {}
        }
        if s.write_all(&[*byte]).await.is_err() {
            break;
        }
    }
    let n = s.read(&mut answer).await.map_err(|e| e.to_string())?;
    Ok(answer[..n].to_vec())
}

/// The status of an HTTP/1.1 answer's first line.
fn parse_status(bytes: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(bytes.get(..bytes.len().min(16))?).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}
