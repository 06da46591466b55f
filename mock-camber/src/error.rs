//! The API's error enum, mapped to status codes and the contract's JSON error
//! body in one place. Internal causes are logged, never returned.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared::error::codes;
use shared::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// The body broke off (a bad chunk): 400, as on api.
    #[error("{0}")]
    BadBody(String),
    #[error("the request body did not arrive within {}s", .0.as_secs_f64())]
    BodyTimeout(std::time::Duration),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("{message}")]
    Injected {
        status: StatusCode,
        retry_after_secs: u64,
        message: &'static str,
    },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("the service is not ready: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => codes::INVALID_JSON,
            ApiError::InvalidRequest(_) | ApiError::BadBody(_) => codes::INVALID_REQUEST,
            ApiError::BodyTimeout(_) => codes::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => codes::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated(_) => codes::UNAUTHENTICATED,
            ApiError::NotFound(_) => codes::NOT_FOUND,
            ApiError::Conflict(_) => codes::CONFLICT,
            ApiError::IdempotencyKeyReused => codes::IDEMPOTENCY_KEY_REUSED,
            ApiError::Injected { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
                codes::RATE_LIMITED
            }
            ApiError::Injected { .. } | ApiError::Unavailable(_) => codes::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed(_) => codes::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => codes::INTERNAL,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        let unavailable = match &e {
            E::Db(d) => d.is_storage_unavailable(),
            E::Sqlite(s) => sqlite_writer::is_storage_unavailable(s),
            E::Io(io) => sqlite_writer::is_storage_full_io(io),
        };
        if unavailable {
            log::error!("store: {e}");
            return ApiError::Unavailable(
                "storage unavailable (disk full or read-only); nothing was saved, try again".into(),
            );
        }
        ApiError::internal(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::Injected { status, .. } => *status,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            log::error!("internal error: {cause}");
        }
        let mut res = HttpResponse::build(self.status_code());
        if let ApiError::Injected {
            retry_after_secs, ..
        } = self
        {
            res.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if let ApiError::Unavailable(_) = self {
            res.insert_header(("Retry-After", "1"));
        }
        if let ApiError::Unauthenticated(_) = self {
            res.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::BodyTimeout(_) = self {
            // The rest of the body may still come: the connection cannot
            // carry another request.
            res.force_close();
        }
        res.json(ErrorBody::new(self.code(), self.to_string()))
    }
}
