//! The in-memory journal of API requests (`GET /_mock/requests`), newest
//! first, bounded by entries and by bytes; secrets in headers are masked
//! before they are kept, and bodies are kept raw (at most
//! [`BODY_KEEP`] bytes of each), parsed only when a page is read. An entry
//! and its body are in `entry`, the list filters in `filter`, the masking
//! of secrets in `mask`; the journal itself (record, page, clear) here.

pub mod entry;
pub mod filter;
mod mask;

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::wait::Changes;

pub use entry::{Entry, JournalBody, BODY_KEEP};
pub use filter::{Filter, PathMatch};
pub use mask::{mask_header, mask_secret};

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
    use serde_json::Value;

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
