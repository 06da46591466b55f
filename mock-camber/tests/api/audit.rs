//! The receiver audit (`POST /_mock/jobs/{id}/audit`): against a correct
//! receiver every case passes; against a sloppy one the cases it deserves
//! fail, each with its reason; what cannot be audited is refused.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::{json, Value};
use shared::signing::{verify_hex, verify_standard};

use crate::helpers::*;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Verifies both signatures over the raw bytes before parsing, wants
    /// JSON, knows its own job, refuses an unknown status, applies once.
    Correct,
    /// Accepts anything; a repeated (id, body) answers 500.
    Sloppy,
    /// Verifies `X-Webhook-Secret` over the body parsed and serialised
    /// again (as `JSON.stringify(req.body)` does), not over the raw bytes;
    /// otherwise correct.
    Reserialising,
    /// Verifies correctly, but applies every delivery it gets: a
    /// duplicate again, a late `job.failed` over a `job.completed`.
    LastWins,
}

/// The (webhook-id, body) pairs a sloppy receiver has seen.
type Seen = Arc<Mutex<HashSet<(String, Vec<u8>)>>>;

#[derive(Clone)]
struct Hook {
    kind: Kind,
    seen: Seen,
    applied: Arc<Mutex<usize>>,
    /// The job's status as `GET /jobs/job-1` shows it (its `state_url`).
    status: Arc<Mutex<String>>,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn hook(req: HttpRequest, body: Bytes, st: web::Data<Hook>) -> HttpResponse {
    if req.method() == actix_web::http::Method::GET {
        return HttpResponse::Ok().json(json!({"job_id": "job-1", "status": *st.status.lock()}));
    }
    let status = || {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_owned()
    };
    if st.kind == Kind::Sloppy {
        let key = (header(&req, "webhook-id").to_owned(), body.to_vec());
        if !st.seen.lock().insert(key) {
            return HttpResponse::InternalServerError().body("UNIQUE constraint failed");
        }
        *st.status.lock() = status();
        return HttpResponse::Ok().body("ok");
    }
    if st.kind == Kind::Reserialising {
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return HttpResponse::BadRequest().body("not JSON");
        };
        let again = serde_json::to_vec(&v).unwrap();
        if !verify_hex(SECRET.as_bytes(), &again, header(&req, "x-webhook-secret")) {
            return HttpResponse::Unauthorized().body("bad signature");
        }
        return apply(&st, &v);
    }
    if !header(&req, "content-type").starts_with("application/json") {
        return HttpResponse::UnsupportedMediaType().body("want application/json");
    }
    let ts: i64 = header(&req, "webhook-timestamp").parse().unwrap_or(0);
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return HttpResponse::Unauthorized().body("timestamp outside the tolerance");
    }
    let hex_ok = verify_hex(SECRET.as_bytes(), &body, header(&req, "x-webhook-secret"));
    let std_ok = verify_standard(
        SECRET,
        header(&req, "webhook-id"),
        ts,
        &body,
        header(&req, "webhook-signature"),
    );
    if !(hex_ok && std_ok) {
        return HttpResponse::Unauthorized().body("bad signature");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().body("not JSON");
    };
    apply(&st, &v)
}

/// A verified webhook: refused unless its status and job are known; the
/// first applied (every one for `LastWins`).
fn apply(st: &Hook, v: &Value) -> HttpResponse {
    let status = v["status"].as_str().unwrap_or("");
    if !["success", "failed"].contains(&status) {
        return HttpResponse::UnprocessableEntity().body("unknown status");
    }
    if v["job_id"] != "job-1" {
        return HttpResponse::NotFound().body("unknown job");
    }
    let mut applied = st.applied.lock();
    *applied += 1;
    if *applied == 1 || st.kind == Kind::LastWins {
        *st.status.lock() = status.to_owned();
    }
    HttpResponse::Ok().json(json!({"applied": *applied == 1 || st.kind == Kind::LastWins}))
}

/// A receiver of `kind` on port 0; its URL.
fn receiver(kind: Kind) -> String {
    let data = web::Data::new(Hook {
        kind,
        seen: Default::default(),
        applied: Default::default(),
        status: Default::default(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(hook))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    format!("http://127.0.0.1:{port}/hook")
}

/// A job delivered to `url`, then audited (the caller's state read from
/// the receiver's `GET /jobs/{job_id}`): the finished report.
async fn audit_of_a_delivered_job(client: &Client, url: &str) -> Value {
    let job = client.create(job_to(url)).await;
    client.wait_delivery(&job, "delivered").await;
    let state_url = url.replace("/hook", "/jobs/{job_id}");
    let body = json!({"state_url": state_url, "state_pointer": "/status"});
    let r = client.post(&format!("/_mock/jobs/{job}/audit"), body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/_mock/audits/{id}"));
    let report = wait_for("the audit to be done", 30, || async {
        let r = client.get(&format!("/_mock/audits/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        (r.body["state"] == "done").then_some(r.body)
    })
    .await;
    assert_eq!(report["job_id"], job.as_str());
    // The audit never touched the job or its genuine delivery.
    let d = client.wait_delivery(&job, "delivered").await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
    report
}

fn verdicts(report: &Value) -> Vec<(String, String)> {
    (report["cases"].as_array().unwrap().iter())
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_owned();
            (name, c["verdict"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[actix_rt::test]
async fn a_correct_receiver_passes_every_case() {
    let app = spawn_app().await;
    let url = receiver(Kind::Correct);
    let report = audit_of_a_delivered_job(&app.client, &url).await;
    for (name, verdict) in verdicts(&report) {
        // actix-web has no body read timeout: a slow sender is reported
        // as still being read at the audit's own limit.
        let want = if name == "slow_sender" {
            "info"
        } else {
            "pass"
        };
        assert_eq!(verdict, want, "{name}: {report:#}");
    }
    assert_eq!(report["failed"], json!([]));
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["cases"].as_array().unwrap().len(), 19);
    let big = &report["cases"][17];
    assert_eq!(big["name"], "big_unsigned_body");
    assert_eq!(big["observed"][0]["status"], 413, "{big}");
    let slow = &report["cases"][18];
    assert!(
        slow["reason"]
            .as_str()
            .unwrap()
            .contains("still reading after 2000 ms"),
        "{slow}"
    );
    let parallel = &report["cases"][10];
    assert_eq!(parallel["name"], "parallel_copies");
    assert_eq!(parallel["observed"].as_array().unwrap().len(), 20);
    let conflict = &report["cases"][11];
    assert_eq!(conflict["name"], "conflicting_outcome");
    assert!(
        conflict["reason"]
            .as_str()
            .unwrap()
            .contains("the state stayed \"success\""),
        "{conflict}"
    );
    // Reports never show a secret.
    assert!(!report.to_string().contains(SECRET));
    let listed = app.client.get("/_mock/audits?limit=5").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["audits"][0]["id"], report["id"]);
    // A reset forgets reports with the jobs.
    assert_eq!(app.client.post("/_mock/reset", json!({})).await.status, 200);
    let listed = app.client.get("/_mock/audits").await;
    assert_eq!(listed.body["audits"], json!([]), "{}", listed.text);
}

#[actix_rt::test]
async fn a_sloppy_receiver_fails_the_cases_it_deserves_with_their_reasons() {
    let app = spawn_app().await;
    let url = receiver(Kind::Sloppy);
    let report = audit_of_a_delivered_job(&app.client, &url).await;
    let failed = [
        "genuine",
        "value_changed",
        "reserialised",
        "wrong_secret",
        "missing_signature",
        "garbage_signature",
        "repeated",
        "parallel_copies",
        "conflicting_outcome",
        "malformed_json",
    ];
    assert_eq!(report["failed"], json!(failed), "{report:#}");
    let case = |name: &str| {
        (report["cases"].as_array().unwrap().iter())
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let reason = |name: &str| case(name)["reason"].as_str().unwrap().to_owned();
    assert!(
        reason("reserialised").contains("re-serialised JSON"),
        "{}",
        reason("reserialised")
    );
    assert!(reason("repeated").contains("500"), "{}", reason("repeated"));
    assert!(reason("malformed_json").contains("malformed JSON"));
    assert!(
        reason("conflicting_outcome")
            .contains("conflicting outcome: a job's first outcome must stand (compare before you write): the state went from \"success\" to \"failed\""),
        "{}",
        reason("conflicting_outcome")
    );
    assert_eq!(case("wrong_content_type")["verdict"], "info");
    assert_eq!(case("unknown_status")["verdict"], "pass");
    assert_eq!(case("rotation_list")["verdict"], "pass");
    // Replays at any time: reported, not failed (it may verify only
    // X-Webhook-Secret, which carries no timestamp).
    assert_eq!(case("stale_timestamp")["verdict"], "info");
    assert!(reason("stale_timestamp").contains("replayed"));
    let observed = &case("repeated")["observed"][0];
    assert_eq!(observed["status"], 500);
    assert_eq!(observed["excerpt"], "UNIQUE constraint failed");
    assert_eq!(report["summary"]["fail"], failed.len());
}

#[actix_rt::test]
async fn a_receiver_that_verifies_re_serialised_json_fails_only_the_re_serialised_case() {
    let app = spawn_app().await;
    let report = audit_of_a_delivered_job(&app.client, &receiver(Kind::Reserialising)).await;
    assert_eq!(report["failed"], json!(["reserialised"]), "{report:#}");
    let case = (report["cases"].as_array().unwrap().iter())
        .find(|c| c["name"] == "reserialised")
        .unwrap();
    // Re-spaced in the same key order it accepts; reordered it refuses.
    let answers: Vec<&Value> = (case["observed"].as_array().unwrap().iter())
        .map(|o| &o["status"])
        .collect();
    assert_eq!(answers, [&json!(200), &json!(401)], "{case:#}");
    assert!(
        case["reason"]
            .as_str()
            .unwrap()
            .contains("re-serialised JSON"),
        "{case:#}"
    );
}

#[actix_rt::test]
async fn a_receiver_that_applies_every_delivery_fails_the_conflicting_outcome() {
    let app = spawn_app().await;
    let report = audit_of_a_delivered_job(&app.client, &receiver(Kind::LastWins)).await;
    // Duplicates of the same outcome leave the same status: a status read
    // cannot tell once from twice, so only the late failure shows.
    assert_eq!(
        report["failed"],
        json!(["conflicting_outcome"]),
        "{report:#}"
    );
    let case = (report["cases"].as_array().unwrap().iter())
        .find(|c| c["name"] == "conflicting_outcome")
        .unwrap();
    assert!(
        case["reason"]
            .as_str()
            .unwrap()
            .contains("the state went from \"success\" to \"failed\""),
        "{case:#}"
    );
}

#[actix_rt::test]
async fn what_cannot_be_audited_is_refused() {
    let app = spawn_app().await;
    let c = &app.client;
    let r = c.post("/_mock/jobs/cmb_nope/audit", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    // No webhook.url.
    let plain = c
        .create(json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}}))
        .await;
    let r = c
        .post(&format!("/_mock/jobs/{plain}/audit"), json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "CONFLICT", "{}", r.text);
    let r = c
        .post(
            "/_mock/jobs/cmb_nope/audit",
            json!({"state_url": "ftp://x"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = c.get("/_mock/audits/aud_nope").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[actix_rt::test]
async fn the_audit_command_exits_1_on_a_failed_case_and_2_when_it_cannot_run() {
    use mock_camber::audit::cli::{self, AuditArgs};
    let app = spawn_app().await;
    let url = receiver(Kind::Sloppy);
    let job = app.client.create(job_to(&url)).await;
    app.client.wait_delivery(&job, "delivered").await;
    let args = AuditArgs {
        mock: app.client.address.clone(),
        job: job.clone(),
        admin_token: None,
        state_url: None,
        state_pointer: None,
        wait_secs: 30,
    };
    assert_eq!(cli::run(&args).await, 1);
    let listed = app.client.get(&format!("/_mock/audits?job_id={job}")).await;
    let report = &listed.body["audits"][0];
    let text = cli::render(report);
    assert!(
        text.contains("FAIL  reserialised: accepted re-serialised JSON"),
        "{text}"
    );
    assert!(text.contains("PASS  rotation_list"), "{text}");
    let unknown = AuditArgs {
        job: "cmb_nope".into(),
        ..args
    };
    assert_eq!(cli::run(&unknown).await, 2);
}

#[actix_rt::test]
async fn a_held_job_is_audited_with_the_body_it_would_send_and_stays_held() {
    let app = spawn_app().await;
    let c = &app.client;
    let url = receiver(Kind::Correct);
    let mut body = job_to(&url);
    body["metadata"]["mock"] = json!({"hold": true});
    let job = c.create(body).await;
    let r = c.post(&format!("/_mock/jobs/{job}/audit"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    // One audit at a time per job.
    let again = c.post(&format!("/_mock/jobs/{job}/audit"), json!({})).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("already running"), "{}", again.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let report = wait_for("the audit to be done", 30, || async {
        let r = c.get(&format!("/_mock/audits/{id}")).await;
        (r.body["state"] == "done").then_some(r.body)
    })
    .await;
    assert_eq!(report["cases"][0]["verdict"], "pass", "{report:#}");
    assert_eq!(report["failed"], json!([]), "{report:#}");
    // The job is still held, and has no delivery of its own.
    assert_eq!(c.job(&job).await["status"], "running");
    let d = c.get(&format!("/_mock/deliveries?job_id={job}")).await;
    assert_eq!(d.body["deliveries"], json!([]), "{}", d.text);
}

#[actix_rt::test]
async fn a_scenario_audit_starts_right_after_the_genuine_delivery() {
    let app = spawn_app().await;
    let c = &app.client;
    let url = receiver(Kind::Correct);
    let mut body = job_to(&url);
    let state_url = url.replace("/hook", "/jobs/{job_id}");
    body["metadata"]["mock"] =
        json!({"webhook": {"audit": {"state_url": state_url, "state_pointer": "/status"}}});
    let job = c.create(body).await;
    let report = wait_for("the scenario's audit to be done", 30, || async {
        let r = c.get(&format!("/_mock/audits?job_id={job}")).await;
        let first = r.body["audits"].get(0).cloned()?;
        (first["state"] == "done").then_some(first)
    })
    .await;
    assert_eq!(report["failed"], json!([]), "{report:#}");
    assert!(
        report.to_string().contains("the state stayed"),
        "{report:#}"
    );
    // A bad `audit` is refused at submit, like every scenario knob.
    let mut bad = job_to(&url);
    bad["metadata"]["mock"] = json!({"webhook": {"audit": {"state_url": "ftp://x"}}});
    assert_eq!(c.submit(bad).await.status, 422);
}

#[actix_rt::test]
async fn a_scenario_audit_that_is_not_true_false_or_an_object_is_refused() {
    let app = spawn_app().await;
    for audit in [json!([]), json!("yes"), json!({"state_pointer": "status"})] {
        let mut body = job_to("http://127.0.0.1:9/hook");
        body["metadata"]["mock"] = json!({"webhook": {"audit": audit}});
        let r = app.client.submit(body).await;
        assert_eq!(r.status, 422, "{audit}: {}", r.text);
    }
    let rules = json!({"rules": [{"match": {}, "scenario": {"webhook": {"audit": []}}}]});
    assert_eq!(app.client.put("/_mock/config", rules).await.status, 422);
}
