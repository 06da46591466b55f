//! The reader connections: a bounded pool, each read one transaction (one
//! snapshot), run by `Db::read` on the pool's own reader threads, fed by
//! one queue, not on tokio's blocking pool. A thread starts when a read
//! finds none idle, up to one per core (at least `MIN_THREADS`) and never
//! more than the connection bound: reads are CPU work on pages the OS
//! caches, so many more threads than cores only add wake-ups and context
//! switches (api at c=64 on 2 cores: 2 reader threads cost less CPU per job
//! than 32, or than tokio's blocking pool). A few more than cores keep a
//! short read (a poll) from queueing behind slow ones (a console search
//! over every job takes ~90 ms, the stats strip ~25 ms) on a small
//! machine. A thread serves until the `Db` is dropped.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

use crate::writer::exec;
use crate::Error;

pub(crate) struct Readers {
    pub(crate) path: PathBuf,
    pub(crate) pool: Mutex<Pool>,
    /// Signalled when a connection goes back to the pool or is closed.
    freed: Condvar,
    max_open: usize,
    busy_timeout: Duration,
    /// The reads waiting for a reader thread.
    pub(crate) queue: Arc<Queue>,
    /// Most reader threads: `max_open`, or fewer on a machine with fewer
    /// cores.
    pub(crate) max_threads: usize,
}

/// Reader threads allowed whatever the cores (within the connection
/// bound): a few slow reads must not hold every short one up.
const MIN_THREADS: usize = 4;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Name of the reader threads.
const THREAD_NAME: &str = "sqlite-reader";

/// A queued read: runs `Readers::with` and answers its caller.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The reads waiting for a thread, and the threads that serve them. A
/// thread serves reads until the `Readers` is dropped (`closed`) and the
/// queue is empty.
#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) state: Mutex<QueueState>,
    /// Signalled when a read is queued, or the queue closed.
    queued: Condvar,
}

#[derive(Default)]
pub(crate) struct QueueState {
    jobs: VecDeque<Job>,
    /// Reader threads started and not yet ended.
    pub(crate) threads: usize,
    /// Of those, the ones waiting for a read.
    idle: usize,
    closed: bool,
}

/// A connection lent to one read: back to the pool when the read ended
/// cleanly, closed otherwise (an error or a panic mid-read).
struct Lent<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
    keep: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take().filter(|_| self.keep);
        self.readers.give_back(conn);
    }
}

#[derive(Default)]
pub(crate) struct Pool {
    pub(crate) idle: Vec<Connection>,
    /// Connections open: idle ones and those lent to a read.
    pub(crate) open: usize,
}

impl Readers {
    pub(crate) fn with<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let mut lent = Lent {
            readers: self,
            conn: Some(self.take()?),
            keep: false,
        };
        let conn = lent.conn.as_ref().expect("lent");
        // One read transaction around the whole read: a read of several
        // statements (a delivery and then its attempts) sees one snapshot,
        // never a write committed between two of them.
        exec(conn, "BEGIN").map_err(Error::from)?;
        let out = f(conn);
        match exec(conn, "COMMIT") {
            Ok(()) => lent.keep = true,
            // A read transaction that cannot end leaves the connection
            // unusable: it is closed.
            Err(e) => log::warn!("database: ending a read failed: {e}"),
        }
        out
    }

    /// An idle connection, a new one while fewer than `max_open` are open,
    /// or else the next one given back (this runs on a blocking thread).
    fn take(&self) -> Result<Connection, Error> {
        let mut pool = self.pool.lock();
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < self.max_open {
                pool.open += 1;
                drop(pool);
                return self.connect().map_err(|e| {
                    self.give_back(None);
                    Error::from(e)
                });
            }
            self.freed.wait(&mut pool);
        }
    }

    /// Returns a lent connection to the pool, or (`None`) counts it closed.
    fn give_back(&self, conn: Option<Connection>) {
        let mut pool = self.pool.lock();
        match conn {
            Some(conn) => pool.idle.push(conn),
            None => pool.open -= 1,
        }
        drop(pool);
        self.freed.notify_one();
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let c = Connection::open(&self.path)?;
        c.busy_timeout(self.busy_timeout)?;
        c.set_prepared_statement_cache_capacity(64);
        c.pragma_update(None, "query_only", "ON")?;
        Ok(c)
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max_open: usize, busy_timeout: Duration) -> Self {
        Readers {
            path,
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
            max_open: max_open.max(1),
            busy_timeout,
            queue: Arc::default(),
            max_threads: max_open.clamp(1, cores().max(MIN_THREADS)),
        }
    }

    /// Queues `job` for a reader thread, starting one when none is idle
    /// and fewer than `max_threads` run (each holds at most one connection,
    /// so reads never hold more than the bound, nor wait for one). A thread
    /// that cannot be started leaves the job to the running ones; with none
    /// running the job is dropped, which its caller sees as an error.
    pub(crate) fn submit(&self, job: Job) {
        let mut st = self.queue.state.lock();
        st.jobs.push_back(job);
        if st.jobs.len() > st.idle && st.threads < self.max_threads {
            let queue = self.queue.clone();
            let started = std::thread::Builder::new()
                .name(THREAD_NAME.into())
                .spawn(move || serve(&queue));
            match started {
                Ok(_) => st.threads += 1,
                Err(e) => {
                    log::error!("database: cannot start a reader thread: {e}");
                    if st.threads == 0 {
                        let dropped = std::mem::take(&mut st.jobs);
                        drop(st);
                        drop(dropped);
                        return;
                    }
                }
            }
        }
        drop(st);
        self.queue.queued.notify_one();
    }
}

impl Drop for Readers {
    /// The threads end once the queue is empty. (A queued job holds the
    /// `Readers` it reads with, so none is left unanswered.)
    fn drop(&mut self) {
        self.queue.state.lock().closed = true;
        self.queue.queued.notify_all();
    }
}

/// A reader thread: runs queued reads until the queue closes. A read that
/// panics has already closed its connection and dropped its answer (its
/// caller sees an error); the thread goes on with the next one.
fn serve(queue: &Queue) {
    let mut st = queue.state.lock();
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            let _ = catch_unwind(AssertUnwindSafe(job));
            st = queue.state.lock();
        } else if st.closed {
            st.threads -= 1;
            return;
        } else {
            st.idle += 1;
            queue.queued.wait(&mut st);
            st.idle -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{Db, Options};

    fn open(dir: &tempfile::TempDir, max_readers: usize) -> Db {
        Db::open(
            &dir.path().join("t.db"),
            Options {
                max_readers,
                ..Options::default()
            },
            |_| Ok::<_, Error>(()),
        )
        .unwrap()
    }

    fn thread_name() -> Result<Option<String>, Error> {
        Ok(std::thread::current().name().map(str::to_owned))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_read_does_not_wait_for_slow_ones_on_a_small_machine() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, 16);
        // Slow reads (a console search over every job), one fewer than the
        // threads allowed on any machine: each holds its thread until
        // released.
        let (mut releases, mut slow) = (Vec::new(), Vec::new());
        let (inside, entered) = std::sync::mpsc::channel::<()>();
        for _ in 0..MIN_THREADS - 1 {
            let (release, gate) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let (db, inside) = (db.clone(), inside.clone());
            slow.push(tokio::spawn(async move {
                db.read(move |_| {
                    let _ = inside.send(());
                    let _ = gate.recv();
                    Ok::<_, Error>(())
                })
                .await
            }));
        }
        for _ in 0..MIN_THREADS - 1 {
            entered
                .recv_timeout(Duration::from_secs(10))
                .expect("every slow read holds a thread");
        }
        let short = tokio::time::timeout(Duration::from_secs(10), db.read(|_| thread_name()))
            .await
            .expect("a short read was held up by slow ones");
        assert_eq!(short.unwrap().as_deref(), Some(THREAD_NAME));
        drop(releases);
        for r in slow {
            r.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_run_on_at_most_max_readers_reader_threads() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, 3);
        let names = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (db, names, now, most) = (db.clone(), names.clone(), now.clone(), most.clone());
            reads.spawn(async move {
                db.read(move |c| {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    let id = format!("{:?}", std::thread::current().id());
                    names.lock().insert(id);
                    let name = thread_name()?;
                    c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Error>(name)
                })
                .await
            });
        }
        for name in reads.join_all().await {
            assert_eq!(name.unwrap().as_deref(), Some(THREAD_NAME));
        }
        assert!((1..=3).contains(&most.load(Ordering::SeqCst)));
        assert!((1..=3).contains(&names.lock().len()), "{:?}", names.lock());
        // Every read was answered after its connection went back.
        let pool = db.readers.pool.lock();
        assert!(pool.open <= 3 && pool.open == pool.idle.len());
        let threads = db.readers.queue.state.lock().threads;
        let most_threads = db.readers.max_threads;
        assert_eq!(most_threads, 3.min(cores().max(MIN_THREADS)));
        assert!(
            (1..=most_threads).contains(&threads),
            "{threads} reader threads"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_read_answers_an_error_and_its_thread_serves_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, 1);
        let first = db.read(|_| thread_name()).await.unwrap();
        for _ in 0..3 {
            let r: Result<(), Error> = db.read(|_| panic!("a bug in one read")).await;
            assert!(matches!(r, Err(Error::Blocking(_))), "{r:?}");
        }
        // The one thread the bound allows survived the panics and serves on,
        // with a new connection (the panicking read's was closed).
        let v = db
            .read(|c| {
                c.query_row("SELECT 41 + 1", [], |r| r.get::<_, i64>(0))
                    .map_err(Error::from)
            })
            .await
            .unwrap();
        assert_eq!(v, 42);
        assert_eq!(db.readers.queue.state.lock().threads, 1);
        let pool = db.readers.pool.lock();
        assert_eq!((pool.open, pool.idle.len()), (1, 1));
        assert_eq!(first.as_deref(), Some(THREAD_NAME));
    }
}
