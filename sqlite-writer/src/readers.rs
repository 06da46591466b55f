//! The reader connections: a bounded pool, each read one transaction (one
//! snapshot), run on tokio's blocking pool by `Db::read`.

use std::path::PathBuf;
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
        }
    }
}
