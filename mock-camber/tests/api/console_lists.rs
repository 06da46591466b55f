//! What the QA console lists and counts (issue 10): the job list's filters,
//! search and paging, and the overview's counts of jobs and deliveries
//! (a failing delivery among them).

use std::time::Duration;

use serde_json::{json, Value};
use shared::retry::Schedule;

use crate::console::{held, KEY_A, KEY_B};
use crate::helpers::*;

#[actix_web::test]
async fn jobs_filter_by_status_tenant_app_and_search_and_page_newest_first() {
    let app = spawn_app_with(|s| s.api_keys = vec![KEY_A.into(), KEY_B.into()]).await;
    let (a, b) = (app.client.with_key(KEY_A), app.client.with_key(KEY_B));
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = if i % 2 == 0 { &a } else { &b };
        let body = json!({"app": if i < 3 { "ocr" } else { "parse" }, "input": {},
                          "metadata": {"job_id": format!("batch-{i}")}});
        ids.push(c.create(body).await);
    }
    let hold = a.create(held("ocr", "held-one")).await;
    a.wait_status(&hold, "running").await;
    let all = app
        .client
        .get("/_mock/jobs?status=completed&min_count=5&wait_ms=10000")
        .await;
    assert_eq!(all.status, 200, "{}", all.text);
    let list = |q: String| {
        let c = app.client.clone();
        async move {
            let r = c.get(&format!("/_mock/jobs?{q}")).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            let ids: Vec<String> = (r.body["jobs"].as_array().unwrap().iter())
                .map(|j| j["id"].as_str().unwrap().to_owned())
                .collect();
            (ids, r.body["next"].clone(), r.body)
        }
    };
    // The mask the console shows, or the key itself; never the whole key shown.
    let (of_b, _, body) = list("tenant=sk_t%E2%80%A62222".into()).await;
    assert_eq!(of_b, vec![ids[3].clone(), ids[1].clone()]);
    assert!(!body.to_string().contains(KEY_B));
    assert_eq!(body["jobs"][0]["tenant"], "sk_t…2222");
    assert_eq!(list(format!("tenant={KEY_B}")).await.0, of_b);
    assert!(list("tenant=nobody".into()).await.0.is_empty());
    assert_eq!(list("status=running".into()).await.0, vec![hold.clone()]);
    assert_eq!(
        list("app=parse".into()).await.0,
        vec![ids[4].clone(), ids[3].clone()]
    );
    assert_eq!(
        list("app=ocr&tenant=sk_t%E2%80%A61111&status=completed".into())
            .await
            .0,
        vec![ids[2].clone(), ids[0].clone()]
    );
    // Search: metadata text, an id prefix, any part of an id.
    assert_eq!(list("q=batch-3".into()).await.0, vec![ids[3].clone()]);
    assert_eq!(list("q=held-one".into()).await.0, vec![hold.clone()]);
    assert_eq!(
        list(format!("q={}", &ids[2][..20])).await.0,
        vec![ids[2].clone()]
    );
    assert_eq!(
        list(format!("q={}", &ids[4][10..])).await.0,
        vec![ids[4].clone()]
    );
    assert!(list("q=cmb_ffff".into()).await.0.is_empty());
    // Pages of two, newest first, none twice.
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let (page, next, _) = list(format!("limit=2&cursor={cursor}")).await;
        assert!(page.len() <= 2);
        all.extend(page);
        match next.as_str() {
            Some(n) => cursor = n.to_owned(),
            None => break,
        }
    }
    let mut want = ids.clone();
    want.push(hold);
    want.reverse();
    assert_eq!(all, want);
    let long = "x".repeat(201);
    let r = app.client.get(&format!("/_mock/jobs?q={long}")).await;
    assert_eq!(r.status, 422);
}

#[actix_web::test]
async fn stats_count_jobs_and_deliveries_from_the_store_and_rate_the_last_minute() {
    let mut rx = Receiver::start().await;
    let app = spawn_app_with(|s| s.api_keys = vec![KEY_A.into()]).await;
    let c = app.client.with_key(KEY_A);
    let hold = c.create(held("a", "h")).await;
    rx.always(500);
    let dead = c.create(job_to(&rx.url)).await;
    c.wait_delivery(&dead, "dead").await;
    rx.always(200);
    let ok = c.create(job_to(&rx.url)).await;
    c.wait_delivery(&ok, "delivered").await;
    c.wait_status(&hold, "running").await;
    let s = wait_for("stats to count the three submits", 10, || async {
        let s = app.client.get("/_mock/stats").await.body;
        let submits: u64 = (s["rates"]["submits"].as_array()?.iter())
            .filter_map(Value::as_u64)
            .sum();
        (submits == 3).then_some(s)
    })
    .await;
    assert_eq!(s["jobs"]["running"], 1);
    assert_eq!(s["jobs"]["completed"], 2);
    assert_eq!(s["jobs"]["total"], 3);
    assert_eq!(s["deliveries"]["dead"], 1);
    assert_eq!(s["deliveries"]["delivered"], 1);
    assert_eq!(s["deliveries"]["failing"], 0);
    assert_eq!(s["webhook_queue_depth"], 0);
    assert_eq!(s["tenants"], json!([{"tenant": "sk_t…1111", "jobs": 3}]));
    // Three failed attempts (10 ms, 20 ms schedule) and a delivered one.
    let attempts: u64 = (s["rates"]["webhooks"].as_array().unwrap().iter())
        .filter_map(Value::as_u64)
        .sum();
    let failures: u64 = (s["rates"]["webhook_failures"].as_array().unwrap().iter())
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!((attempts, failures), (4, 3));
    assert!(s["rates"]["window_s"].as_u64().unwrap() >= 1);
    while rx.try_next().is_some() {}
}

#[actix_web::test]
async fn a_delivery_after_a_failed_attempt_is_failing_in_its_json_the_job_and_the_counts() {
    let mut rx = Receiver::start().await;
    rx.always(500);
    let app = spawn_app_with(|s| s.retry_schedule = Schedule(vec![Duration::from_secs(600)])).await;
    let id = app.client.create(job_to(&rx.url)).await;
    rx.next().await;
    let failing = app.client.wait_delivery(&id, "failing").await;
    assert_eq!(failing["state"], "failing");
    assert_eq!(failing["attempts"][0]["status"], 500);
    let job = app.client.get("/_mock/jobs?status=completed").await;
    assert_eq!(
        job.body["jobs"][0]["webhook"]["state"], "failing",
        "{}",
        job.text
    );
    assert_eq!(app.client.job(&id).await["webhook"]["state"], "failing");
    let stats = app.client.get("/_mock/stats").await.body;
    assert_eq!(stats["deliveries"]["failing"], 1);
    assert_eq!(stats["deliveries"]["pending"], 0);
    assert_eq!(stats["deliveries"]["delivered"], 0);
    assert_eq!(stats["deliveries"]["total"], 1);
    let pending = app.client.get("/_mock/deliveries?state=pending").await;
    assert_eq!(pending.body["deliveries"], json!([]));
    let dead = app.client.get("/_mock/deliveries?state=dead").await;
    assert_eq!(dead.body["deliveries"], json!([]));
    let bad = app.client.get("/_mock/deliveries?state=sad").await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("failing"), "{}", bad.text);
    // Job-view words that no delivery has are not delivery states.
    let scheduled = app.client.get("/_mock/deliveries?state=scheduled").await;
    assert_eq!(scheduled.status, 422, "{}", scheduled.text);
}
