use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn open(dir: &tempfile::TempDir, on_commit: Option<OnCommit>) -> Db {
    open_with(
        dir,
        Options {
            on_commit,
            ..Options::default()
        },
    )
}

/// The test table `t (k, v)` in a new or existing database under `dir`.
fn open_with(dir: &tempfile::TempDir, opts: Options) -> Db {
    Db::open(&dir.path().join("t.db"), opts, |c| {
        c.execute_batch("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")
            .map_err(Error::from)
    })
    .unwrap()
}

fn insert(
    k: &'static str,
    v: i64,
) -> impl FnMut(&Connection) -> Result<(), Error> + Send + 'static {
    move |c| {
        c.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?
            .execute(rusqlite::params![k, v])?;
        Ok(())
    }
}

async fn keys(db: &Db) -> Vec<String> {
    db.read(|c| {
        let mut s = c.prepare("SELECT k FROM t ORDER BY k")?;
        let v = s
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok::<_, Error>(v)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_and_a_panicking_write_roll_back_alone_and_the_rest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, None);
    // Queued together, so they share one transaction.
    let a = db.write(insert("a", 1));
    let failing = db.write(|c| {
        insert("half", 2)(c)?;
        // A duplicate key: the statement fails after `half` was written.
        insert("a", 3)(c)
    });
    let panicking = db.write(|c| -> Result<(), Error> {
        insert("p", 4)(c)?;
        panic!("a bug in one write");
    });
    let b = db.write(insert("b", 5));
    let (a, failing, panicking, b) = tokio::join!(a, failing, panicking, b);
    assert!(a.is_ok() && b.is_ok());
    assert!(matches!(failing, Err(Error::Sqlite(_))), "{failing:?}");
    assert!(matches!(panicking, Err(Error::Abandoned)), "{panicking:?}");
    assert_eq!(keys(&db).await, ["a", "b"], "half and p were rolled back");

    // The writer survived the panic and keeps serving.
    db.write(insert("c", 6)).await.unwrap();
    assert_eq!(keys(&db).await, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_is_on_disk_for_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(&dir, None);
        db.write(insert("kept", 1)).await.unwrap();
        // No flush, no close: the acknowledgement alone must suffice.
    }
    let db = open(&dir, None);
    assert_eq!(keys(&db).await, ["kept"]);
    assert_eq!(
        db.read_now(|c| c
            .query_row("SELECT v FROM t", [], |r| r.get::<_, i64>(0))
            .map_err(Error::from))
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_writes_commit_and_their_errors_are_only_logged() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let n = commits.clone();
    let db = open(
        &dir,
        Some(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        })),
    );
    db.write_bg("insert x", |c| {
        c.execute("INSERT INTO t (k, v) VALUES ('x', 1)", [])
            .map(|_| ())
    });
    db.write_bg("duplicate x", |c| {
        c.execute("INSERT INTO t (k, v) VALUES ('x', 2)", [])
            .map(|_| ())
    });
    db.flush().await.unwrap();
    assert_eq!(keys(&db).await, ["x"]);
    assert!(commits.load(Ordering::SeqCst) >= 1, "the commit hook ran");
    let before = commits.load(Ordering::SeqCst);
    db.write(insert("y", 1)).await.unwrap();
    assert_eq!(commits.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_then_reports_on_the_writer_thread_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, None);
    let (tx, rx) = tokio::sync::oneshot::channel();
    db.write_then(insert("z", 9), move |r: Result<(), Error>| {
        let _ = tx.send((r.is_ok(), std::thread::current().name().map(str::to_owned)));
    });
    let (ok, thread) = rx.await.unwrap();
    assert!(ok);
    assert_eq!(thread.as_deref(), Some("sqlite-writer"));
    assert_eq!(keys(&db).await, ["z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, None);
    let r = db
        .read(|c| {
            c.execute("INSERT INTO t (k, v) VALUES ('r', 1)", [])
                .map_err(Error::from)
        })
        .await;
    assert!(r.is_err(), "a reader connection is query-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_answers_storage_unavailable_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("t.db"),
        Options {
            busy_timeout: Duration::from_millis(200),
            ..Options::default()
        },
        |c| {
            c.execute_batch("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")
                .map_err(Error::from)
        },
    )
    .unwrap();
    let other = Connection::open(dir.path().join("t.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let started = std::time::Instant::now();
    let busy = db.write(insert("a", 1)).await;
    match &busy {
        Err(e) => assert!(e.is_storage_unavailable(), "{e}"),
        Ok(()) => panic!("a write went through another process's lock"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    other.execute_batch("ROLLBACK").unwrap();
    db.write(insert("b", 2)).await.unwrap();
    assert_eq!(keys(&db).await, ["b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_open_more_connections_than_the_bound_and_a_panic_frees_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &dir.path().join("t.db"),
        Options {
            max_readers: 2,
            ..Options::default()
        },
        |c| {
            c.execute_batch("CREATE TABLE t (k TEXT)")
                .map_err(Error::from)
        },
    )
    .unwrap();
    // Panicking reads close their connection and give their slot back;
    // with a leak, the two slots would be gone and the reads below hang.
    for _ in 0..4 {
        let r: Result<(), Error> = db.read(|_| panic!("a bug in one read")).await;
        assert!(matches!(r, Err(Error::Blocking(_))), "{r:?}");
    }
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (now, most, db) = (now.clone(), most.clone(), db.clone());
        reads.spawn(async move {
            db.read(move |c| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                // Some work, so reads overlap.
                let sum: i64 = c.query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
                 SELECT sum(i) FROM n",
                [],
                |r| r.get(0),
            )?;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Error>(sum)
            })
            .await
        });
    }
    let sums = tokio::time::timeout(Duration::from_secs(30), reads.join_all())
        .await
        .expect("reads finish");
    assert_eq!(sums.len(), 32);
    assert!(sums.iter().all(|s| *s.as_ref().unwrap() == 200_010_000));
    let most = most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} reads at once");
    let pool = db.readers.pool.lock();
    assert!(
        pool.open <= 2 && pool.open == pool.idle.len(),
        "{} open",
        pool.open
    );
}

/// Holds the writer thread in a write of its own until the returned sender
/// is dropped or sent to; returns once the writer is inside it, so that
/// everything queued next lands in the following batch, together.
fn hold_writer(db: &Db) -> std::sync::mpsc::Sender<()> {
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (inside, entered) = std::sync::mpsc::channel::<()>();
    db.write_bg("hold", move |_| {
        let _ = inside.send(());
        let _ = gate.recv();
        Ok(())
    });
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer took the hold");
    release
}

/// A write that counts its runs, inserting `k`.
fn counted(
    k: &'static str,
    runs: &Arc<AtomicUsize>,
) -> impl FnMut(&Connection) -> Result<(), Error> + Send + 'static {
    let runs = runs.clone();
    let mut insert = insert(k, 1);
    move |c| {
        runs.fetch_add(1, Ordering::SeqCst);
        insert(c)
    }
}

type Answer<T> = oneshot::Receiver<Result<T, Error>>;

/// A `then` that sends the outcome, and where it arrives.
fn answer<T: Send + 'static>() -> (impl FnOnce(Result<T, Error>) + Send, Answer<T>) {
    let (tx, rx) = oneshot::channel();
    (
        move |r| {
            let _ = tx.send(r);
        },
        rx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_rolls_its_group_back_and_the_group_runs_again_one_savepoint_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, None);
    let release = hold_writer(&db);
    let [runs_a, runs_bad, runs_b]: [Arc<AtomicUsize>; 3] = Default::default();
    let (then_a, a) = answer();
    db.write_then(counted("a", &runs_a), then_a);
    let (then_bad, bad) = answer();
    let mut half = counted("half", &runs_bad);
    db.write_then(
        move |c| {
            half(c)?;
            // A duplicate key: fails after `half` was written.
            insert("a", 3)(c)
        },
        then_bad,
    );
    let (then_b, b) = answer();
    db.write_then(counted("b", &runs_b), then_b);
    let commits = db.stats().1;
    release.send(()).unwrap();

    assert!(a.await.unwrap().is_ok());
    assert!(matches!(bad.await.unwrap(), Err(Error::Sqlite(_))));
    assert!(b.await.unwrap().is_ok());
    assert_eq!(keys(&db).await, ["a", "b"], "half was rolled back");
    // The group ran a and the failing write, was rolled back, and then each
    // of the three ran under its own savepoint: b never ran in the group.
    assert_eq!(runs_a.load(Ordering::SeqCst), 2);
    assert_eq!(runs_bad.load(Ordering::SeqCst), 2);
    assert_eq!(runs_b.load(Ordering::SeqCst), 1);
    // The hold's own batch, then one transaction for the three.
    assert_eq!(db.stats().1, commits + 2, "one transaction for the batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_succeed_run_once_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, None);
    let release = hold_writer(&db);
    let runs = Arc::new(AtomicUsize::new(0));
    let mut answers = Vec::new();
    for k in ["a", "b", "c", "d"] {
        let (then, rx) = answer();
        db.write_then(counted(k, &runs), then);
        answers.push(rx);
    }
    let commits = db.stats().1;
    release.send(()).unwrap();
    for rx in answers {
        assert!(rx.await.unwrap().is_ok());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4, "no write ran twice");
    assert_eq!(keys(&db).await, ["a", "b", "c", "d"]);
    // The hold's own batch, then one transaction for the four.
    assert_eq!(db.stats().1, commits + 2);
}

fn open_deferring(dir: &tempfile::TempDir, defer: Duration) -> Db {
    open_with(
        dir,
        Options {
            defer,
            ..Options::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_write_waits_for_an_awaited_one_and_shares_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_deferring(&dir, Duration::from_secs(600));
    let commits = db.stats().1;
    let (ran, has_run) = std::sync::mpsc::channel::<()>();
    let mut x = insert("x", 1);
    let (then_x, x_done) = answer();
    db.write_later(
        move |c| {
            let _ = ran.send(());
            x(c)
        },
        then_x,
    );
    // Alone, it waits (here up to its 600 s window) for company.
    assert_eq!(
        has_run.recv_timeout(Duration::from_millis(300)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout),
        "a deferred write ran before any write was awaited"
    );
    db.write(insert("y", 2)).await.unwrap();
    assert!(x_done.await.unwrap().is_ok());
    assert_eq!(keys(&db).await, ["x", "y"]);
    assert_eq!(db.stats().1, commits + 1, "both in one commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_write_alone_commits_once_its_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_deferring(&dir, Duration::from_millis(20));
    let (then, done) = answer();
    db.write_later(insert("x", 1), then);
    let r = tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .expect("committed within its window and then some");
    assert!(r.unwrap().is_ok());
    assert_eq!(keys(&db).await, ["x"]);
}
