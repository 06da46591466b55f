//! What a case expects, and its verdict on the answers with a reason a
//! developer can act on.

use super::report::{Observed, Verdict};

/// What a case expects of every answer.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// 2xx; else the reason.
    Accepted(&'static str),
    /// 4xx; a 2xx fails with the reason.
    Refused(&'static str),
    /// 2xx or 409, never 5xx.
    OkOrConflict,
    /// 4xx, or 2xx (ignored); never 5xx.
    NotServerError,
    /// 4xx; a 2xx is `info` with the reason.
    RefusedElseInfo(&'static str),
    /// 4xx (or the connection closed) within this many ms.
    RefusedWithin(u64),
    /// An answer or a close; still reading at the audit's limit is `info`.
    Drip,
}

/// A case's verdict on its answers, and the reason.
pub fn judge(expect: Expect, observed: &[Observed]) -> (Verdict, String) {
    let seen = || {
        observed
            .iter()
            .map(Observed::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match expect {
        Expect::RefusedWithin(ms) => return refused_within(ms, observed),
        Expect::Drip => return dripped(observed),
        _ => {}
    }
    if let Some(o) = observed.iter().find(|o| o.is_5xx() || o.status.is_none()) {
        let what = o.describe();
        return (Verdict::Fail, format!("answered {what}: a receiver must never fail (5xx) or hang on a webhook it can judge; answers: {}", seen()));
    }
    let all = |f: fn(&Observed) -> bool| observed.iter().all(f);
    match expect {
        Expect::Accepted(why) if !all(Observed::is_2xx) => (Verdict::Fail, format!("{why} (answers: {})", seen())),
        Expect::Refused(why) if !all(Observed::is_4xx) => (Verdict::Fail, format!("{why} (answers: {})", seen())),
        Expect::RefusedElseInfo(why) if !all(Observed::is_4xx) => (Verdict::Info, format!("{why} (answers: {})", seen())),
        Expect::OkOrConflict if !all(|o| o.is_2xx() || o.status == Some(409)) => (
            Verdict::Fail,
            format!("answered a repeated delivery with something else than 2xx or 409: duplicates must be acknowledged (answers: {})", seen()),
        ),
        Expect::NotServerError if !all(|o| o.is_2xx() || o.is_4xx()) => (Verdict::Fail, format!("expected 4xx or 2xx (answers: {})", seen())),
        _ => (Verdict::Pass, format!("as expected (answers: {})", seen())),
    }
}

fn refused_within(ms: u64, observed: &[Observed]) -> (Verdict, String) {
    let Some(o) = observed.first() else {
        return (Verdict::Info, "not sent".into());
    };
    let (what, took) = (o.describe(), o.latency_ms);
    let timed_out = o
        .error
        .as_deref()
        .is_some_and(|e| e.starts_with("timed out"));
    match o.status {
        Some(_) if o.is_2xx() => (Verdict::Fail, format!("accepted an unsigned 5 MB body ({what}): verify the signature and cap the body size before reading it")),
        Some(_) if o.is_5xx() => (Verdict::Fail, format!("answered {what} to an unsigned 5 MB body: cap the body size (413)")),
        _ if took > ms || timed_out => (Verdict::Fail, format!("took {took} ms to refuse a 5 MB body ({what}): it reads the whole body first; cap the size by Content-Length")),
        Some(_) => (Verdict::Pass, format!("refused ({what}) after {took} ms")),
        None => (Verdict::Pass, format!("closed the connection after {took} ms ({what})")),
    }
}

fn dripped(observed: &[Observed]) -> (Verdict, String) {
    let Some(o) = observed.first() else {
        return (Verdict::Info, "not sent".into());
    };
    let took = o.latency_ms;
    match (o.status, o.error.as_deref()) {
        (Some(s), _) if s >= 500 => (Verdict::Fail, format!("answered {s} to a slow sender after {took} ms")),
        (Some(s), _) => (Verdict::Pass, format!("answered {s} after {took} ms")),
        (None, Some(e)) if e.starts_with("still reading") => (Verdict::Info, format!("{e}: a slow sender holds one of the receiver's connections at least that long; set a body read timeout")),
        (None, Some(e)) if e.starts_with("closed") => (Verdict::Pass, format!("closed the connection after {took} ms")),
        (None, e) => (Verdict::Info, format!("not judged: {}", e.unwrap_or("no answer"))),
    }
}
