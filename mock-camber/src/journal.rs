//! The in-memory journal of API requests (`GET /_mock/requests`), newest
//! first, bounded; secrets in headers are masked before they are kept.

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(skip)]
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    pub tenant: Option<String>,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
    pub status: u16,
}

/// The parsed body of a request, left in its extensions by the handler
/// that read it, for the journal.
pub struct JournalBody(pub Value);

pub struct Journal {
    cap: usize,
    inner: Mutex<(u64, VecDeque<Entry>)>,
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
    match value.split_once(' ') {
        Some((scheme, secret)) => format!("{scheme} {}", crate::tenant::mask(secret)),
        None => crate::tenant::mask(value),
    }
}

impl Journal {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Mutex::new((0, VecDeque::with_capacity(cap.min(1024)))),
        }
    }

    pub fn record(&self, mut e: Entry) {
        if self.cap == 0 {
            return;
        }
        let mut g = self.inner.lock();
        g.0 += 1;
        e.seq = g.0;
        if g.1.len() == self.cap {
            g.1.pop_back();
        }
        g.1.push_front(e);
    }

    /// A page, newest first, of entries older than `before` (a sequence
    /// number from a previous page's cursor).
    pub fn page(&self, before: Option<u64>, limit: usize) -> (Vec<Entry>, Option<u64>) {
        let g = self.inner.lock();
        let mut it =
            g.1.iter()
                .filter(|e| before.is_none_or(|b| e.seq < b))
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
        self.inner.lock().1.clear();
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
            body: Value::Null,
            status: 200,
        }
    }

    #[test]
    fn pages_newest_first_and_drops_the_oldest_past_capacity() {
        let j = Journal::new(3);
        for p in ["/a", "/b", "/c", "/d"] {
            j.record(entry(p));
        }
        let (first, next) = j.page(None, 2);
        assert_eq!(
            first.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["/d", "/c"]
        );
        let (second, next2) = j.page(next, 2);
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
}
