//! The store's SQL against a real SQLite file, through the real writer.

// Ids are UUIDs: a `JobId` is read back only when it is one.
const J1: &str = "0190a4f2-0000-7000-8000-000000000001";
const A: &str = "0190a4f2-0000-7000-8000-00000000000a";
const B: &str = "0190a4f2-0000-7000-8000-00000000000b";
const GONE: &str = "0190a4f2-0000-7000-8000-0000000000ff";
const KEPT: &str = "0190a4f2-0000-7000-8000-0000000000cc";
use super::*;
use crate::domain::{NewJob, Outcome, Source, Status};
use serde_json::json;

fn new_job() -> NewJob {
    NewJob {
        portal_schema_name: "invoice".into(),
        filename: "a.pdf".into(),
        mime_type: "application/pdf".into(),
        file_size_bytes: 10,
    }
}

#[actix_rt::test]
async fn a_job_goes_pending_processing_completed_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    let job = store
        .write(|c| insert_job(c, J1, &new_job(), 1000))
        .await
        .unwrap();
    assert_eq!(job.status, Status::Pending);
    let st = store
        .write(|c| mark_submitted(c, J1, "cmb_1", 1000))
        .await
        .unwrap();
    assert_eq!(st, Some(Status::Processing));
    let outcome = Outcome::Completed(json!({"a": 1}));
    let fin = store
        .write(move |c| finish_job(c, J1, "cmb_1", &outcome, &[], Source::Webhook))
        .await
        .unwrap();
    assert_eq!(fin, Finish::Applied(Status::Processing));
    let events = store.read(|c| events(c, J1)).await.unwrap();
    let path: Vec<_> = events.iter().map(|e| e.to.as_str()).collect();
    assert_eq!(path, ["pending", "processing", "completed"]);
    assert_eq!(events[0].from, None);
}

#[actix_rt::test]
async fn a_late_submit_answer_does_not_reopen_a_finished_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    store
        .write(|c| insert_job(c, J1, &new_job(), 1000))
        .await
        .unwrap();
    let outcome = Outcome::Failed(json!({"code": "X"}));
    store
        .write(move |c| finish_job(c, J1, "cmb_1", &outcome, &[], Source::Webhook))
        .await
        .unwrap();
    let st = store
        .write(|c| mark_submitted(c, J1, "cmb_1", 1000))
        .await
        .unwrap();
    assert_eq!(st, Some(Status::Failed));
    let dup = store
        .write(|c| {
            finish_job(
                c,
                J1,
                "cmb_1",
                &Outcome::Completed(json!({})),
                &[],
                Source::Webhook,
            )
        })
        .await
        .unwrap();
    assert_eq!(dup, Finish::Duplicate);
    let other = store
        .write(|c| {
            finish_job(
                c,
                J1,
                "cmb_2",
                &Outcome::Completed(json!({})),
                &[],
                Source::Webhook,
            )
        })
        .await
        .unwrap();
    assert_eq!(other, Finish::CamberIdMismatch);
}

#[actix_rt::test]
async fn a_failing_write_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    let a = store.write(|c| insert_job(c, A, &new_job(), 0));
    let dup = store.write(|c| insert_job(c, A, &new_job(), 0));
    let b = store.write(|c| insert_job(c, B, &new_job(), 0));
    let (a, dup, b) = futures_util::future::join3(a, dup, b).await;
    assert!(a.is_ok() && dup.is_err() && b.is_ok());
    let (jobs, more) = store.read(|c| list_jobs(c, None, None, 10)).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(!more);
}

#[actix_rt::test]
async fn a_panicking_write_fails_alone_and_the_writer_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    let boom = store
        .write(|c| -> Result<(), StoreError> {
            insert_job(c, GONE, &new_job(), 0)?;
            panic!("boom")
        })
        .await;
    assert!(boom.is_err());
    store
        .write(|c| insert_job(c, KEPT, &new_job(), 0))
        .await
        .unwrap();
    let (jobs, _) = store.read(|c| list_jobs(c, None, None, 10)).await.unwrap();
    let ids: Vec<_> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [KEPT]);
}

#[actix_rt::test]
async fn claimed_submits_are_leased() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    store
        .write(|c| insert_job(c, J1, &new_job(), -1))
        .await
        .unwrap();
    let first = store
        .write(|c| claim_due_submits(c, 60_000, 60_000, 10))
        .await
        .unwrap();
    let second = store
        .write(|c| claim_due_submits(c, 60_000, 60_000, 10))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(second.is_empty());
}
