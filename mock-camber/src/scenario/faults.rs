//! What goes wrong on purpose, typed: at submit ([`SubmitFault`], drawn
//! from the runtime config's `submit_error_rate`) and with a job's webhook
//! ([`WebhookFault`], from its scenario's `webhook` knobs). The JSON a user
//! writes is unchanged (`spec`, `/_mock/config`); these are its internal
//! form. A new webhook fault is a variant here plus its behaviour where it
//! acts (the sender, for those that alter an attempt).

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};

/// An error injected into a submit instead of creating the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitFault {
    /// 503, `Retry-After: 1`.
    Unavailable,
    /// 429, `Retry-After: 1`.
    TooManyRequests,
}

impl SubmitFault {
    /// A submit's draw: with probability `rate` (`roll` in [0, 1)), one of
    /// the two, evenly (`pick`).
    pub fn draw(rate: f64, roll: f64, pick: bool) -> Option<Self> {
        (rate > 0.0 && roll < rate).then_some(if pick {
            Self::Unavailable
        } else {
            Self::TooManyRequests
        })
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Unavailable => "injected: Camber is unavailable, retry later",
            Self::TooManyRequests => "injected: too many requests, retry later",
        }
    }

    pub fn retry_after_secs(self) -> u64 {
        1
    }
}

/// One thing done to a job's webhook on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFault {
    /// Never sent (`webhook.mode: drop`).
    Drop,
    /// The first attempt waits this long (`mode: delay`, `delay_ms`).
    Delay(u64),
    /// The event is sent this many times (`mode: duplicate`, `count`).
    Sends(u32),
    /// Signed with wrong secrets (`bad_signature`).
    BadSignature,
    /// The genuine body sent with this `Content-Type` instead of
    /// `application/json` (`content_type`).
    ContentType(String),
}

impl WebhookFault {
    /// Whether the sender applies it to each attempt (so the delivery row
    /// stores it, in its `fault` column).
    pub fn at_send(&self) -> bool {
        matches!(self, Self::BadSignature | Self::ContentType(_))
    }
}

/// A job's webhook faults; none is a plain delivery, sent once at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookFaults(pub Vec<WebhookFault>);

impl WebhookFaults {
    pub fn iter(&self) -> impl Iterator<Item = &WebhookFault> {
        self.0.iter()
    }

    pub fn has(&self, f: &WebhookFault) -> bool {
        self.0.contains(f)
    }

    pub fn dropped(&self) -> bool {
        self.has(&WebhookFault::Drop)
    }

    pub fn delay_ms(&self) -> u64 {
        (self.iter())
            .find_map(|f| match f {
                WebhookFault::Delay(ms) => Some(*ms),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// How many times the event is sent.
    pub fn sends(&self) -> u32 {
        (self.iter())
            .find_map(|f| match f {
                WebhookFault::Sends(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// Those the sender applies to every attempt.
    pub fn at_send(&self) -> Self {
        Self(self.iter().filter(|f| f.at_send()).cloned().collect())
    }
}

/// A `webhook.content_type` must be a header value: visible ASCII, at
/// most 200 characters, not empty.
pub fn check_content_type(ct: &str) -> Result<(), String> {
    if !ct.trim().is_empty() && ct.len() <= 200 && ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err("`webhook.content_type` must be 1 to 200 printable ASCII characters".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submit_fault_is_drawn_below_the_rate_only() {
        assert_eq!(SubmitFault::draw(0.0, 0.0, true), None);
        assert_eq!(SubmitFault::draw(0.5, 0.6, true), None);
        assert_eq!(
            SubmitFault::draw(0.5, 0.4, true),
            Some(SubmitFault::Unavailable)
        );
        assert_eq!(
            SubmitFault::draw(1.0, 0.99, false),
            Some(SubmitFault::TooManyRequests)
        );
        assert_eq!(SubmitFault::Unavailable.status().as_u16(), 503);
        assert_eq!(SubmitFault::TooManyRequests.status().as_u16(), 429);
    }
}
