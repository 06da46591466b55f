//! What both services' HTTP layers do alike (feature `http`): register a
//! route table with a 405 that names the allowed methods, and read a
//! request body within a size limit and a deadline. Each service keeps its
//! own error body text; the mechanics live here once.

use std::time::Duration;

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_LENGTH};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Route};
use futures_util::StreamExt;

/// A service's routes: (path, method, handler), one row per operation.
pub type RouteTable = Vec<(&'static str, Method, Route)>;

/// Registers `routes`: one resource per path, in the table's order. A known
/// path asked with another method answers what `not_allowed` builds, with
/// the `Allow` header (RFC 9110) listing the path's methods in table order.
pub fn configure_routes(
    cfg: &mut web::ServiceConfig,
    routes: RouteTable,
    not_allowed: fn(&HttpRequest) -> HttpResponse,
) {
    let mut by_path: Vec<(&'static str, Vec<Method>, Vec<Route>)> = Vec::new();
    for (path, method, route) in routes {
        match by_path.iter_mut().find(|(p, _, _)| *p == path) {
            Some((_, methods, list)) => {
                methods.push(method);
                list.push(route);
            }
            None => by_path.push((path, vec![method], vec![route])),
        }
    }
    for (path, methods, list) in by_path {
        let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        let allow = HeaderValue::from_str(&allow.join(", ")).ok();
        let resource = list
            .into_iter()
            .fold(web::resource(path), |res, route| res.route(route));
        cfg.service(resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { with_allow(not_allowed(&req), allow) }
        })));
    }
}

fn with_allow(mut res: HttpResponse, allow: Option<HeaderValue>) -> HttpResponse {
    if let Some(v) = allow {
        res.headers_mut().insert(ALLOW, v);
    }
    res
}

/// Why a request body could not be read. Each service maps it to its own
/// error body: 413, 400 and 408 (the last closing the connection, since the
/// rest of the body may still come).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (declared, or as it arrived).
    TooLarge(u64),
    /// The body broke off: the transport's reason.
    Broken(String),
    /// Not all of it arrived within this deadline.
    TimedOut(Duration),
}

/// Reads a request body, refusing it as soon as it passes `limit` bytes
/// (before reading anything when Content-Length already says so), and
/// giving up when it has not all arrived within its deadline: `timeout`
/// grown for a large body (see [`crate::body_deadline`]).
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: u64,
    timeout: Duration,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let deadline = crate::body_deadline(timeout, declared.unwrap_or(limit));
    match tokio::time::timeout(deadline, read_all(payload, declared, limit)).await {
        Ok(read) => read,
        Err(_) => Err(BodyError::TimedOut(deadline)),
    }
}

async fn read_all(
    mut payload: web::Payload,
    declared: Option<u64>,
    limit: u64,
) -> Result<web::Bytes, BodyError> {
    // Never reserve what a header merely claims: grow with what arrives.
    let capacity = declared.unwrap_or(1024).min(limit).min(64 * 1024);
    let mut body = web::BytesMut::with_capacity(capacity as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::{App, FromRequest};

    fn gone(req: &HttpRequest) -> HttpResponse {
        HttpResponse::MethodNotAllowed().body(format!("no {}", req.method()))
    }

    #[actix_web::test]
    async fn another_method_on_a_known_path_is_the_services_405_with_allow() {
        let app = init_service(App::new().configure(|cfg| {
            let table: RouteTable = vec![
                ("/a", Method::GET, web::get().to(HttpResponse::Ok)),
                ("/b", Method::POST, web::post().to(HttpResponse::Ok)),
                ("/a", Method::PUT, web::put().to(HttpResponse::Ok)),
            ];
            configure_routes(cfg, table, gone)
        }))
        .await;
        let ok = call_service(&app, TestRequest::put().uri("/a").to_request()).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let res = call_service(&app, TestRequest::delete().uri("/a").to_request()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers().get(ALLOW).unwrap(), "GET, PUT");
        let body = actix_web::test::read_body(res).await;
        assert_eq!(body, "no DELETE");
        let res = call_service(&app, TestRequest::get().uri("/b").to_request()).await;
        assert_eq!(res.headers().get(ALLOW).unwrap(), "POST");
    }

    async fn read(limit: u64, req: TestRequest) -> Result<web::Bytes, BodyError> {
        let (req, mut payload) = req.to_http_parts();
        let payload = web::Payload::from_request(&req, &mut payload)
            .await
            .unwrap();
        read_body(&req, payload, limit, Duration::from_secs(5)).await
    }

    #[actix_web::test]
    async fn a_body_is_read_whole_or_refused_past_its_limit() {
        let got = read(5, TestRequest::post().set_payload("hello")).await;
        assert_eq!(got.unwrap(), "hello");
        let big = read(4, TestRequest::post().set_payload("hello")).await;
        assert_eq!(big, Err(BodyError::TooLarge(4)));
        // Refused on the declared length, before anything is read.
        let declared = TestRequest::post()
            .set_payload("x")
            .insert_header((CONTENT_LENGTH, "1000"));
        assert_eq!(read(10, declared).await, Err(BodyError::TooLarge(10)));
    }
}
