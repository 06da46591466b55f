//! The admin API under `/_mock/`: guard, journal, reset, complete/fail,
//! cross-tenant listing. Config and scenario rules are in `admin_config`.

use std::time::Duration;

use serde_json::{json, Value};
use shared::retry::Schedule;

use crate::helpers::*;

#[actix_web::test]
async fn the_admin_token_guards_every_admin_route() {
    let app = spawn_app_with(|s| s.admin_token = Some("admin-secret".into())).await;
    let anon = app.client.with_key("");
    let wrong = app.client.with_key("nope");
    let admin = app.client.with_key("admin-secret");
    for path in [
        "/_mock/jobs",
        "/_mock/deliveries",
        "/_mock/requests",
        "/_mock/config",
    ] {
        assert_eq!(anon.get(path).await.status, 401, "{path}");
        let r = wrong.get(path).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.body["error"]["code"], "UNAUTHENTICATED");
        assert_eq!(admin.get(path).await.status, 200, "{path}");
    }
    assert_eq!(anon.post("/_mock/reset", json!({})).await.status, 401);
    // The page itself holds no data; its calls carry the token.
    let page = anon.get("/_mock/").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<title>mock-camber</title>"));
}

#[actix_web::test]
async fn complete_returns_the_given_result_and_refuses_a_bad_body() {
    let app = spawn_app().await;
    let held = json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}});
    let id = app.client.create(held.clone()).await;
    app.client.wait_status(&id, "running").await;
    let path = format!("/_mock/jobs/{id}/complete");
    for bad in [json!({"result": 0}), json!({"extra": 1}), json!([1])] {
        let r = app.client.post(&path, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    let r = app
        .client
        .post(&path, json!({"result": {"invoice_total": 42}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let job = app.client.get(&format!("/jobs/{id}")).await.body;
    assert_eq!(job["result"], json!({"invoice_total": 42}), "{job}");

    // Fail bodies too: serde would read a struct from an array; we do not.
    let id = app.client.create(held).await;
    app.client.wait_status(&id, "running").await;
    let path = format!("/_mock/jobs/{id}/fail");
    for bad in [
        json!(["OCR_FAILURE"]),
        json!({"error": ["OCR_FAILURE"]}),
        json!({"x": 1}),
    ] {
        let r = app.client.post(&path, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
    }
    let r = app
        .client
        .send("POST", &path, &[], Some(b"{oops".to_vec()))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "INVALID_JSON");
    assert_eq!(
        app.client.get(&format!("/jobs/{id}")).await.body["status"],
        "running"
    );
}

#[actix_web::test]
async fn fail_ends_a_job_with_the_given_error() {
    let app = spawn_app().await;
    let id = app
        .client
        .create(json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}}))
        .await;
    app.client.wait_status(&id, "running").await;
    let r = app
        .client
        .post(
            &format!("/_mock/jobs/{id}/fail"),
            json!({"code": "NORMALIZE_FAILED", "reason": "schema mismatch"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "failed");
    assert_eq!(
        r.body["error"],
        json!({"code": "NORMALIZE_FAILED", "stage": "NORMALIZE", "details": {"reason": "schema mismatch"}})
    );
    assert_eq!(
        app.client
            .post("/_mock/jobs/cmb_nope/fail", json!({}))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn the_journal_records_requests_newest_first_with_secrets_masked() {
    let app = spawn_app().await;
    let c = app.client.with_key("sk_test_abcdef123456");
    c.create(json!({"app": "x", "input": {"k": "v"}, "metadata": {"job_id": "ours"}}))
        .await;
    c.get("/jobs").await;
    let journal = app.client.journal().await;
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0]["method"], "GET");
    let post = &journal[1];
    assert_eq!(post["path"], "/jobs");
    assert_eq!(post["status"], 201);
    assert_eq!(post["body"]["metadata"]["job_id"], "ours");
    assert_eq!(post["tenant"], "sk_t…3456");
    assert_eq!(post["headers"]["authorization"], "Bearer sk_t…3456");
    assert!(!journal.iter().any(|e| e.to_string().contains("abcdef")));

    let page = app.client.get("/_mock/requests?limit=1").await;
    assert_eq!(page.body["requests"].as_array().unwrap().len(), 1);
    let next = page.body["next"].as_str().unwrap();
    let rest = app
        .client
        .get(&format!("/_mock/requests?limit=1&cursor={next}"))
        .await;
    assert_eq!(rest.body["requests"][0]["method"], "POST");
}

#[actix_web::test]
async fn admin_lists_every_tenants_jobs_with_masked_tenants_and_filters() {
    let app = spawn_app().await;
    let a = app.client.with_key("tenant-aaaa-1111");
    let b = app.client.with_key("tenant-bbbb-2222");
    a.create(json!({"app": "x", "input": {}})).await;
    b.create(json!({"app": "x", "input": {}})).await;
    let all = app.client.get("/_mock/jobs").await.body;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(all["jobs"][0]["tenant"], "tena…2222");
    let only_a = app
        .client
        .get("/_mock/jobs?tenant=tenant-aaaa-1111")
        .await
        .body;
    assert_eq!(only_a["jobs"].as_array().unwrap().len(), 1);
    let by_mask = app
        .client
        .get("/_mock/jobs?tenant=tena%E2%80%A61111")
        .await
        .body;
    // The same job (its status may move on between the two reads).
    let ids = |v: &Value| {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&by_mask), ids(&only_a));
}

#[actix_web::test]
async fn reset_forgets_jobs_deliveries_and_journal_but_keeps_config() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    app.client
        .put("/_mock/config", json!({"failure_rate": 0.5}))
        .await;
    let id = app.client.create(job_to(&rx.url)).await;
    rx.next().await;
    app.client.wait_delivery(&id, "delivered").await;

    let r = app.client.post("/_mock/reset", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.client.get(&format!("/jobs/{id}")).await.status, 404);
    assert_eq!(
        app.client.get("/_mock/deliveries").await.body["deliveries"],
        json!([])
    );
    // The journal now holds only the GET above.
    assert_eq!(app.client.journal().await.len(), 1);
    assert_eq!(
        app.client.get("/_mock/config").await.body["failure_rate"],
        0.5
    );
    // Ids are never reused after a reset.
    let new_id = app.client.create(json!({"app": "x", "input": {}})).await;
    assert_ne!(new_id, id);
}

/// What the dashboard's fail button sends: no body. The error takes the
/// job's current stage, and the log and the error agree.
#[actix_web::test]
async fn failing_a_held_job_with_no_body_fails_it_at_its_current_stage() {
    let app = spawn_app().await;
    let id = app
        .client
        .create(json!({"app": "x", "input": {}, "metadata": {"mock": {"hold": true}}}))
        .await;
    assert_eq!(
        app.client.wait_status(&id, "running").await["stage"],
        "FETCH"
    );
    let r = app
        .client
        .send("POST", &format!("/_mock/jobs/{id}/fail"), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let job = app.client.job(&id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["stage"], "FETCH", "{job}");
    assert_eq!(job["error"]["code"], "FETCH_FAILED", "{job}");
    let logs = app.client.get(&format!("/jobs/{id}/logs")).await;
    assert!(
        logs.text.contains("FETCH failed: FETCH_FAILED"),
        "{}",
        logs.text
    );
}

#[actix_web::test]
async fn caller_webhook_headers_are_masked_in_every_admin_view_and_sent_unmasked() {
    let app = spawn_app().await;
    let mut rx = Receiver::start().await;
    let secrets = [
        ("Authorization", "Bearer rcv_live_token_0123456789"),
        ("X-Custom-Token", "tok_supersecret_abcdef"),
        ("X-Hub-Signature", "sha256=deadbeefcafebabe1234"),
        ("X-Webhook-Secret", "shared-static-secret-42"),
    ];
    let mut body = job_to(&rx.url);
    body["webhook"]["headers"] = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let id = app.client.create(body).await;
    // The receiver gets the real values (the row keeps them).
    let hook = rx.next().await;
    for (k, v) in secrets {
        assert_eq!(hook.header(&k.to_ascii_lowercase()), v, "{k}");
    }
    app.client.wait_delivery(&id, "delivered").await;

    let raw_parts = [
        "rcv_live_token_0123456789",
        "tok_supersecret_abcdef",
        "deadbeefcafebabe1234",
        "shared-static-secret-42",
    ];
    for path in [
        format!("/_mock/jobs/{id}"),
        "/_mock/jobs".to_owned(),
        format!("/_mock/deliveries?job_id={id}"),
        "/_mock/requests".to_owned(),
        "/_mock/requests?method=POST&path=/jobs".to_owned(),
    ] {
        let r = app.client.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        for raw in raw_parts {
            assert!(!r.text.contains(raw), "{path} shows `{raw}`: {}", r.text);
        }
    }
    // Shown masked, not dropped: the job's attempt headers and the
    // journal's stored submit body.
    let job = app.client.get(&format!("/_mock/jobs/{id}")).await.body;
    let shown = &job["deliveries"][0]["attempts"][0]["headers"];
    let shown_value = |name: &str| -> String {
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .unwrap_or_else(|| panic!("no {name} in {shown}"))[1]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(shown_value("x-custom-token"), "tok_…cdef");
    assert_eq!(shown_value("x-hub-signature"), "sha2…1234");
    assert_eq!(shown_value("authorization"), "Bearer rcv_…6789");
    let journal = app
        .client
        .get("/_mock/requests?method=POST&path=/jobs")
        .await
        .body;
    let headers = &journal["requests"][0]["body"]["webhook"]["headers"];
    assert_eq!(headers["X-Custom-Token"], "tok_…cdef", "{journal}");
    assert_eq!(headers["Authorization"], "Bearer rcv_…6789");
}

#[actix_web::test]
async fn a_delivery_is_pending_before_its_first_attempt_and_failing_after_a_failed_one() {
    let mut rx = Receiver::start().await;
    rx.always(503);
    // One retry, ten minutes away: the delivery stays `failing`.
    let app = spawn_app_with(|s| s.retry_schedule = Schedule(vec![Duration::from_secs(600)])).await;
    let mut body = job_to(&rx.url);
    // Stored at the job's end, first sent in an hour: no attempt yet.
    body["metadata"]["mock"] = json!({"webhook": {"mode": "delay", "delay_ms": 3_600_000}});
    let id = app.client.create(body).await;
    app.client.wait_status(&id, "completed").await;

    let pending = app.client.wait_delivery(&id, "pending").await;
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["attempts"], json!([]));
    let by_state = |state: &'static str| {
        let (c, id) = (&app.client, id.as_str());
        async move {
            let r = c
                .get(&format!("/_mock/deliveries?job_id={id}&state={state}"))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["deliveries"].as_array().unwrap().len()
        }
    };
    assert_eq!(by_state("failing").await, 0);
    assert_eq!(app.client.job(&id).await["webhook"]["state"], "pending");
    let stats = app.client.get("/_mock/stats").await.body;
    assert_eq!(
        (
            &stats["deliveries"]["pending"],
            &stats["deliveries"]["failing"]
        ),
        (&json!(1), &json!(0))
    );

    // Send it now: the receiver answers 503, a retry is scheduled.
    let delivery = pending["id"].as_str().unwrap();
    let r = app
        .client
        .post(
            &format!("/_mock/deliveries/{delivery}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["state"], "pending", "queued, nothing failed yet");
    rx.next().await;
    let failing = app.client.wait_delivery(&id, "failing").await;
    assert_eq!(failing["state"], "failing");
    assert_eq!(failing["attempts"][0]["status"], 503);
    assert_eq!(by_state("pending").await, 0);
    assert_eq!(app.client.job(&id).await["webhook"]["state"], "failing");
    let stats = app.client.get("/_mock/stats").await.body;
    assert_eq!(
        (
            &stats["deliveries"]["pending"],
            &stats["deliveries"]["failing"]
        ),
        (&json!(0), &json!(1))
    );
}
