//! `GET /_mock/events`: the console's live updates (Server-Sent Events).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use futures_util::stream;
use serde_json::json;
use tokio::time::Instant;

use super::stats_at;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// Shortest time between two events of one stream while things change.
const EVENT_GAP: Duration = Duration::from_millis(250);
/// An event at least this often, so rates move and a gone client is seen.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A stream ends after this; the console reconnects.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

struct Feed {
    state: web::Data<AppState>,
    changes: tokio::sync::watch::Receiver<u64>,
    started: Instant,
    last: Option<Instant>,
}

/// `GET /_mock/events`: `text/event-stream` of `stats` events, each the
/// body of `GET /_mock/stats` plus `"version"` (the store's change
/// counter): one at once, then one after each change (at most every
/// 250 ms) or every 2 s. The console re-reads the page it shows when the
/// version moves; nothing is re-fetched on a timer.
pub async fn events(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let feed = Feed {
        changes: state.changes.subscribe(),
        state,
        started: Instant::now(),
        last: None,
    };
    let body = stream::unfold(feed, |mut f| async move {
        if let Some(last) = f.last {
            let closing = f.state.changes.clone();
            let end = f.started + STREAM_LIFETIME;
            tokio::select! {
                () = closing.closed() => return None,
                () = tokio::time::sleep_until(end) => return None,
                _ = tokio::time::timeout_at(last + HEARTBEAT, f.changes.changed()) => {}
            }
            tokio::time::sleep_until(last + EVENT_GAP).await;
        }
        let version = *f.changes.borrow_and_update();
        f.last = Some(Instant::now());
        let event = match stats_at(&f.state, version).await {
            Ok(mut v) => {
                v["version"] = json!(version);
                format!("event: stats\ndata: {v}\n\n")
            }
            Err(e) => {
                if let ApiError::Internal(cause) = &e {
                    log::error!("console event stream: {cause}");
                }
                format!(
                    "event: problem\ndata: {}\n\n",
                    json!({"message": e.to_string()})
                )
            }
        };
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(event)), f))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
