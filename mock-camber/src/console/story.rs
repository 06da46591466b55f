//! `GET /_mock/jobs/{id}`: a job's whole story as the console shows it.

use actix_web::{web, HttpResponse};
use chrono::DateTime;
use serde_json::{json, Value};

use super::{deliveries_of, find_job};
use crate::audit::report;
use crate::auth::Admin;
use crate::engine::shown_headers;
use crate::error::ApiError;
use crate::jobs::stage::Stage;
use crate::routes::admin::{admin_view, delivery_view};
use crate::state::AppState;
use crate::store::{self, EventKind, JobEvent};

/// The newest receiver audits of a job its story shows (the rest are at
/// `GET /_mock/audits?job_id=…`).
const AUDITS_SHOWN: usize = 10;

/// The job's stages as its events tell them: when each started and
/// ended, and how (`running`, `finished`, `failed` with its detail).
fn timeline(events: &[JobEvent]) -> Vec<Value> {
    let mut stages: Vec<Value> = Vec::new();
    for e in events {
        let Some(stage) = e.stage.map(Stage::as_str) else {
            continue;
        };
        let outcome = match e.kind {
            EventKind::StageStarted => {
                stages.push(json!({"stage": stage, "started_at": e.at, "ended_at": null, "outcome": "running"}));
                continue;
            }
            EventKind::StageFinished => "finished",
            EventKind::StageFailed => "failed",
            _ => continue,
        };
        if let Some(s) = stages.iter_mut().rev().find(|s| s["stage"] == stage) {
            s["ended_at"] = json!(e.at);
            s["outcome"] = json!(outcome);
            if let Some(detail) = &e.detail {
                s["detail"] = json!(detail);
            }
        }
    }
    stages
}

/// `GET /_mock/jobs/{id}`: the job (as the admin list shows it) with its
/// input, plan and what chose it, stage timeline, log lines, every
/// delivery with every attempt and the headers each carried, and its
/// newest receiver audits' reports.
pub async fn job(
    _: Admin,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = find_job(&state, id.into_inner()).await?;
    let deliveries = deliveries_of(&state, &row.id, None).await?;
    let job_id = row.id.clone();
    let (events, audits) = (state.store)
        .read(move |c| {
            let audits = store::list_audits(c, Some(&job_id), None, AUDITS_SHOWN)?;
            Ok((store::job_events(c, &job_id)?, audits))
        })
        .await?;
    let mut plan: Value = serde_json::to_value(&row.plan).unwrap_or(Value::Null);
    let origin = plan
        .as_object_mut()
        .and_then(|p| p.remove("origin"))
        .unwrap_or(Value::Null);
    let mut view = admin_view(&row);
    view["input"] = row.input.clone();
    view["plan"] = plan;
    view["chosen_by"] = origin;
    view["timeline"] = json!(timeline(&events));
    view["log"] = json!(row.log.lines().collect::<Vec<_>>());
    // `list_audits` reads one more than asked, to tell of a next page.
    view["audits"] = (audits.iter().take(AUDITS_SHOWN))
        .map(report::view)
        .collect();
    view["deliveries"] = deliveries
        .iter()
        .map(|(d, attempts)| {
            let mut v = delivery_view(d, attempts);
            for (a, shown) in attempts
                .iter()
                .zip(v["attempts"].as_array_mut().into_iter().flatten())
            {
                let ts = DateTime::parse_from_rfc3339(&a.at).map_or(0, |t| t.timestamp());
                let mut headers =
                    shown_headers(&d.id, d.event, a.n as u32, ts, &d.faults, &d.headers);
                mask_caller_headers(&mut headers, &d.headers);
                shown["headers"] = json!(headers);
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

/// Every value the caller set in `webhook.headers` is shown masked (its
/// names are free, so any may carry a receiver's credential); the row
/// keeps the real values, which the sender needs.
fn mask_caller_headers(shown: &mut [(String, String)], caller: &crate::store::Headers) {
    const THEIRS: &str = " (the caller's)";
    for (k, v) in caller.iter() {
        let name = k.to_ascii_lowercase();
        if let Some(slot) = shown.iter_mut().find(|(o, _)| *o == name) {
            let masked = crate::journal::mask_secret(v);
            slot.1 = if slot.1.ends_with(THEIRS) {
                format!("{masked}{THEIRS}")
            } else {
                masked
            };
        }
    }
}
