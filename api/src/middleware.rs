//! Request middleware: every response carries an `X-Request-Id`, and the
//! access log never prints a query string (an upload URL's query is a
//! capability).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Logger, Next};
use actix_web::Error;

/// Adds `X-Request-Id` (a fresh UUID) to every response.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string()) {
        res.headers_mut()
            .insert(HeaderName::from_static(shared::headers::REQUEST_ID), v);
    }
    Ok(res)
}

/// One line per request: peer, method, path without the query, status,
/// bytes, duration.
pub fn access_log() -> Logger {
    Logger::new("%a \"%{method}xi %U\" %s %b %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
}
