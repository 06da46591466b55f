//! `GET /_mock/requests` filters, and the journal waits' too.

use regex::Regex;

use super::entry::Entry;

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
