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
    assert_eq!(events[1].from, Some(Status::Pending));
    let sources: Vec<_> = events.iter().map(|e| e.source).collect();
    assert_eq!(sources, [Source::Submit, Source::Submit, Source::Webhook]);
    // The view shows them as the strings the store holds.
    assert_eq!(
        serde_json::to_value(&events[2]).unwrap(),
        json!({"from": "processing", "to": "completed", "at": events[2].at, "source": "webhook"})
    );
}

#[actix_rt::test]
async fn a_late_submit_answer_does_not_reopen_a_finished_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    store
        .write(|c| insert_job(c, J1, &new_job(), 1000))
        .await
        .unwrap();
    let outcome = Outcome::Failed(shared::JobFailure::new("X", None, json!({})));
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

#[test]
fn due_times_ahead_of_their_longest_wait_are_brought_back() {
    // Within the bound: kept; beyond it (written before the clock stepped
    // back): now + the bound; a negative bound counts as 0.
    assert_eq!(bound_ahead(1_500, 1_000, 1_000), 1_500);
    assert_eq!(bound_ahead(2_000, 1_000, 1_000), 2_000);
    assert_eq!(bound_ahead(86_401_000, 1_000, 1_000), 2_000);
    assert_eq!(bound_ahead(500, 1_000, 1_000), 500);
    assert_eq!(bound_ahead(5_000, 1_000, -7), 1_000);
    assert_eq!(bound_ahead(i64::MAX, i64::MAX - 1, 1_000), i64::MAX);
}

#[actix_rt::test]
async fn a_backward_clock_step_delays_a_submit_or_a_poll_by_at_most_its_longest_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("api.db")).unwrap();
    store
        .write(|c| insert_job(c, J1, &new_job(), -1))
        .await
        .unwrap();
    store
        .write(|c| insert_job(c, A, &new_job(), -1))
        .await
        .unwrap();
    store
        .write(|c| mark_submitted(c, A, "cmb_a", 1000))
        .await
        .unwrap();
    // As if written a day before the wall clock stepped back a day.
    let day = 86_400_000;
    store
        .write(move |c| {
            c.execute(
                "UPDATE jobs SET next_submit_at = ?1, next_reconcile_at = ?1",
                [now_ms() + day],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let due_at = |id: &'static str, col: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |c| {
                    Ok(c.query_row(
                        &format!("SELECT {col} FROM jobs WHERE id = ?1"),
                        [id],
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .await
                .unwrap()
        }
    };
    // A bound of a minute: not due yet, but at most a minute away now.
    let claimed = store
        .write(|c| claim_due_submits(c, 60_000, 60_000, 10))
        .await
        .unwrap();
    assert!(claimed.is_empty());
    assert!(due_at(J1, "next_submit_at").await <= now_ms() + 60_000);
    let polled = store
        .write(|c| claim_due_reconciles(c, 60_000, 10))
        .await
        .unwrap();
    assert!(polled.is_empty());
    assert!(due_at(A, "next_reconcile_at").await <= now_ms() + 60_000);
    // A bound of 0: due at once.
    let claimed = store
        .write(|c| claim_due_submits(c, 60_000, 0, 10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let polled = store
        .write(|c| claim_due_reconciles(c, 0, 10))
        .await
        .unwrap();
    assert_eq!(polled.len(), 1);
}
