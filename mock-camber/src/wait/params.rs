//! A wait's parameters (`wait_ms`, `min_count`) and the answers of a wait
//! that ends unsatisfied (`408` with what matched so far).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use shared::error::codes;
use shared::ErrorBody;
use tokio::time::Instant;

use crate::error::ApiError;

/// The longest wait a request may ask for.
pub const MAX_WAIT_MS: u64 = 60_000;

/// A `wait_ms` value: whole milliseconds, 0 to [`MAX_WAIT_MS`].
pub fn parse_wait_ms(ms: &str) -> Result<u64, ApiError> {
    ms.parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_WAIT_MS)
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "`wait_ms` must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}"
            ))
        })
}

/// `wait_ms` and `min_count` of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub ms: u64,
    pub min_count: usize,
}

impl Wait {
    /// `None` without `wait_ms` or `min_count`: answer at once, as before.
    pub fn parse(wait_ms: Option<&str>, min_count: Option<&str>) -> Result<Option<Self>, ApiError> {
        let count = min_count
            .map(|s| {
                s.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "`min_count` must be a whole number of at least 1".into(),
                    )
                })
            })
            .transpose()?;
        // `min_count` alone is a wait of 0 ms: the items if there are that
        // many now, else 408 with what there is.
        let ms = match (wait_ms, count) {
            (None, None) => return Ok(None),
            (None, Some(_)) => "0",
            (Some(ms), _) => ms,
        };
        Ok(Some(Self {
            ms: parse_wait_ms(ms)?,
            min_count: count.unwrap_or(1),
        }))
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.ms)
    }
}

/// `408` with `WAIT_TIMEOUT` and what matched so far under `key`.
pub fn timed_out(message: String, key: &str, so_far: impl Serialize) -> HttpResponse {
    error_with(
        StatusCode::REQUEST_TIMEOUT,
        codes::WAIT_TIMEOUT,
        message,
        key,
        so_far,
    )
}

/// The error body, plus `key` holding what the caller would want to see.
pub fn error_with(
    status: StatusCode,
    code: &str,
    message: String,
    key: &str,
    with: impl Serialize,
) -> HttpResponse {
    let mut body =
        serde_json::to_value(ErrorBody::new(code, message)).expect("error bodies serialise");
    body[key] = serde_json::to_value(with).unwrap_or_default();
    HttpResponse::build(status).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_parameters_parse_and_refuse_bad_values() {
        assert_eq!(Wait::parse(None, None).unwrap(), None);
        assert_eq!(
            Wait::parse(Some("250"), None).unwrap(),
            Some(Wait {
                ms: 250,
                min_count: 1
            })
        );
        assert_eq!(
            Wait::parse(Some("0"), Some("3")).unwrap(),
            Some(Wait {
                ms: 0,
                min_count: 3
            })
        );
        for (w, m) in [
            (Some("60001"), None),
            (Some("-1"), None),
            (Some("1.5"), None),
            (Some("soon"), None),
            (Some("10"), Some("0")),
            (None, Some("0")),
        ] {
            assert!(Wait::parse(w, m).is_err(), "{w:?} {m:?}");
        }
        // `min_count` alone is a wait of 0 ms.
        assert_eq!(
            Wait::parse(None, Some("2")).unwrap(),
            Some(Wait {
                ms: 0,
                min_count: 2
            })
        );
    }
}
