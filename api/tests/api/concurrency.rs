//! Many jobs at once with `--stage-ms 0`: webhooks race the submit answers.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::*;

const JOBS: usize = 200;

#[actix_web::test]
async fn two_hundred_concurrent_jobs_each_complete_exactly_once_without_duplicate_camber_jobs() {
    let mock = start_mock_with(|m| m.stage_time(Duration::ZERO)).await;
    let app = spawn_app(mock.uri()).await;

    let bodies: Vec<_> = (0..JOBS)
        .map(|i| job_body(&format!("doc-{i}.pdf")))
        .collect();
    let created = join_all(bodies.iter().map(|b| app.post_job(b))).await;
    let ids: Vec<String> = created
        .iter()
        .map(|(code, body)| {
            assert_eq!(*code, 201, "{body}");
            body["job_id"].as_str().unwrap().to_owned()
        })
        .collect();

    let jobs: Vec<Value> = wait_until(Duration::from_secs(60), "every job completed", || async {
        let (_, page) = app.get("/jobs?status=completed&limit=500").await;
        let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
        (jobs.len() == JOBS).then_some(jobs)
    })
    .await;

    let mut camber_ids = HashSet::new();
    for job in &jobs {
        let path = event_path(job);
        // Either order is right; what matters is one terminal event.
        assert!(
            path == ["pending", "processing", "completed"] || path == ["pending", "completed"],
            "{job}"
        );
        assert!(job["result"].is_object());
        assert!(camber_ids.insert(job["camber_job_id"].as_str().unwrap().to_owned()));
    }
    let listed: HashSet<_> = jobs
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids.iter().cloned().collect());

    // One submit per job in the mock's journal, each with its own key.
    let submits = mock.submits().await;
    let keys: HashSet<String> = submits
        .iter()
        .filter_map(|r| r["body"]["metadata"]["job_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), JOBS);
    assert_eq!(submits.len(), JOBS, "no job was submitted twice");
    assert_eq!(mock.jobs().await.len(), JOBS, "one Camber job per job");
}

/// Throughput probe, not a gate: `cargo test -p api --release --test api -- --ignored --nocapture`.
#[actix_web::test]
#[ignore]
async fn throughput_of_two_thousand_jobs_end_to_end() {
    const N: usize = 2000;
    let mock = start_mock().await;
    let app = spawn_app(mock.uri()).await;
    let started = std::time::Instant::now();
    let bodies: Vec<_> = (0..N).map(|i| job_body(&format!("doc-{i}.pdf"))).collect();
    for chunk in bodies.chunks(200) {
        let created = join_all(chunk.iter().map(|b| app.post_job(b))).await;
        assert!(created.iter().all(|(code, _)| *code == 201));
    }
    let created_in = started.elapsed();
    wait_until(Duration::from_secs(120), "every job completed", || async {
        let (_, text) = app.get_raw("/metrics").await;
        let text = String::from_utf8(text).unwrap();
        text.contains(&format!("api_jobs{{status=\"completed\"}} {N}\n"))
            .then_some(())
    })
    .await;
    let total = started.elapsed();
    println!(
        "{N} jobs: created in {created_in:?} ({:.0}/s), all completed in {total:?} ({:.0}/s)",
        N as f64 / created_in.as_secs_f64(),
        N as f64 / total.as_secs_f64()
    );
}
