//! The in-memory journal of API requests (`GET /_mock/requests`), newest
//! first, bounded; secrets in headers are masked before they are kept.

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
    pub body: Value,
    pub status: u16,
}

/// The parsed body of a request, left in its extensions by the handler
/// that read it, for the journal.
pub struct JournalBody(pub Value);

pub struct Journal {
    cap: usize,
    inner: Mutex<(u64, VecDeque<Entry>)>,
    changes: Changes,
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
    fn matches(&self, e: &Entry) -> bool {
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
    match value.split_once(' ') {
        Some((scheme, secret)) => format!("{scheme} {}", crate::tenant::mask(secret)),
        None => crate::tenant::mask(value),
    }
}

impl Journal {
    /// Every entry recorded bumps `changes`, which wakes long-poll waits.
    pub fn new(cap: usize, changes: Changes) -> Self {
        Self {
            cap,
            inner: Mutex::new((0, VecDeque::with_capacity(cap.min(1024)))),
            changes,
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
        drop(g);
        self.changes.bump();
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
        let mut it =
            g.1.iter()
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
        self.inner.lock().1.clear();
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
            body: Value::Null,
            status: 200,
        }
    }

    #[test]
    fn pages_newest_first_and_drops_the_oldest_past_capacity() {
        let j = Journal::new(3, Changes::new());
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
        let j = Journal::new(10, Changes::new());
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
}
