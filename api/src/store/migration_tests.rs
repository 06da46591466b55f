//! Each schema migration from the version before it: a database built at
//! version N-1 (with the SQL of `MIGRATIONS[..N-1]`) and rows in it opens
//! through `Store::open`, keeps its rows, and ends at the latest
//! `user_version`. A new migration adds its test here.

use super::*;
use crate::domain::{NewJob, Source, Status};

// Ids are UUIDs: a `JobId` is read back only when it is one.
const J1: &str = "0190a4f2-0000-7000-8000-000000000001";
const A: &str = "0190a4f2-0000-7000-8000-00000000000a";
const B: &str = "0190a4f2-0000-7000-8000-00000000000b";

fn new_job() -> NewJob {
    NewJob {
        portal_schema_name: "invoice".into(),
        filename: "a.pdf".into(),
        mime_type: "application/pdf".into(),
        file_size_bytes: 10,
    }
}

/// A database file at schema `version`: the first `version` migrations,
/// applied as `migrate` applies them.
fn db_at(path: &Path, version: usize) -> Connection {
    let c = Connection::open(path).unwrap();
    for (i, sql) in MIGRATIONS[..version].iter().enumerate() {
        c.execute_batch(sql).unwrap();
        c.pragma_update(None, "user_version", i + 1).unwrap();
    }
    c
}

async fn user_version(store: &Store) -> usize {
    store
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap()
}

/// A finished job as version 1 wrote it: the row and its three events, in
/// that version's columns.
fn insert_v1_job(c: &Connection) {
    c.execute_batch(&format!(
        "INSERT INTO jobs (id, status, portal_schema_name, filename, mime_type, file_size_bytes, \
           camber_job_id, error, artifacts, submit_attempts, created_at, updated_at) \
         VALUES ('{J1}', 'failed', 'invoice', 'a.pdf', 'application/pdf', 10, 'cmb_1', \
           '{{\"code\":\"OCR_FAILURE\",\"stage\":\"OCR\",\"details\":{{}}}}', \
           '[{{\"name\":\"result.json\",\"size\":12}}]', 1, \
           '2026-01-26T10:30:45.000000Z', '2026-01-26T10:31:00.000000Z');
         INSERT INTO job_events (job_id, from_status, to_status, at, source) VALUES
           ('{J1}', NULL, 'pending', '2026-01-26T10:30:45.000000Z', 'submit'),
           ('{J1}', 'pending', 'processing', '2026-01-26T10:30:46.000000Z', 'submit'),
           ('{J1}', 'processing', 'failed', '2026-01-26T10:31:00.000000Z', 'webhook');"
    ))
    .unwrap();
}

/// What `insert_v1_job` wrote, read through today's store.
async fn assert_v1_job_survived(store: &Store) {
    let job = store.read(|c| get_job(c, J1)).await.unwrap().unwrap();
    assert_eq!(job.status, Status::Failed);
    assert_eq!(job.camber_job_id.as_deref(), Some("cmb_1"));
    let error = job.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.stage.as_deref()),
        ("OCR_FAILURE", Some("OCR"))
    );
    assert_eq!(
        job.artifacts,
        [ArtifactMeta {
            name: "result.json".into(),
            size: 12
        }]
    );
    let events = store.read(|c| events(c, J1)).await.unwrap();
    let path: Vec<_> = events.iter().map(|e| (e.from, e.to, e.source)).collect();
    assert_eq!(
        path,
        [
            (None, Status::Pending, Source::Submit),
            (Some(Status::Pending), Status::Processing, Source::Submit),
            (Some(Status::Processing), Status::Failed, Source::Webhook),
        ]
    );
}

/// One test per migration below: adding a migration without its test
/// fails here.
#[test]
fn every_migration_has_a_test_from_the_version_before() {
    assert_eq!(
        MIGRATIONS.len(),
        3,
        "a new migration needs a test here from the version before it"
    );
}

/// 0 → 1: a file with no schema yet (a new database, `user_version` 0)
/// gets every table and takes jobs.
#[actix_rt::test]
async fn migration_1_creates_the_schema_in_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    drop(db_at(&path, 0));
    let store = Store::open(&path).unwrap();
    assert_eq!(user_version(&store).await, MIGRATIONS.len());
    store
        .write(|c| insert_job(c, J1, &new_job(), 0))
        .await
        .unwrap();
    let events = store.read(|c| events(c, J1)).await.unwrap();
    assert_eq!(events.len(), 1);
}

/// 1 → 2 (the `meta` table /readyz writes): the jobs and events of a
/// version 1 database survive, and the readiness write works.
#[actix_rt::test]
async fn migration_2_keeps_version_1_jobs_and_adds_the_readiness_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    insert_v1_job(&db_at(&path, 1));
    let store = Store::open(&path).unwrap();
    assert_eq!(user_version(&store).await, MIGRATIONS.len());
    assert_v1_job_survived(&store).await;
    store.write(ping).await.unwrap();
}

/// 2 → 3 (the idempotency columns): a version 2 database keeps its jobs,
/// which have no key, and a keyed create of the same body is replayed.
#[actix_rt::test]
async fn migration_3_keeps_version_2_jobs_and_adds_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    insert_v1_job(&db_at(&path, 2));
    let store = Store::open(&path).unwrap();
    assert_eq!(user_version(&store).await, MIGRATIONS.len());
    assert_v1_job_survived(&store).await;
    let key: Option<String> = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT idempotency_key FROM jobs WHERE id = ?1",
                [J1],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(key, None);
}

/// A database of the previous schema (before the idempotency columns)
/// opens, keeps its jobs, and takes keyed creates.
#[actix_rt::test]
async fn a_database_of_the_previous_version_migrates_and_takes_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for (i, sql) in MIGRATIONS[..2].iter().enumerate() {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", i + 1).unwrap();
        }
        insert_job(&c, J1, &new_job(), 0).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let version: usize = store
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(version, MIGRATIONS.len());
    let old = store.read(|c| get_job(c, J1)).await.unwrap().unwrap();
    assert_eq!(old.status, Status::Pending);

    let key = |hash: &str| IdemKey {
        key: "k1".into(),
        body_hash: hash.into(),
    };
    let (k, same, other) = (key("h1"), key("h1"), key("h2"));
    let first = store
        .write(move |c| create_job(c, A, &new_job(), 0, Some(&k)))
        .await
        .unwrap();
    let again = store
        .write(move |c| create_job(c, B, &new_job(), 0, Some(&same)))
        .await
        .unwrap();
    let reused = store
        .write(move |c| create_job(c, B, &new_job(), 0, Some(&other)))
        .await
        .unwrap();
    let Created::New(first) = first else {
        panic!("{first:?}")
    };
    assert_eq!(first.id.as_str(), A);
    assert_eq!(again, Created::Replayed(first));
    assert_eq!(reused, Created::KeyReused);
    assert!(store.read(|c| get_job(c, B)).await.unwrap().is_none());
}
