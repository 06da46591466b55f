//! `GET /_mock/`: a live page of jobs and deliveries with the admin actions
//! as buttons. Plain HTML and fetch(); no build step, no assets. The page
//! holds no data itself, so it is served without the admin token; its
//! requests carry the token the user types in.

use actix_web::HttpResponse;

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("dashboard.html"))
}
