//! `ApiError`: every failure a route answers, mapped to its status code
//! and the contract's JSON error body (`shared::ErrorBody`) in one place.
//! A store failure is logged and answered as 503 (storage unavailable, with
//! `Retry-After`) or a 500 that says nothing more.

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use shared::error::codes;
use shared::http::BodyError;
use shared::ErrorBody;

use crate::domain::FieldError;
use crate::store::StoreError;

/// The code of a 403 (an upload URL that is not valid).
pub const FORBIDDEN: &str = "FORBIDDEN";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (or not the JSON value expected): 400.
    #[error("{0}")]
    InvalidJson(String),
    /// JSON, but not a valid request: 422.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body could not be read: 413, 400 or 408.
    #[error("{}", body_message(.0))]
    Body(BodyError),
    /// The webhook's `X-Webhook-Secret`: 401.
    #[error("{0}")]
    Signature(SignatureError),
    /// An upload URL that is not valid (bad signature, expired): 403.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A body declared as something other than JSON: 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyKeyReused,
    /// A dependency cannot answer now; try again later: 503.
    #[error("{0}")]
    Unavailable(String),
    /// A failure the client can do nothing about; the cause is logged: 500.
    #[error("internal error; see the server log")]
    Internal(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Webhook-Secret")]
    Missing,
    #[error("X-Webhook-Secret does not match the body")]
    Mismatch,
}

fn body_message(e: &BodyError) -> String {
    match e {
        BodyError::TooLarge(limit) => format!("the body is larger than {limit} bytes"),
        BodyError::Broken(why) => format!("the body could not be read: {why}"),
        BodyError::TimedOut(after) => format!(
            "the request body did not arrive within {}s",
            after.as_secs_f64()
        ),
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::Body(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::InvalidRequest(e.message)
    }
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => codes::INVALID_JSON,
            ApiError::InvalidRequest(_) | ApiError::Body(BodyError::Broken(_)) => {
                codes::INVALID_REQUEST
            }
            ApiError::Body(BodyError::TooLarge(_)) => codes::PAYLOAD_TOO_LARGE,
            ApiError::Body(BodyError::TimedOut(_)) => codes::REQUEST_TIMEOUT,
            ApiError::Signature(_) => codes::UNAUTHENTICATED,
            ApiError::Forbidden(_) => FORBIDDEN,
            ApiError::NotFound(_) => codes::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => codes::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => codes::CONFLICT,
            ApiError::UnsupportedMediaType(_) => codes::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyKeyReused => codes::IDEMPOTENCY_KEY_REUSED,
            ApiError::Unavailable(_) => codes::SERVICE_UNAVAILABLE,
            ApiError::Store(e) if e.is_storage_unavailable() => codes::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Store(_) => codes::INTERNAL,
        }
    }

    /// The message the body carries: a store failure says only what the
    /// client can act on; the cause goes to the log.
    fn message(&self) -> String {
        match self {
            ApiError::Store(e) if e.is_storage_unavailable() => {
                "storage unavailable (disk full or read-only); nothing was saved, try again".into()
            }
            ApiError::Store(_) => ApiError::Internal(String::new()).to_string(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) | ApiError::Body(BodyError::Broken(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Body(BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Body(BodyError::TimedOut(_)) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Signature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(e) if e.is_storage_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Store(e) => log::error!("store: {e}"),
            ApiError::Internal(cause) => log::error!("internal error: {cause}"),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code())
            .json(ErrorBody::new(self.code(), self.message()));
        match self {
            // Nothing was acknowledged; the client may try again shortly.
            ApiError::Store(e) if e.is_storage_unavailable() => {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body may still come: close the connection.
            ApiError::Body(BodyError::TimedOut(_)) => {
                res.head_mut().set_connection_type(ConnectionType::Close);
            }
            _ => {}
        }
        res
    }
}

/// The 405 of a known path asked with another method (`Allow` is added by
/// `shared::http::configure_routes`).
pub fn method_not_allowed(_: &HttpRequest) -> HttpResponse {
    ApiError::MethodNotAllowed("this route does not accept that method").error_response()
}

/// The 404 of a path no route has.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound("no such route").error_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn body_of(res: HttpResponse) -> serde_json::Value {
        let bytes = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Each kind of failure with its status, code and message, as the
    /// routes' three error enums answered them before there was one.
    fn cases() -> Vec<(ApiError, u16, &'static str, &'static str)> {
        vec![
            (
                ApiError::InvalidJson("not JSON".into()),
                400,
                "INVALID_JSON",
                "not JSON",
            ),
            (
                ApiError::InvalidRequest("bad".into()),
                422,
                "INVALID_REQUEST",
                "bad",
            ),
            (
                BodyError::TooLarge(10).into(),
                413,
                "PAYLOAD_TOO_LARGE",
                "the body is larger than 10 bytes",
            ),
            (
                BodyError::Broken("reset".into()).into(),
                400,
                "INVALID_REQUEST",
                "the body could not be read: reset",
            ),
            (
                BodyError::TimedOut(Duration::from_millis(1500)).into(),
                408,
                "REQUEST_TIMEOUT",
                "the request body did not arrive within 1.5s",
            ),
            (
                ApiError::Signature(SignatureError::Missing),
                401,
                "UNAUTHENTICATED",
                "missing X-Webhook-Secret",
            ),
            (ApiError::Forbidden("expired"), 403, "FORBIDDEN", "expired"),
            (
                ApiError::NotFound("no job with this id"),
                404,
                "NOT_FOUND",
                "no job with this id",
            ),
            (ApiError::Conflict("other".into()), 409, "CONFLICT", "other"),
            (
                ApiError::IdempotencyKeyReused,
                409,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with another request body",
            ),
            (
                ApiError::Unavailable("later".into()),
                503,
                "SERVICE_UNAVAILABLE",
                "later",
            ),
            (
                ApiError::Store(StoreError::Blocking("the cause".into())),
                500,
                "INTERNAL",
                "internal error; see the server log",
            ),
            (
                ApiError::Store(StoreError::StorageFull("disk".into())),
                503,
                "SERVICE_UNAVAILABLE",
                "storage unavailable (disk full or read-only); nothing was saved, try again",
            ),
        ]
    }

    #[actix_rt::test]
    async fn each_failure_has_one_status_code_and_message() {
        for (e, status, code, message) in cases() {
            let res = e.error_response();
            assert_eq!(res.status().as_u16(), status, "{e:?}");
            let retry = res.headers().get(RETRY_AFTER).cloned();
            assert_eq!(
                retry.is_some(),
                status == 503 && code == "SERVICE_UNAVAILABLE" && matches!(e, ApiError::Store(_)),
                "{e:?}"
            );
            let body = body_of(res).await;
            assert_eq!(body["error"]["code"], code, "{e:?}");
            assert_eq!(body["error"]["message"], message, "{e:?}");
        }
    }
}
