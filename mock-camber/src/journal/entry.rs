//! A journal entry and its request body as kept: the first [`BODY_KEEP`]
//! bytes, a submit's `webhook.headers` values masked, written out from the
//! kept bytes themselves.

use serde::Serialize;
use serde_json::Value;

use super::mask::mask_secret;

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
    pub(super) fn bytes(&self) -> usize {
        let headers: usize = (self.headers.iter())
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len) + 48)
            .sum();
        256 + self.path.len() + headers + self.body.bytes()
    }
}
