//! The in-memory journal of API requests (`GET /_mock/requests`), newest
//! first, bounded by entries and by bytes; secrets in headers are masked
//! before they are kept, and bodies are kept raw (at most
//! [`BODY_KEEP`] bytes of each), parsed only when a page is read.

use std::collections::VecDeque;

use parking_lot::Mutex;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use crate::wait::Changes;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(skip)]
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    pub tenant: Option<String>,
    pub headers: serde_json::Map<String, Value>,
    pub body: JournalBody,
    pub status: u16,
}

/// Most bytes of one request body the journal keeps.
pub const BODY_KEEP: usize = 16 * 1024;

/// A request body as the journal keeps it: its first [`BODY_KEEP`] bytes
/// and its whole length. Shown as the JSON it is when kept whole, else as
/// text, or as `{"truncated": true, "bytes": N, "excerpt": …}`.
#[derive(Debug, Clone, Default)]
pub struct JournalBody {
    kept: actix_web::web::Bytes,
    len: usize,
}

impl JournalBody {
    /// What the handler that read `body` leaves in the request's extensions.
    /// The values of a submit's `webhook.headers` are masked first.
    pub fn new(body: &[u8]) -> Self {
        let masked = mask_webhook_headers(body);
        let body = masked.as_deref().unwrap_or(body);
        Self {
            kept: actix_web::web::Bytes::copy_from_slice(&body[..body.len().min(BODY_KEEP)]),
            len: body.len(),
        }
    }

    fn bytes(&self) -> usize {
        self.kept.len()
    }

    /// As a JSON value tree (tests; a page is written without one).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `body` with every value of its `webhook.headers` masked, when it is a
/// JSON object that has some (`None`: keep it as it is). Only a body that
/// names `"headers"` at all is parsed.
fn mask_webhook_headers(body: &[u8]) -> Option<Vec<u8>> {
    const NEEDLE: &[u8] = b"headers";
    if !body.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let headers = v.get_mut("webhook")?.get_mut("headers")?.as_object_mut()?;
    for value in headers.values_mut() {
        if let Value::String(s) = value {
            *s = mask_secret(s);
        }
    }
    serde_json::to_vec(&v).ok()
}

/// A truncated body as shown.
#[derive(Serialize)]
struct Truncated<'a> {
    truncated: bool,
    bytes: usize,
    excerpt: std::borrow::Cow<'a, str>,
}

/// Written from the kept bytes themselves: a body that is JSON is spliced
/// in as it came (checked, never parsed into a tree), so a page costs
/// about its own size however big and nested its bodies are.
impl Serialize for JournalBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.len == 0 {
            return s.serialize_none();
        }
        if self.len > self.kept.len() {
            return Truncated {
                truncated: true,
                bytes: self.len,
                excerpt: String::from_utf8_lossy(&self.kept[..self.kept.len().min(1024)]),
            }
            .serialize(s);
        }
        match serde_json::from_slice::<&serde_json::value::RawValue>(&self.kept) {
            Ok(raw) => raw.serialize(s),
            Err(_) => s.serialize_str(&String::from_utf8_lossy(&self.kept)),
        }
    }
}

impl Entry {
    /// What the entry holds in memory, roughly.
    fn bytes(&self) -> usize {
        let headers: usize = (self.headers.iter())
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len) + 48)
            .sum();
        256 + self.path.len() + headers + self.body.bytes()
    }
}

pub struct Journal {
    cap: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
    changes: Changes,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    bytes: usize,
    entries: VecDeque<(Entry, usize)>,
}

/// `GET /_mock/requests` filters: `method=`, `path=` (exact, the query
/// string aside, or `/regex/` over the whole path with its query, as in
/// scenario rules) and `status=`.
#[derive(Default)]
pub struct Filter {
    pub method: Option<String>,
    pub path: Option<PathMatch>,
    pub status: Option<u16>,
}

pub enum PathMatch {
    Exact(String),
    Regex(Regex),
}

impl PathMatch {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
            Some(re) if s.len() >= 2 && !re.is_empty() && !re.starts_with('/') => Regex::new(re)
                .map(PathMatch::Regex)
                .map_err(|e| format!("`path`: bad regex: {e}")),
            _ => Ok(PathMatch::Exact(s.to_owned())),
        }
    }
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| e.method.eq_ignore_ascii_case(m))
            && self.status.is_none_or(|s| e.status == s)
            && self.path.as_ref().is_none_or(|p| match p {
                PathMatch::Exact(want) => {
                    e.path.split_once('?').map_or(e.path.as_str(), |(p, _)| p) == want
                        || e.path == *want
                }
                PathMatch::Regex(re) => re.is_match(&e.path),
            })
    }
}

/// Headers whose values are secrets: kept masked.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "x-webhook-secret",
    "x-api-key",
    "proxy-authorization",
];

pub fn mask_header(name: &str, value: &str) -> String {
    if !SECRET_HEADERS.contains(&name) {
        return value.to_owned();
    }
    mask_secret(value)
}

/// A secret as shown: `Scheme sk_l…1234`, or `sk_l…1234` without a scheme.
/// Every value of a caller's `webhook.headers` is shown so: its names are
/// free, so any of them may carry a receiver's credential.
pub fn mask_secret(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, secret)) => format!("{scheme} {}", crate::tenant::mask(secret)),
        None => crate::tenant::mask(value),
    }
}

impl Journal {
    /// At most `cap` entries and about `max_bytes` of memory; the oldest
    /// go first. Every entry recorded bumps `changes`, which wakes
    /// long-poll waits.
    pub fn new(cap: usize, max_bytes: usize, changes: Changes) -> Self {
        Self {
            cap,
            max_bytes,
            inner: Mutex::new(Inner::default()),
            changes,
        }
    }

    pub fn record(&self, mut e: Entry) {
        if self.cap == 0 {
            return;
        }
        let size = e.bytes();
        let mut g = self.inner.lock();
        g.seq += 1;
        e.seq = g.seq;
        g.bytes += size;
        g.entries.push_front((e, size));
        while g.entries.len() > self.cap || (g.bytes > self.max_bytes && g.entries.len() > 1) {
            if let Some((_, n)) = g.entries.pop_back() {
                g.bytes -= n;
            }
        }
        if g.entries.capacity() > 4 * g.entries.len().max(256) {
            g.entries.shrink_to_fit();
        }
        // Under the lock: a wait that re-checks sees the entry.
        if let Some((e, _)) = g.entries.front() {
            self.changes.recorded(e);
        }
    }

    /// Bytes held (roughly), for `/metrics`.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// A page, newest first, of entries older than `before` (a sequence
    /// number from a previous page's cursor).
    pub fn page(
        &self,
        filter: &Filter,
        before: Option<u64>,
        limit: usize,
    ) -> (Vec<Entry>, Option<u64>) {
        let g = self.inner.lock();
        let mut it = (g.entries.iter())
            .map(|(e, _)| e)
            .filter(|e| before.is_none_or(|b| e.seq < b) && filter.matches(e))
            .cloned();
        let items: Vec<Entry> = it.by_ref().take(limit).collect();
        let next = if it.next().is_some() {
            items.last().map(|e| e.seq)
        } else {
            None
        };
        (items, next)
    }

    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.entries = VecDeque::new();
        g.bytes = 0;
        drop(g);
        self.changes.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            seq: 0,
            at: String::new(),
            method: "GET".into(),
            path: path.into(),
            tenant: None,
            headers: Default::default(),
            body: JournalBody::default(),
            status: 200,
        }
    }

    #[test]
    fn pages_newest_first_and_drops_the_oldest_past_capacity() {
        let j = Journal::new(3, usize::MAX, Changes::new());
        for p in ["/a", "/b", "/c", "/d"] {
            j.record(entry(p));
        }
        let (first, next) = j.page(&Filter::default(), None, 2);
        assert_eq!(
            first.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["/d", "/c"]
        );
        let (second, next2) = j.page(&Filter::default(), next, 2);
        assert_eq!(
            second.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["/b"]
        );
        assert_eq!(next2, None);
    }

    #[test]
    fn secret_headers_are_masked() {
        assert_eq!(
            mask_header("authorization", "Bearer sk_live_abcdefgh1234"),
            "Bearer sk_l…1234"
        );
        assert_eq!(
            mask_header("content-type", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn filters_by_method_path_and_status() {
        let j = Journal::new(10, usize::MAX, Changes::new());
        for (m, p, st) in [
            ("POST", "/jobs", 201),
            ("GET", "/jobs/cmb_1?x=1", 200),
            ("GET", "/jobs/cmb_2/logs", 404),
            ("POST", "/jobs", 422),
        ] {
            let mut e = entry(p);
            e.method = m.into();
            e.status = st;
            j.record(e);
        }
        let paths = |f: Filter| -> Vec<String> {
            j.page(&f, None, 10).0.into_iter().map(|e| e.path).collect()
        };
        let post = || Some("post".to_owned());
        assert_eq!(
            paths(Filter {
                method: post(),
                ..Default::default()
            }),
            ["/jobs", "/jobs"]
        );
        assert_eq!(
            paths(Filter {
                method: post(),
                status: Some(201),
                ..Default::default()
            }),
            ["/jobs"]
        );
        let path = |p: &str| Some(PathMatch::parse(p).unwrap());
        assert_eq!(
            paths(Filter {
                path: path("/jobs/cmb_1"),
                ..Default::default()
            }),
            ["/jobs/cmb_1?x=1"],
            "exact ignores the query string"
        );
        assert_eq!(
            paths(Filter {
                path: path("/^/jobs/cmb_\\d+/"),
                ..Default::default()
            }),
            ["/jobs/cmb_2/logs", "/jobs/cmb_1?x=1"]
        );
        assert!(paths(Filter {
            path: path("/nope"),
            ..Default::default()
        })
        .is_empty());
        assert!(PathMatch::parse("/(/").is_err());
    }

    fn with_body(body: &[u8]) -> Entry {
        let mut e = entry("/jobs");
        e.body = JournalBody::new(body);
        e
    }

    #[test]
    fn a_page_of_bodies_round_trips_as_the_json_they_were() {
        let bodies: Vec<Vec<u8>> = vec![
            br#"{"app": "a", "input": {"n": [1, 2.5, -3e2, null, true], "s": "\u00e9\"x\""}}"#
                .to_vec(),
            b"[1,2,3]".to_vec(),
            br#""just a string""#.to_vec(),
            b"not json {".to_vec(),
            b"\xff\xfe bytes".to_vec(),
            Vec::new(),
            vec![b'x'; BODY_KEEP + 10],
        ];
        let j = Journal::new(100, usize::MAX, Changes::new());
        for b in &bodies {
            j.record(with_body(b));
        }
        let (items, _) = j.page(&Filter::default(), None, 100);
        let written: Value = serde_json::from_slice(&serde_json::to_vec(&items).unwrap()).unwrap();
        let shown: Vec<&Value> = written
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|e| &e["body"])
            .collect();
        // What a tree would have shown (the journal before).
        let want = |b: &[u8]| -> Value {
            if b.is_empty() {
                return Value::Null;
            }
            if b.len() > BODY_KEEP {
                let excerpt = String::from_utf8_lossy(&b[..1024]);
                return serde_json::json!({"truncated": true, "bytes": b.len(), "excerpt": excerpt});
            }
            serde_json::from_slice(b)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
        };
        for (b, got) in bodies.iter().zip(shown) {
            assert_eq!(*got, want(b), "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn writing_a_page_costs_about_its_own_size() {
        // 500 bodies of 16 KiB: objects of many small members, the worst
        // case for a tree (one allocation per key and value).
        let body: String = {
            let members: Vec<String> = (0..1400).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        assert!(body.len() <= BODY_KEEP);
        let j = Journal::new(1000, usize::MAX, Changes::new());
        for _ in 0..500 {
            j.record(with_body(body.as_bytes()));
        }
        let (items, _) = j.page(&Filter::default(), None, 500);
        let (cost, out) = crate::alloc_count::allocated_by(|| serde_json::to_vec(&items).unwrap());
        assert!(out.len() > 500 * body.len());
        assert!(
            cost <= 3 * out.len(),
            "writing a {} byte page allocated {cost} bytes",
            out.len()
        );
        // A page read into a tree first (as before) costs many times more.
        let (tree_cost, _) =
            crate::alloc_count::allocated_by(|| serde_json::to_value(&items).unwrap());
        assert!(tree_cost > 3 * out.len(), "a tree cost only {tree_cost}");
    }
}
